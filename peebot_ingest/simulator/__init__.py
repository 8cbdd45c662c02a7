"""The local ISS Live: a TLCP server (`tlcp`), a physical telemetry model with ground truth
(`model`), feed sources (`feeds`) and helpers for tests in other areas (`testing`)."""
