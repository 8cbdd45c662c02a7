"""A faster end of iteration for `lightstreamer-client-lib`'s Haxe runtime (2.2.3, pinned).

The library is generated from Haxe. Its `python_HaxeIterator.hasNext` ends every loop over a
Haxe map by catching `StopIteration` as `BaseException` and wrapping it in a
`haxe_Exception`, whose constructor takes a snapshot of the stack (`traceback`, `linecache`)
only to find out that it was a StopIteration. The client runs several such loops for every
update it delivers: profiled against our TLCP server, that wrapping was a sixth of the
client's time (docs/ARCHITECTURE.md, "Ingest"; README, "Ingest performance").

`install()` replaces that one method with the same logic catching `StopIteration` directly:
the same results, the same exceptions propagated. It applies only to the version it was
written against, and only once; anything else leaves the library as it is.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

log = logging.getLogger("peebot.ingest.feed")

FOR_VERSION = "2.2.3"
shipped: Any = None  # the library's own hasNext, once `install` has replaced it


def has_next(self: Any) -> bool:
    """`python_HaxeIterator.hasNext`, catching StopIteration without the Haxe wrapping."""
    if not self.checked:
        try:
            self.x = self.it.__next__()
            self.has = True
        except StopIteration:
            self.has = False
            self.x = None
        self.checked = True
    return bool(self.has)


def install() -> bool:
    """Install `has_next` in the library's Haxe runtime; True if it is (now or already)."""
    try:
        found = version("lightstreamer-client-lib")
    except PackageNotFoundError:
        return False
    if found != FOR_VERSION:
        log.info(
            "lightstreamer-client-lib %s, not %s: its iterator left as it is", found, FOR_VERSION
        )
        return False
    from lightstreamer.client import ls_python_client_haxe as haxe

    iterator = getattr(haxe, "python_HaxeIterator", None)
    if iterator is None or not hasattr(iterator, "hasNext"):
        return False
    global shipped
    if iterator.hasNext is not has_next:
        shipped = iterator.hasNext
        iterator.hasNext = has_next
    return True
