"""Run tags and run keys of PeeBot's runs, named once.

`KIND_TAG` sorts runs for the instance's concurrency limits (peebot/config/dagster.yaml,
`tag_concurrency_limits`, which spells the same key). The range and partition tags are
Dagster's own: a run carrying both range tags covers that range of minute partitions.
"""

from __future__ import annotations

KIND_TAG = "peebot/kind"
POSTS_TAG = "peebot/posts"

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"
RUN_KEY_TAG = "dagster/run_key"


def kind(value: str) -> dict[str, str]:
    """The tags saying what kind of run this is (`detection`, `live`, `posting`, ...)."""
    return {KIND_TAG: value}


def range_tags(first: str, last: str) -> dict[str, str]:
    """The tags of a run over the partition keys `first` .. `last` (inclusive)."""
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}


def range_run_key(first: str, last: str) -> str:
    """The run key of a range run (Dagster's own `start...end` notation)."""
    return first if first == last else f"{first}...{last}"
