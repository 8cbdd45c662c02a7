"""The code location's definitions, one folder per domain (detection, posting, summary,
maintenance), each exporting its `defs`; `peebot_dagster/definitions.py` merges them.

Only Dagster wiring lives here: what the definitions run is in the plain modules beside
`defs/` (detectors/, posting/, store.py, windows.py, summary.py, charts.py).
"""
