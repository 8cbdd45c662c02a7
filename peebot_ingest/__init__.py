"""The ingest daemon: ISS Live (or the simulator) -> validation -> PostgreSQL
(docs/ARCHITECTURE.md, "Ingest"). Its modules, from the data inward to the process:

- records: the rows it writes (`ValidatedReading`, `Rejection`, `FeedTransition`) and the
  dedupe key `event_id`. storable: any input made safe for text and jsonb columns.
- fields: one field of an update parsed. years: which year a TimeStamp is in
  (`YearTracker`). validate: `Validator`, one update or decoded reading -> a record.
  batch_validate and columns: many updates at once, column-wise, with the same results.
- feedstate: signal (AOS/LOS/STALE) and connection transitions, pure.
- batch: `Batch`, `BatchResult`, `WriterCounters`. copy_rows: the binary COPY of readings.
  sink: `DatabaseSink`, one connection, one transaction per batch. streamed_batch: a batch
  sent while it is collected. buffered_writer: `BufferedWriter`, batching and outages.
  journal: the spill files. bulk_loader: `BulkLoader`, the replay path. notify: the NOTIFY
  each batch sends at commit (the dashboard listens).
- feed_source: the Lightstreamer client. latency, logs: reporting. daemon: `IngestDaemon`,
  the threads that tie it together.
- recordings: readers of recorded telemetry files. db: where the database is, migrations,
  status, maintenance. settings: every `PEEBOT_*` variable this package reads.
"""
