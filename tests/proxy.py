"""A TCP proxy on 127.0.0.1 in front of a real server, switchable between three states an operator meets:
`up` (forwards), `down` (the server is gone: connections are cut at once) and `hang` (the server accepts but
never answers). Tests point clients at the proxy and flip its state; the server behind it is real.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


class SwitchProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "up"
        self.seen = b""  # everything clients sent while up (tests count requests in it)
        self.on_data: Callable[[SwitchProxy], None] | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, mode: str) -> None:
        """Switch state; going down or hanging cuts the connections already open, as a dying server would."""
        assert mode in ("up", "down", "hang"), mode
        self.mode = mode
        if mode != "up":
            with self._lock:
                for sock in self._open:
                    _close(sock)
                self._open.clear()

    def close(self) -> None:
        self._closed = True
        self.set("down")
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "down":
                _close(client)
            elif self.mode == "hang":
                with self._lock:
                    self._open.append(client)  # held open, never answered
            else:
                try:
                    server = socket.create_connection(self.upstream, timeout=10)
                except OSError:
                    _close(client)
                    continue
                with self._lock:
                    self._open += [client, server]
                threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
                threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if self.mode != "up":
                    break
                if from_client:
                    self.seen += data
                    if self.on_data is not None:
                        self.on_data(self)
                    if self.mode != "up":
                        break
                target.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
