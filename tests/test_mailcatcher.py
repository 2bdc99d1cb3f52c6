"""The local mail catcher keeps what a real SMTP client sends it."""

from __future__ import annotations

import smtplib
import socket
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

from syndicate.mailcatcher import start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_each_message_becomes_one_eml_file_with_its_envelope(tmp_path: Path) -> None:
    port = free_port()
    catcher = start(tmp_path / "mail", port=port)
    try:
        message = EmailMessage()
        message["From"] = "press@example.org"
        message["To"] = "desk@example.com"
        message["Subject"] = "Weekly digest: 2 new releases"
        message.set_content("Hello, Türkiye.")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(message, to_addrs=["desk@example.com", "b@example.org"])
            client.send_message(message)
    finally:
        catcher.stop()
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 2
    kept = message_from_bytes(files[0].read_bytes())
    assert kept["X-Envelope-To"] == "desk@example.com, b@example.org"
    assert kept["Subject"] == "Weekly digest: 2 new releases"
    assert not list((tmp_path / "mail").glob(".*"))
