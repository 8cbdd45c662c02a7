"""One minute-partitioned detection asset per processor (detectors/registry.py).

Each reads its window straight from the database, with the processor's look-back and
look-ahead (declared to Dagster as a `TimeWindowPartitionMapping` on `telemetry_reading`),
keeps the events that start inside its partition range, and replaces exactly the events that
range owns. `BackfillPolicy.single_run()`: a backfill of any range is one run and one query.
"""

# No `from __future__ import annotations` here: Dagster reads the asset function's config
# annotation at definition time and cannot resolve a string naming a class.

import base64
import math
from datetime import timedelta
from typing import Any

import dagster as dg

from peebot_dagster.charts import event_charts
from peebot_dagster.defs.detection.partitions import minute_partitions
from peebot_dagster.defs.telemetry import TELEMETRY_READING_KEY
from peebot_dagster.detectors.base import Processor
from peebot_dagster.detectors.registry import PROCESSORS
from peebot_dagster.resources import PostgresResource
from peebot_dagster.settings import get_settings
from peebot_dagster.store import RawReadingsGone
from peebot_dagster.windows import (
    ParamsError,
    WindowOutcome,
    level_item,
    partition_metadata,
    run_window,
    with_overrides,
)

# Asset names are nouns; a processor without an entry gets `<name>_events`.
ASSET_NAMES = {
    "urine_tank": "urine_tank_events",
    "upa_cycle": "upa_cycles",
    "signal": "signal_events",
    "clean_water": "clean_water_events",
}
DETECTION_GROUP = "detection"
PER_MINUTE_METADATA_LIMIT = 60


def asset_name(processor: Processor) -> str:
    return ASSET_NAMES.get(processor.name, f"{processor.name}_events")


class DetectionConfig(dg.Config):  # type: ignore[misc]
    """Run config of a detection asset: detector parameter overrides, by name
    (e.g. `min_rise_pct: 3`), for re-running a window with other thresholds."""

    params: dict[str, float] = {}


def _minutes(delta: timedelta) -> int:
    return math.ceil(delta.total_seconds() / 60.0)


def materialization_metadata(outcome: WindowOutcome) -> dict[str, Any]:
    """Numbers for the whole run (every partition of the range gets them)."""
    result = outcome.result
    by_type: dict[str, int] = {}
    for event in outcome.events:
        by_type[event.event_type] = by_type.get(event.event_type, 0) + 1
    meta: dict[str, Any] = {
        "events": 0,  # per minute; minutes with events override it
        "range_events": len(outcome.events),
        "inserted": len(result.inserted),
        "updated": len(result.updated),
        "unchanged": len(result.unchanged),
        "deleted": len(result.deleted),
        "retracted": len(result.retracted),
        "enqueued_posts": result.enqueued,
        "readings": len(outcome.frame),
        "complete": outcome.complete,
        "read_seconds": round(outcome.timings["read_s"], 4),
        "detect_seconds": round(outcome.timings["detect_s"], 4),
        "store_seconds": round(outcome.timings["store_s"], 4),
        "window": dg.MetadataValue.text(
            f"[{outcome.start:%Y-%m-%d %H:%M}, {outcome.end:%Y-%m-%d %H:%M}) UTC, "
            f"look-back {outcome.processor.lookback}, look-ahead {outcome.processor.lookahead}"
        ),
        "params": dg.MetadataValue.json(outcome.processor.params_dict(None)),
    }
    for event_type in outcome.processor.event_types:
        meta[f"range_{event_type}"] = by_type.get(event_type, 0)
    return meta


def build_detection_asset(
    processor: Processor, partitions_def: dg.TimeWindowPartitionsDefinition
) -> dg.AssetsDefinition:
    lookback_min, lookahead_min = _minutes(processor.lookback), _minutes(processor.lookahead)

    @dg.asset(
        name=asset_name(processor),
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[
            dg.AssetDep(
                TELEMETRY_READING_KEY,
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-lookback_min,
                    end_offset=lookahead_min,
                    allow_nonexistent_upstream_partitions=True,
                ),
            )
        ],
        group_name=DETECTION_GROUP,
        kinds={"postgres", "python"},
        description=processor.description,
        metadata={
            "processor": processor.name,
            "event_types": ", ".join(processor.event_types),
            "items": ", ".join(processor.items),
            "lookback_minutes": lookback_min,
            "lookahead_minutes": lookahead_min,
        },
    )
    def detection_asset(
        context: dg.AssetExecutionContext, config: DetectionConfig, db: PostgresResource
    ) -> dg.MaterializeResult:
        window = context.partition_time_window
        try:
            params = with_overrides(processor, dict(config.params))
        except ParamsError as exc:
            raise dg.Failure(str(exc)) from exc
        with db.connect(autocommit=True) as conn:
            try:
                outcome = run_window(conn, processor, window.start, window.end, params)
            except RawReadingsGone as exc:
                raise dg.Failure(str(exc)) from exc
        keys = list(context.partition_keys)
        per_minute = partition_metadata(outcome, keys)
        for key, png in event_charts(outcome, get_settings().charts_per_run).items():
            b64 = base64.b64encode(png).decode("ascii")
            chart = dg.MetadataValue.md(f"![level](data:image/png;base64,{b64})")
            per_minute[key] = {**per_minute[key], "chart": chart}
        # Dagster re-lists the whole range on every partition-scoped add (quadratic), so a
        # long range gets per-minute metadata only where something happened; the run-wide
        # `events: 0` covers the quiet minutes.
        if len(keys) > PER_MINUTE_METADATA_LIMIT:
            per_minute = {k: m for k, m in per_minute.items() if m["events"]}
            per_minute = dict(list(per_minute.items())[:PER_MINUTE_METADATA_LIMIT])
        for key, meta in per_minute.items():
            context.add_asset_metadata(meta, partition_key=key)
        result = outcome.result
        context.log.info(
            f"{processor.name} [{window.start:%Y-%m-%d %H:%M}, {window.end:%Y-%m-%d %H:%M}): "
            f"{len(outcome.events)} events from {len(outcome.frame)} readings "
            f"(+{len(result.inserted)} ~{len(result.updated)} -{len(result.deleted)} "
            f"retracted {len(result.retracted)}), detection "
            f"{outcome.detection_seconds:.3f} s"
        )
        meta = materialization_metadata(outcome)
        if params is not processor.params:
            meta["params"] = dg.MetadataValue.json(processor.params_dict(params))
        if item := level_item(processor):
            meta["level_item"] = item
        return dg.MaterializeResult(metadata=meta)

    return detection_asset


def build_detection_assets(
    partitions_def: dg.TimeWindowPartitionsDefinition,
    processors: tuple[Processor, ...] = PROCESSORS,
) -> list[dg.AssetsDefinition]:
    return [build_detection_asset(p, partitions_def) for p in processors]


DETECTION_ASSETS = build_detection_assets(minute_partitions)
