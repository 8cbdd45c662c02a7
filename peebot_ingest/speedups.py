"""The optional compiled loops of the writer path, or None where they were not built.

`_speedups` (C, `peebot_ingest/_speedups.c`) is compiled by `hatch_build.py` when the package
is installed on a machine with a C compiler and the headers of Python and OpenSSL; without
them the install goes on and the Python loops run instead, with the same results (the tests
compare both on random input). See docs/ARCHITECTURE.md, "Ingest".
"""

from __future__ import annotations

from types import ModuleType

native: ModuleType | None
try:
    from peebot_ingest import _speedups as native
except ImportError:  # not built here: the Python loops
    native = None


def describe() -> str:
    """One line saying which loops run (for logs and benchmarks)."""
    return "compiled (peebot_ingest._speedups)" if native is not None else "pure Python"
