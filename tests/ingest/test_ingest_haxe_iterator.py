"""The iterator fix for lightstreamer-client-lib's Haxe runtime (`haxe_iterator`): the same
results and exceptions as the library's own `hasNext`, without its wrapping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from lightstreamer.client import ls_python_client_haxe as haxe

from peebot_ingest import haxe_iterator


def _walk(it: Any) -> list[Any]:
    out = []
    while it.hasNext():
        out.append(it.next())
    return out


class Boom(Exception):
    pass


def _failing() -> Iterator[int]:
    yield 1
    raise Boom("from the iterator")


@pytest.fixture
def shipped() -> Iterator[Any]:
    current = haxe.python_HaxeIterator.hasNext
    yield haxe_iterator.shipped or current  # a feed client in this process may have installed it
    haxe.python_HaxeIterator.hasNext = current


def test_same_items_and_end_as_the_library(shipped: Any) -> None:
    data = {3: "c", 1: "a", 2: "b"}
    haxe.python_HaxeIterator.hasNext = shipped
    before = _walk(haxe.python_HaxeIterator(iter(data.items())))
    empty_before = _walk(haxe.python_HaxeIterator(iter([])))
    assert haxe_iterator.install()
    assert haxe.python_HaxeIterator.hasNext is haxe_iterator.has_next
    assert _walk(haxe.python_HaxeIterator(iter(data.items()))) == before == list(data.items())
    assert _walk(haxe.python_HaxeIterator(iter([]))) == empty_before == []
    it = haxe.python_HaxeIterator(iter([7]))
    assert it.hasNext() and it.hasNext()  # asking twice does not advance
    assert it.next() == 7 and not it.hasNext() and it.next() is None


def test_other_exceptions_propagate_as_with_the_library(shipped: Any) -> None:
    for has_next in (shipped, haxe_iterator.has_next):
        haxe.python_HaxeIterator.hasNext = has_next
        it = haxe.python_HaxeIterator(_failing())
        assert it.hasNext() and it.next() == 1
        with pytest.raises(Boom, match="from the iterator"):
            it.hasNext()


def test_only_the_version_it_was_written_for(shipped: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    haxe.python_HaxeIterator.hasNext = shipped
    monkeypatch.setattr(haxe_iterator, "version", lambda name: "9.9.9")
    assert not haxe_iterator.install()
    assert haxe.python_HaxeIterator.hasNext is shipped
