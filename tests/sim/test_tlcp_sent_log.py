"""The server's sent log is written before what it records leaves: a server killed while a
send waits on a slow client has sent nothing its log lacks (the counter script resumes after
the last logged number, so an unlogged send would be numbered twice)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from peebot_sim.feeds import ScriptedFeed
from peebot_sim.tlcp import DEFAULT_ADAPTER_SET, Session, TlcpServer


class StuckSink:
    """A connection whose send never completes (a client that stopped reading)."""

    def __init__(self) -> None:
        self.sending = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, data: str) -> None:
        self.sending.set()
        await self.release.wait()

    async def close(self) -> None:
        self.release.set()


def test_an_update_is_logged_before_its_send_completes(tmp_path: Path) -> None:
    log = tmp_path / "sent.jsonl"

    async def scenario() -> list[dict[str, str]]:
        server = TlcpServer(ScriptedFeed(), host="127.0.0.1", port=0, sent_log=log)
        await server.start()
        try:
            session = server.new_session({"LS_adapter_set": DEFAULT_ADAPTER_SET})
            assert isinstance(session, Session)
            sink = StuckSink()
            session.attach(sink)  # type: ignore[arg-type]
            session.send("U,1,1,42|...", {"item": "NODE3000005", "fields": {"Value": "42"}})
            await asyncio.wait_for(sink.sending.wait(), 30)
            # the send has not completed, and the log already holds the update
            logged = [json.loads(line) for line in log.read_text().splitlines()]
            sink.release.set()
            return logged
        finally:
            await server.stop()

    assert asyncio.run(scenario()) == [{"item": "NODE3000005", "fields": {"Value": "42"}}]
