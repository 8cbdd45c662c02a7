"""Seeded random streams: every random draw of the simulator comes from a generator keyed by
(seed, component, block...), so the output does not depend on how `generate()` is chunked and
one component's draws never shift another's (a new component takes a new stream id)."""

from __future__ import annotations

import zlib

import numpy as np

# stream ids (the numbers are part of every seeded day's identity: never renumber them)
S_EVENTS, S_SCENARIO, S_UPA, S_TANK, S_LOS, S_WATER, S_RARE, S_ANALOG, S_INIT = range(101, 110)
S_DIPS = 110  # one-sample dips of the tank sensor
S_SLOW = 111  # slow rises after a UPA stop


def rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, *keys])


def crc(text: str) -> int:
    return zlib.crc32(text.encode())
