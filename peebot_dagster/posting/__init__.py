"""Posting: the outbox, the jokes, the backends (dry run, X, Bluesky, Mastodon) and the job.

`outbox.enqueue_posts` is called by the detection assets inside the transaction that stores
events; `post_events_job` (with its sensor) sends what is pending, exactly once.
"""
