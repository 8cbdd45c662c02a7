"""The joke generator: a pure function from an event to the text of a post.

The template is chosen from the event key (sha256, so it is stable across processes and
retries) and a facts line with the level change, the estimated volume and the UTC time is
always appended. Length is checked the way each network counts it (X: weighted characters;
Bluesky: graphemes; Mastodon: characters).
"""

from __future__ import annotations

import hashlib
import math
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from peebot_dagster.detectors.urine import ML_PER_PCT

LIMITS = {"x": 280, "bluesky": 300, "mastodon": 500, "dry_run": 280}


class RenderError(ValueError):
    """The event lacks what every post must carry (a level change)."""


@dataclass(frozen=True)
class EventView:
    """What the renderer and the policy need from a `detected_event` row."""

    event_key: str
    event_type: str
    detected_at: datetime
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True)
class Jokes:
    templates: Mapping[str, Sequence[str]]
    digest: str
    digest_none: str


@lru_cache(maxsize=1)
def load_jokes() -> Jokes:
    raw = tomllib.loads(
        resources.files("peebot_dagster.posting").joinpath("jokes.toml").read_text("utf-8")
    )
    templates = {k: tuple(v) for k, v in raw["templates"].items()}
    return Jokes(templates, raw["digest"]["text"], raw["digest"]["none"])


# --- counting like the networks do ----------------------------------------------------------

# twitter-text v3: weight 100 (one "character") for these code point ranges, 200 otherwise;
# an emoji sequence counts 200 as a whole; the text is NFC-normalised first.
_X_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


def _is_extender(cp: int) -> bool:
    """Code points that attach to the previous one inside a grapheme cluster."""
    return (
        cp in (0x200D, 0xFE0E, 0xFE0F, 0x20E3)
        or 0x1F3FB <= cp <= 0x1F3FF  # skin tones
        or 0xE0020 <= cp <= 0xE007F  # tag sequences (flags)
        or unicodedata.category(chr(cp)) in ("Mn", "Me", "Mc")
    )


def _clusters(text: str) -> list[str]:
    """An approximate grapheme segmentation (extenders, ZWJ sequences, flag pairs).

    Never splits a real cluster into more pieces than code points, and for the texts we
    produce (Latin letters, digits, a few emoji) matches the Unicode rules exactly.
    """
    out: list[str] = []
    joined = False
    for ch in text:
        cp = ord(ch)
        if out and (joined or _is_extender(cp)):
            out[-1] += ch
            joined = cp == 0x200D
            continue
        if (
            out
            and 0x1F1E6 <= cp <= 0x1F1FF
            and len(out[-1]) == 1
            and 0x1F1E6 <= ord(out[-1]) <= 0x1F1FF
        ):
            out[-1] += ch  # regional indicator pair = one flag
            continue
        out.append(ch)
        joined = False
    return out


def grapheme_count(text: str) -> int:
    return len(_clusters(text))


def _is_emoji_cluster(cluster: str) -> bool:
    cp = ord(cluster[0])
    return cp >= 0x1F000 or (len(cluster) > 1 and ("\u200d" in cluster or "\ufe0f" in cluster))


def x_weighted_length(text: str) -> int:
    """The length X counts (twitter-text v3 weights; no URLs in our posts)."""
    total = 0
    for cluster in _clusters(unicodedata.normalize("NFC", text)):
        if _is_emoji_cluster(cluster):
            total += 2
            continue
        for ch in cluster:
            cp = ord(ch)
            total += 1 if any(lo <= cp <= hi for lo, hi in _X_LIGHT) else 2
    return total


def length_for(backend: str, text: str) -> int:
    if backend in ("x", "dry_run"):
        return x_weighted_length(text)
    if backend == "bluesky":
        return grapheme_count(text)
    return len(text)


def fits(backend: str, text: str) -> bool:
    return length_for(backend, text) <= LIMITS.get(backend, 280)


def fits_everywhere(text: str) -> bool:
    return all(fits(b, text) for b in LIMITS)


# --- rendering ------------------------------------------------------------------------------


def _num(metadata: Mapping[str, Any], key: str) -> float | None:
    value = metadata.get(key)
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


@dataclass(frozen=True)
class Facts:
    before: float | None
    after: float | None
    delta: float
    volume_ml: int
    at: datetime


def facts_of(event: EventView) -> Facts:
    md = event.metadata or {}
    before, after = _num(md, "level_before"), _num(md, "level_after")
    delta = _num(md, "delta")
    if delta is None and before is not None and after is not None:
        delta = after - before
    if delta is None:
        raise RenderError(f"event {event.event_key}: metadata has no level change (delta)")
    if abs(delta) > 1000:
        raise RenderError(f"event {event.event_key}: implausible level change {delta:g}")
    if before is not None and not -1000 <= before <= 1000:
        before = None
    if after is not None and not -1000 <= after <= 1000:
        after = None
    volume = _num(md, "volume_ml")
    if volume is None or volume < 0 or volume > 1_000_000:
        volume = abs(delta) * ML_PER_PCT
    at = event.detected_at
    if at.tzinfo is None:
        raise RenderError(f"event {event.event_key}: detected_at has no time zone")
    return Facts(before, after, delta, round(volume), at.astimezone(UTC))


def template_index(event_key: str, n: int) -> int:
    digest = hashlib.sha256(event_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n


def facts_line(f: Facts) -> str:
    change = f"{f.delta:+.1f} pts, ~{f.volume_ml} mL"
    when = f.at.strftime("%Y-%m-%d %H:%M UTC")
    if f.before is not None and f.after is not None:
        return f"Urine tank {f.before:.1f}% -> {f.after:.1f}% ({change}), {when}."
    return f"Urine tank {change}, {when}."


def _fields(f: Facts) -> dict[str, str]:
    return {
        "volume": str(f.volume_ml),
        "delta": f"{f.delta:+.1f}",
        "before": "?" if f.before is None else f"{f.before:.1f}",
        "after": "?" if f.after is None else f"{f.after:.1f}",
        "time": f.at.strftime("%H:%M"),
        "date": f.at.strftime("%Y-%m-%d"),
    }


def templates_for(event_type: str) -> Sequence[str]:
    jokes = load_jokes()
    return jokes.templates.get(event_type) or jokes.templates["urination"]


def render(event: EventView, backend: str = "x") -> str:
    """The post for `event` on `backend`. Same event, same text (retries are identical)."""
    f = facts_of(event)
    options = templates_for(event.event_type)
    joke = options[template_index(event.event_key, len(options))].format(**_fields(f))
    text = f"{joke}\n{facts_line(f)}"
    if fits(backend, text) and fits_everywhere(text):
        return text
    return facts_line(f)  # cannot happen with the shipped templates; the facts always fit


def render_digest(day: date, events: Sequence[EventView]) -> str:
    """The short daily digest over the day's (postable) events."""
    jokes = load_jokes()
    uses = [e for e in events if e.event_type == "urination"]
    bulk = [e for e in events if e.event_type == "bulk_transfer"]
    if not uses and not bulk:
        return jokes.digest_none.format(date=day.isoformat())
    facts = sorted((facts_of(e) for e in (*uses, *bulk)), key=lambda f: f.at)
    use_facts = [facts_of(e) for e in uses]
    return jokes.digest.format(
        date=day.isoformat(),
        count=len(uses),
        volume=sum(f.volume_ml for f in use_facts),
        bulk=len(bulk),
        change=f"{sum(f.delta for f in facts):+.1f}",
        first=facts[0].at.strftime("%H:%M"),
        last=facts[-1].at.strftime("%H:%M"),
    )
