"""The dry run: posts go to a JSON-lines file, nothing leaves the machine (the default)."""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peebot_dagster.posting.backends.base import (
    ABSENT_L,
    DUPLICATE,
    POSTED_L,
    RETRY,
    Backend,
    Lookup,
    PostError,
    PostRequest,
    PostResult,
)
from peebot_dagster.settings import Settings

log = logging.getLogger("peebot.posting")


class DryRunBackend(Backend):
    """Logs the post and appends one JSON line to `PEEBOT_DRY_RUN_FILE`. Idempotent by key."""

    name = "dry_run"
    resend_window = None  # lookup is authoritative

    def __init__(self, path: Path | str | None = None, *, clock: Any = None) -> None:
        self.path = Path(path) if path else Path(".peebot/posts.jsonl")
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> DryRunBackend:
        return cls(settings.dry_run_file or settings.home / "posts.jsonl")

    def _find(self, key: str) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a torn last line from a crash: not a post
                if isinstance(rec, dict) and rec.get("key") == key:
                    return rec
        return None

    def lookup(self, request: PostRequest) -> Lookup:
        rec = self._find(request.key)
        return Lookup(POSTED_L, rec.get("id")) if rec else Lookup(ABSENT_L)

    def post(self, request: PostRequest) -> PostResult:
        with self._lock:
            existing = self._find(request.key)
            if existing:
                err = PostError(DUPLICATE, f"already in {self.path}")
                err.external_id = existing.get("id")
                raise err
            ext_id = f"dry-{request.post_id}"
            rec = {
                "id": ext_id,
                "key": request.key,
                "post_id": request.post_id,
                "text": request.text,
                "at": self._clock().isoformat(),
            }
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                raise PostError(RETRY, f"cannot append to {self.path}: {exc}") from exc
        log.info("dry run post %s: %s", ext_id, request.text.replace("\n", " | "))
        return PostResult(ext_id, f"appended to {self.path}")
