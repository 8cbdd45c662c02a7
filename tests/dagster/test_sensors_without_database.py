"""With no database configured (`dagster dev` on a fresh clone), every sensor skips its tick
with one line saying so, instead of raising a traceback on each tick."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest

from peebot_dagster.defs.detection.sensors import live_detection_sensor, telemetry_watermark_sensor
from peebot_dagster.defs.posting.sensors import posting_sensor
from peebot_dagster.resources import NOT_CONFIGURED, PostgresResource


@pytest.mark.parametrize(
    "sensor",
    [telemetry_watermark_sensor, live_detection_sensor, posting_sensor],
    ids=lambda s: s.name,
)
def test_a_sensor_without_a_database_skips_with_one_line(
    sensor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PEEBOT_DATABASE_URL", raising=False)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"db": PostgresResource()})
        result = sensor(context)
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == NOT_CONFIGURED
    # with a database named, the same sensor goes on to connect (and says why it cannot)
    monkeypatch.setenv("PEEBOT_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    with dg.instance_for_test() as instance, pytest.raises(Exception, match="cannot connect"):
        sensor(dg.build_sensor_context(instance=instance, resources={"db": PostgresResource()}))
