"""The local ISS Live: a Lightstreamer TLCP server and a physical telemetry model.

It speaks only TLCP: the ingest daemon cannot tell it from ISS Live (docs/ARCHITECTURE.md).

- `tlcp`: `TlcpServer(feed, host=, port=, keepalive_ms=, adapter_set=, sent_log=)` (aiohttp,
  WebSocket + HTTP streaming/polling, MERGE with snapshot), `run_server(feed, ...)` (blocking,
  until SIGTERM/Ctrl-C, then END,48), the `Feed` protocol.
- `model`: `TelemetryModel` (`generate(until)` -> `Update`s, `truth`, `write_truth`), which
  assembles `urine` (the tank and its processor, with ground truth), the water system, LOS
  and the catalogue channels (`channels`); `config.SimConfig`; `scenario.parse_scenario`;
  `truth.TruthEvent`; `fields` (one update's fields); `streams` (seeded random streams).
- `feeds`: `ScriptedFeed`, `ModelFeed`, `RecordingFeed`, `CounterFeed`.
"""
