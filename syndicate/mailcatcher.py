"""A local mail catcher: an SMTP server on 127.0.0.1 that keeps every message it receives
as an .eml file, so a new installation shows real digests without an SMTP account."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from syndicate.files import write_if_changed

_counter = itertools.count(1)


class _Keep:
    """aiosmtpd handler: every accepted message becomes one file, written atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
        name = f"{stamp}-{next(_counter):06d}.eml"
        content = envelope.original_content or envelope.content
        data = content if isinstance(content, bytes) else str(content).encode()
        recipients = ", ".join(envelope.rcpt_tos)
        header = f"X-Envelope-From: {envelope.mail_from}\r\nX-Envelope-To: {recipients}\r\n"
        write_if_changed(self.folder / name, header.encode() + data)
        return "250 2.0.0 Kept as " + name


def start(folder: Path, host: str = "127.0.0.1", port: int = 1025) -> Controller:
    """Start the catcher in a background thread; the caller stops it with `.stop()`."""
    folder.mkdir(parents=True, exist_ok=True)
    controller = Controller(_Keep(folder), hostname=host, port=port, data_size_limit=50_000_000)
    controller.start()
    return controller


def serve(folder: Path, host: str = "127.0.0.1", port: int = 1025) -> None:
    """Run until interrupted."""
    controller = start(folder, host, port)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
