"""A tiny TCP proxy the tests control: forward, or refuse and drop every connection."""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class TcpProxy:
    def __init__(self, upstream: tuple[str, int] | str) -> None:
        self.upstream = upstream  # (host, port), or the path of a unix socket
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._accepting = threading.Event()
        self._stop = False
        self.connections = 0
        self.dropped = 0
        self._bind()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="tcp-proxy")
        self._thread.start()

    def _bind(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        sock.settimeout(0.1)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._accepting.set()

    def _accept_loop(self) -> None:
        while not self._stop:
            listener = self._listener
            if listener is None:
                return
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            if not self._accepting.is_set():  # refusing: drop it at once
                with contextlib.suppress(OSError):
                    client.close()
                self.dropped += 1
                continue
            try:
                if isinstance(self.upstream, str):
                    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    upstream.connect(self.upstream)
                else:
                    upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
                self.connections += 1
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 0.2)
                if self._stop:
                    break
                for src in readable:
                    data = src.recv(65536)
                    if not data:
                        raise OSError("closed")
                    (b if src is a else a).sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()
            with self._lock:
                self._conns.discard(a)
                self._conns.discard(b)

    @classmethod
    def for_database(cls, url: str) -> TcpProxy:
        """A proxy in front of the server of a PostgreSQL URL (TCP or unix socket)."""
        import psycopg

        info = psycopg.conninfo.conninfo_to_dict(url)
        host = str(info.get("host") or "127.0.0.1")
        port = int(info.get("port") or 5432)
        if host.startswith("/"):
            return cls(f"{host}/.s.PGSQL.{port}")
        return cls((host, port))

    def url_for(self, url: str) -> str:
        """The database URL `url`, pointed at this proxy."""
        import psycopg

        return psycopg.conninfo.make_conninfo(url, host="127.0.0.1", port=str(self.port))

    def refuse(self) -> None:
        """Drop every open connection and every new one (accepted, then closed at once)."""
        self._accepting.clear()
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def resume(self) -> None:
        self._accepting.set()

    def close(self) -> None:
        self._stop = True
        self.refuse()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
