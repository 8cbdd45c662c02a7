"""What ISS Live is, as both ends of the wire know it: the channel catalogue and its fields,
the TimeStamp format, and the rule that every time is UTC (`utc`). No I/O beyond its own data
file; the ingest daemon, the simulator and the Dagster code location may all import it
(docs/ARCHITECTURE.md, "Packages")."""
