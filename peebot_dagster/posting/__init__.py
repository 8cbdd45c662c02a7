"""Posting without Dagster: the jokes (render.py), the policy, the outbox, the run that sends
it (sending.py) and the backends (dry run, X, Bluesky, Mastodon).

`outbox.enqueue_posts` is called by the detection pass inside the transaction that stores
events; `post_events_job` (defs/posting) runs `sending.run_outbox`, which sends what is
pending, exactly once (docs/ARCHITECTURE.md, "Posting").
"""
