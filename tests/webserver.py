"""A real uvicorn server on 127.0.0.1, in a background thread, for tests that speak HTTP.

`running(app)` serves any ASGI app for the length of a `with` block. Starting a server costs
about a tenth of a second (mostly its shutdown tick), so a test module usually runs one server
around a `Swappable` and gives each test a fresh app behind it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from syndicate.config import Web
from syndicate.web import server_config

START_TIMEOUT = 5.0


class Swappable:
    """An ASGI app forwarding every request to whatever `app` is at that moment."""

    def __init__(self, app: ASGIApp | None = None) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            raise RuntimeError("Swappable: no app set")
        await self.app(scope, receive, send)


@contextmanager
def running(app: ASGIApp, settings: Web | None = None) -> Iterator[str]:
    """Serve `app` on a free port of 127.0.0.1 until the block ends; yields the base URL
    (no trailing slash). The socket is bound here, so the port is known and never raced for.
    Its protocol is named explicitly: asyncio sets TCP_NODELAY only on sockets that say they
    are TCP, and without it every keep-alive response waits ~40 ms for a delayed ACK."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = server_config(  # as syndicate serve and run configure it
        app,
        settings or Web(),
        ws="none",
        log_config=None,  # leave logging to pytest
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test HTTP server did not start")
            time.sleep(0.002)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()


def free_port() -> int:
    """A port nothing listens on right now (for servers started in another process)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
