"""One field of a feed update, parsed: pure functions that never raise on bad input.

An update is an item name and a mapping of the six ISS Live fields (`TimeStamp`, `Value`,
`Status.Class`, `Status.Indicator`, `Status.Color`, `CalibratedData`), all text. These
helpers turn one field into a value or a reason it is not one; `validate` and
`batch_validate` put them together.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from peebot_ingest.storable import clean_text

ITEM_ID = re.compile(r"[A-Z0-9_]{1,64}")
STATUS_CLASS_MAX = 32767  # smallint
# Status.Class text the feed actually sends, parsed once (the hot path looks it up)
CLASS_TEXT = {str(n): n for n in range(256)}
_SMALL_INT = re.compile(r"\s*\d{1,5}\s*")


def parse_number(raw: Any) -> float | None:
    """A finite float from the feed's text (or a number); None when it is not one.

    Plain decimal or exponent notation only: no `nan`, `inf`, `1_000`, hex or empty."""
    if type(raw) is str:
        if len(raw) > 64 or "_" in raw or not raw.isascii():
            return None
        try:
            number = float(raw)
        except ValueError:
            return None
        if number - number != 0.0:  # inf or nan (faster than math.isfinite + a call)
            return None
        return number
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    try:
        number = float(raw)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def parse_status_class(raw: Any) -> tuple[int | None, str | None]:
    """(class, None) or (None, reason). Missing or empty means no class."""
    if raw is None or raw == "":
        return None, None
    cached = CLASS_TEXT.get(raw) if type(raw) is str else None
    if cached is not None:
        return cached, None
    if isinstance(raw, int) and not isinstance(raw, bool):
        number = raw
    elif isinstance(raw, str) and _SMALL_INT.fullmatch(raw):
        number = int(raw)
    else:
        return None, f"Status.Class {short_repr(raw)} is not a small integer"
    if not 0 <= number <= STATUS_CLASS_MAX:
        return None, f"Status.Class {number} is out of range 0..{STATUS_CLASS_MAX}"
    return number, None


def short_repr(raw: Any) -> str:
    """A value as quoted in a rejection reason: its repr, cut to 40 characters."""
    text = repr(raw)
    return clean_text(text if len(text) <= 40 else text[:37] + "...")


def optional_text(raw: Any) -> str | None:
    """A text field as stored: None when missing or empty, else clean text."""
    if raw is None or raw == "":
        return None
    return clean_text(raw if isinstance(raw, str) else str(raw))


_JSON_TEXT: dict[Any, str] = {}


def json_text(raw: Any) -> str:
    """A JSON string of a field's text; the few values a status field takes are cached."""
    cached = _JSON_TEXT.get(raw) if type(raw) is str else None
    if cached is not None:
        return cached
    text = json.dumps(optional_text(raw), ensure_ascii=False)
    if type(raw) is str and len(_JSON_TEXT) < 1024 and len(raw) <= 32:
        _JSON_TEXT[raw] = text
    return text
