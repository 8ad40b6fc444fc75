"""A loopback HTTP(S) proxy that records and refuses every request it gets.

Point a client's HTTPS_PROXY / HTTP_PROXY / ALL_PROXY at it (with NO_PROXY naming the loopback
address of the servers it may reach directly): any attempt to reach anything else shows up in
`seen` (the request line, e.g. `CONNECT api.github.com:443 HTTP/1.1`) and fails at once with
403; nothing is ever forwarded.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class RefusingProxy:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.url = f"http://{host}:{self.sock.getsockname()[1]}"
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                head = b""
                with contextlib.suppress(OSError):
                    while b"\r\n" not in head and len(head) < 65536:
                        piece = conn.recv(4096)
                        if not piece:
                            break
                        head += piece
                self.seen.append(head.split(b"\r\n", 1)[0].decode("latin-1") or "(empty)")
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n"
                                 b"connection: close\r\n\r\n")

    def environment(self, no_proxy: str = "127.0.0.1,localhost") -> dict[str, str]:
        """Proxy variables, in both cases (tools read one or the other)."""
        names = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")
        env = {name: self.url for name in names} | {name.lower(): self.url for name in names}
        return env | {"NO_PROXY": no_proxy, "no_proxy": no_proxy}

    def __enter__(self) -> RefusingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
