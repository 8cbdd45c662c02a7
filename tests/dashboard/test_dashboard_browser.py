"""The page in a real browser (headless Chromium), served by `peebot dashboard` (a
subprocess), moved by `peebot inject` (the CLI): what a visitor sees.

Set PEEBOT_DASHBOARD_SCREENSHOT=docs/dashboard.png to refresh the README's screenshots (the
desktop one there, the 390 px phone one beside it as docs/dashboard-phone.png)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from peebot.supervisor import free_port, port_accepts
from tests.dashboard.seeding import (
    UPA_PROCESSOR,
    demo_history,
    demo_upa_events,
    mark_posted,
    past_days,
    signal,
    store_events,
    write_readings,
)
from tests.support.chromium import Chromium, find_chromium
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = find_chromium()
DEADLINE = 30.0
PAST_DAYS = 12
PHONE_SHOT_HEIGHT = 1500  # the phone screenshot: the cards, the live chart, the first events
LEVEL = "document.getElementById('level-value').textContent"
BADGE = "document.getElementById('conn').textContent"
IN_USE = "document.getElementById('in-use').textContent"
FRAMES = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        pytest.skip("no chromium: install Debian's `chromium` package (`.ci/run` does)")
    return CHROMIUM


def cli_env(db_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PEEBOT_DATABASE_URL=db_url, PYTHONUNBUFFERED="1")
    return env


class Server:
    """`peebot dashboard` as a process, as `peebot up` runs it."""

    def __init__(self, db_url: str, log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.db_url = db_url
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "peebot.cli", "dashboard", "--port", str(self.port)],
            env=cli_env(self.db_url),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_until(
            lambda: port_accepts("127.0.0.1", self.port),
            timeout=60,
            message=lambda: f"the dashboard to listen ({self.log.read_text()[-500:]})",
            alive=self.proc,
        )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@pytest.fixture
def seeded(db_url: str) -> Iterator[str]:
    """The demo's six hours (three uses posted to X) after PAST_DAYS days of history."""
    end = datetime.now(UTC).replace(microsecond=0)
    six_hours_ago = end - timedelta(hours=6)
    past_days(db_url, six_hours_ago, PAST_DAYS, level_at_end=38.0)
    events = demo_history(db_url, end)
    ids = store_events(
        db_url, six_hours_ago, end + timedelta(minutes=1), events, "urine_tank", ("dry_run", "x")
    )
    for key in sorted(ids, key=ids.__getitem__)[:3]:
        mark_posted(db_url, ids[key], "dry_run", f"line-{ids[key]}")
        mark_posted(db_url, ids[key], "x", str(1860000000000000000 + ids[key]))
    store_events(
        db_url, six_hours_ago, end + timedelta(minutes=1), demo_upa_events(end), UPA_PROCESSOR
    )
    yield db_url


def inject(db_url: str, value: str, *at: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "peebot.cli", "inject", "NODE3000005", value, *at],
        env=cli_env(db_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_page_shows_the_level_and_follows_an_inject(
    chromium: str, seeded: str, tmp_path: Path
) -> None:
    server = Server(seeded, tmp_path / "dashboard.log").start()

    async def scenario() -> None:
        async with Chromium(chromium) as browser:
            page = await browser.open(server.url, 1280, 900)
            before = await page.wait_for(f"{LEVEL} !== '–' && {LEVEL}", DEADLINE, "the level")
            await page.wait_for(f"{BADGE} === 'live'", DEADLINE, "the live badge")
            rows = await page.evaluate(
                "document.querySelectorAll('#events tbody tr[data-event-id]').length"
            )
            assert rows == 20  # the latest 20: the demo's 6 + 4 UPA cycle events, 10 older
            assert (await page.evaluate(IN_USE)).startswith("Someone is using the toilet")
            # the six hours' uses and transfer are the chart's marks
            marks = await page.evaluate("S.chart.events.map(e => e.type).join(',')")
            assert marks.split(",") == ["urination"] * 3 + ["bulk_transfer"] + ["urination"] * 2
            # the 30-day charts: uses on every past day, the tank hour by hour
            days_with_uses = await page.evaluate("charts.daily.data[1].filter(n => n > 0).length")
            assert days_with_uses >= PAST_DAYS - 1
            hours = await page.evaluate("charts.levels.data[0].length")
            assert hours >= 24 * (PAST_DAYS - 1)
            links = await page.evaluate(
                "[...document.querySelectorAll('#events a')].map(a => a.href)"
            )
            assert len(links) == 3 and all(
                link.startswith("https://x.com/i/web/status/") for link in links
            )
            assert await page.evaluate("document.getElementById('signal').textContent") == "AOS"
            new = "73" if before != "73" else "74"
            await asyncio.to_thread(inject, seeded, new)
            await page.wait_for(f"{LEVEL} === '{new}'", DEADLINE, f"the injected level {new}")
            # the live chart ends on it too (uPlot data: [times, tank, upa])
            assert await page.evaluate("charts.live.data[1].at(-1)") == int(new)
            # a reading in the last half of its millisecond (the plain inject above lands
            # there about half the time): once rounded up past the watermark, which the
            # browser truncates, it fell off the chart's right edge
            again = "61" if new != "61" else "62"
            late = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=1999)
            await asyncio.to_thread(inject, seeded, again, "--at", late.isoformat())
            await page.wait_for(f"{LEVEL} === '{again}'", DEADLINE, f"the injected level {again}")
            assert await page.evaluate("charts.live.data[1].at(-1)") == int(again)
            new = again
            await page.evaluate(FRAMES)
            assert page.exceptions == []
            shot = os.environ.get("PEEBOT_DASHBOARD_SCREENSHOT")
            await page.screenshot(Path(shot) if shot else tmp_path / "dashboard.png")
            # a phone: one column, nothing wider than the screen
            phone = await browser.open(server.url, 390, 844, mobile=True)
            await phone.wait_for(f"{LEVEL} === '{new}'", DEADLINE, "the level on a phone")
            width = await phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the page is {width} px wide on a 390 px screen"
            await phone.evaluate(FRAMES)
            await phone.screenshot(
                Path(shot).with_name(Path(shot).stem + "-phone.png")
                if shot
                else tmp_path / "dashboard-phone.png",
                height=PHONE_SHOT_HEIGHT,
            )
            assert phone.exceptions == []

    try:
        asyncio.run(scenario())
    finally:
        server.stop()


def test_through_a_loss_of_signal_the_page_cannot_tell_who_is_on_the_toilet(
    chromium: str, seeded: str, tmp_path: Path
) -> None:
    """The newest use ended a minute ago, then the station loses its signal: the newest
    reading stays where it was, and the page must not go on saying "right now"."""
    server = Server(seeded, tmp_path / "dashboard.log").start()
    signal_pill = "document.getElementById('signal').textContent"

    async def scenario() -> None:
        async with Chromium(chromium) as browser:
            page = await browser.open(server.url, 1280, 900)
            await page.wait_for(
                f"{IN_USE}.startsWith('Someone is using the toilet')", DEADLINE, "the use"
            )
            los = datetime.now(UTC)
            await asyncio.to_thread(write_readings, seeded, [], [signal("LOS", los)])
            await page.wait_for(f"{signal_pill} === 'LOS'", DEADLINE, "the LOS")
            assert await page.evaluate(IN_USE) == "Can't tell right now: no signal from the station"
            aos = los + timedelta(seconds=30)
            await asyncio.to_thread(write_readings, seeded, [], [signal("AOS", aos)])
            await page.wait_for(f"{signal_pill} === 'AOS'", DEADLINE, "the AOS")
            assert (await page.evaluate(IN_USE)).startswith("Someone is using the toilet")
            assert page.exceptions == []

    try:
        asyncio.run(scenario())
    finally:
        server.stop()


def test_the_page_says_it_reconnects_and_catches_up_after_a_restart(
    chromium: str, seeded: str, tmp_path: Path
) -> None:
    server = Server(seeded, tmp_path / "dashboard.log").start()

    async def scenario() -> None:
        async with Chromium(chromium) as browser:
            page = await browser.open(server.url, 1280, 900)
            await page.wait_for(f"{BADGE} === 'live'", DEADLINE, "the live badge")
            await asyncio.to_thread(server.stop)
            await page.wait_for(
                f"{BADGE}.includes('reconnecting')", DEADLINE, "the reconnect notice"
            )
            await asyncio.to_thread(inject, seeded, "88")  # committed while the server is down
            await asyncio.to_thread(server.start)
            # back-off is at most 30 s; the reconnect brings the current state
            await page.wait_for(f"{BADGE} === 'live' && {LEVEL} === '88'", 60, "live again with 88")
            assert page.exceptions == []

    try:
        asyncio.run(scenario())
    finally:
        server.stop()
