"""Column-wise helpers for validating many feed updates at once (`Validator.updates`).

Each function does for a whole column what `validate` does for one value, with the same
result bit for bit (the tests compare them on random and hostile input). Pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha1
from typing import Any

import numpy as np
import numpy.typing as npt

from peebot_ingest import speedups

US_PER_HOUR = 3_600_000_000
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _plain_number(raw: Any) -> float:
    """`validate.parse_number` of feed text, NaN where it gives None (or is not text)."""
    if type(raw) is not str or len(raw) > 64 or "_" in raw or not raw.isascii():
        return np.nan
    try:
        return float(raw)
    except ValueError:
        return np.nan


def number_column(raw: Sequence[Any]) -> tuple[FloatArray, BoolArray]:
    """The floats of a column of feed text and where they are usable: what
    `validate.parse_number` gives for text (finite, plain ASCII, no `_`, at most 64
    characters); non-text cells are marked unusable (left to the one-by-one path)."""
    n = len(raw)
    if n and set(map(type, raw)) == {str}:
        joined = "".join(raw)
        if joined.isascii() and "_" not in joined and max(map(len, raw)) <= 64:
            try:  # the common case: one C loop over the column
                values = np.fromiter(map(float, raw), np.float64, n)
            except ValueError:
                pass
            else:
                return values, np.isfinite(values)
    values = np.fromiter(map(_plain_number, raw), np.float64, n)
    return values, np.isfinite(values)


def decode_micros(hours: FloatArray, year_start_us: int) -> IntArray:
    """Microseconds since the epoch of TimeStamps (hours >= 24) in the year starting at
    `year_start_us`: exactly `year start + timedelta(hours=hours - 24.0)`.

    timedelta splits a float into whole hours (exact) and a fraction whose microseconds are
    rounded half to even; the whole hours contribute an even number of microseconds, so the
    parity it rounds by is the fraction's own, which is what `np.rint` does."""
    h = hours - 24.0
    whole = np.trunc(h)
    frac_us = np.rint((h - whole) * float(US_PER_HOUR))
    result: IntArray = (
        whole.astype(np.int64) * US_PER_HOUR + frac_us.astype(np.int64) + year_start_us
    )
    return result


def event_ids(
    namespace: bytes, items: Sequence[str], micros: Sequence[int], values: Sequence[float]
) -> list[bytes]:
    """`validate.event_id` of each (item, time, value): UUIDv5 bytes of
    "<item>|<µs since epoch>|<repr(value)>"; the version and variant bits set column-wise."""
    n = len(items)
    if not n:
        return []
    native = speedups.native
    if native is not None and type(items) is type(micros) is type(values) is list:
        try:
            return native.event_ids(namespace, items, micros, values)
        except (TypeError, ValueError):  # a value not a float, a name too long: Python's
            pass
    copy = sha1(namespace).copy  # a copy of the namespace's state is cheaper than a new hash
    hashes = []
    for item, us, value in zip(items, micros, values, strict=True):
        h = copy()
        h.update(f"{item}|{us}|{value!r}".encode())
        hashes.append(h.digest())
    digests = b"".join(hashes)
    ids = np.frombuffer(digests, np.uint8).reshape(n, 20)[:, :16].copy()
    ids[:, 6] = (ids[:, 6] & 0x0F) | 0x50
    ids[:, 8] = (ids[:, 8] & 0x3F) | 0x80
    raw = ids.tobytes()
    return [raw[i : i + 16] for i in range(0, 16 * n, 16)]


def first_true(mask: BoolArray) -> int:
    """Index of the first True, or len(mask) when there is none."""
    hit = np.flatnonzero(mask)
    return int(hit[0]) if hit.size else len(mask)
