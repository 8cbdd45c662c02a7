from typing import Any

def event_ids(
    namespace: bytes, items: list[Any], micros: list[int], values: list[float]
) -> list[bytes]: ...
def update_columns(
    batch: list[Any],
    good_items: set[str],
    class_text: dict[str, int],
    max_text: int,
    tails: dict[tuple[Any, Any, bool], str],
    meta_tail: Any,
) -> tuple[list[Any], ...] | None: ...
def readings(
    cls: type[Any],
    items: list[Any],
    micros: list[int],
    values: list[float],
    classes: list[Any],
    calibrated: list[Any],
    ids: list[bytes],
    received: list[Any],
    metadata: list[Any],
    source: str,
) -> list[Any]: ...
def copy_rows(readings: list[Any], channels: dict[str, int], direct: bool) -> bytes: ...
