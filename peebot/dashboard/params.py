"""Query and body parameters of the JSON API, checked as plain functions: each failure is a
`BadParameter` whose message is the one line the client gets with HTTP 400."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

_ITEM = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_PLUS_AS_SPACE = re.compile(r"(?<=\d) (\d\d:?\d\d)$")
MAX_LEVEL_SPAN = timedelta(days=31)
MAX_PARAM_CHARS = 64


class BadParameter(ValueError):
    """A parameter the API cannot take (one line, said back with HTTP 400)."""


def _shown(text: str) -> str:
    return repr(text if len(text) <= MAX_PARAM_CHARS else text[:MAX_PARAM_CHARS] + "...")


def parse_time(name: str, text: str | None) -> datetime:
    """An ISO 8601 time; UTC unless it carries an offset."""
    if text is None or not text.strip():
        raise BadParameter(f"{name} is required (an ISO 8601 time, e.g. 2026-11-30T05:00:00Z)")
    # an unescaped "+01:00" offset arrives as " 01:00" (a + in a query string is a space)
    cleaned = _PLUS_AS_SPACE.sub(r"+\1", text.strip()).replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(cleaned)
    except ValueError:
        raise BadParameter(f"{name}: {_shown(text)} is not an ISO 8601 time") from None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def parse_item(text: str | None) -> str:
    if text is None or not text.strip():
        raise BadParameter("item is required (e.g. NODE3000005)")
    if not _ITEM.match(text.strip()):
        raise BadParameter(f"item: {_shown(text)} is not an ISS Live item id")
    return text.strip().upper()


@dataclass(frozen=True)
class LevelQuery:
    item: str
    start: datetime
    end: datetime


def level_query(query: Mapping[str, str], now: datetime) -> LevelQuery:
    """`item`, `from`, `to` (default: now); `from` before `to`, at most 31 days apart."""
    item = parse_item(query.get("item"))
    start = parse_time("from", query.get("from"))
    end = parse_time("to", query.get("to")) if query.get("to") else now
    if end <= start:
        raise BadParameter("from must be before to")
    if end - start > MAX_LEVEL_SPAN:
        raise BadParameter(f"from..to spans more than {MAX_LEVEL_SPAN.days} days")
    return LevelQuery(item, start, end)


def events_since(query: Mapping[str, str], now: datetime) -> datetime:
    """`since` (default: 24 hours ago)."""
    if "since" not in query:
        return now - timedelta(hours=24)
    return parse_time("since", query.get("since"))


@dataclass(frozen=True)
class InjectBody:
    item: str
    value: str
    at: datetime | None
    status_class: int | None


def inject_body(body: Any) -> InjectBody:
    """`{"item": "NODE3000005", "value": 42, "at": "<ISO>"?, "status_class": 24?}`."""
    if not isinstance(body, dict):
        raise BadParameter("the body must be a JSON object with item and value")
    item = parse_item(body.get("item") if isinstance(body.get("item"), str) else None)
    value = body.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadParameter("value must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadParameter("value must be a finite number")
    text = str(value).strip()
    if not text or len(text) > MAX_PARAM_CHARS:
        raise BadParameter("value must be a number")
    at = body.get("at")
    if at is not None and not isinstance(at, str):
        raise BadParameter("at must be an ISO 8601 time")
    status_class = body.get("status_class")
    if status_class is not None and (
        isinstance(status_class, bool)
        or not isinstance(status_class, int)
        or not -32768 <= status_class <= 32767
    ):
        raise BadParameter("status_class must be a small integer")
    return InjectBody(item, text, parse_time("at", at) if at else None, status_class)
