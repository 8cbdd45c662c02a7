"""`peebot status`, the one-screen health overview, in parts: `queries` (the application
database), `dagster_probe` (Dagster's instance storage), `shaping` (pure helpers that turn rows
into what the screen shows), `collect` (the whole screen as plain data, what `--json` prints)
and `render` (the terminal layout). The click command in `peebot/commands/status.py` only
wires them."""
