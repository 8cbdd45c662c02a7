"""Whatever arrives, in a form PostgreSQL stores: text without NUL or lone surrogates, JSON
without NaN. A rejection must never fail to be written (nothing is silently lost), so its
reason and raw payload go through here. Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MAX_TEXT = 4096  # characters kept of any one text value


def clean_text(text: str) -> str:
    """Text PostgreSQL accepts: no NUL, no lone surrogates, bounded length."""
    if text.isascii() and len(text) <= MAX_TEXT and "\x00" not in text:
        return text  # the common case, cheaply
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "…"
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def json_safe(value: Any) -> Any:
    """A scalar as a jsonb value: finite numbers, clean text; anything else as its repr."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return clean_text(value)
    return clean_text(repr(value))


def raw_payload(item: Any, fields: Any) -> dict[str, Any]:
    """What the feed sent, in a form that always fits a jsonb column."""
    payload: dict[str, Any] = {"item": json_safe(item)}
    if isinstance(fields, Mapping):
        try:
            payload["fields"] = {
                clean_text(str(k)): json_safe(v) for k, v in list(fields.items())[:64]
            }
        except Exception as exc:  # a hostile mapping
            payload["fields"] = clean_text(f"unreadable fields: {type(exc).__name__}")
    else:
        payload["fields"] = json_safe(fields)
    return payload
