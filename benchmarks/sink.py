"""Postfix's SMTP test tools for benchmarks: `smtp-sink` (a server that accepts and discards
every message, as fast as one C process can) and `smtp-source` (a C client load generator).
Both come with the Debian package `postfix`; only these test programs are started, never the
Postfix daemon.

    with Sink.start() as sink:
        ...  # send to 127.0.0.1:sink.port
        sink.messages()  # messages the sink has received so far (its -c counter)
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOST = "127.0.0.1"
INSTALL_HINT = (
    "install the Debian package 'postfix' that provides it: "
    "apt-get install postfix (choose 'No configuration'), then run 'postfix stop' if a "
    "daemon was started; the benchmark starts only the smtp-sink test program"
)
_COUNTER = re.compile(rb"mesg=(\d+)")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tool(name: str) -> str | None:
    """The path of a Postfix test program (`smtp-sink`, `smtp-source`), or None."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    return found


def require(name: str) -> str:
    """The path of `name`, or exit with a message saying which package provides it."""
    found = tool(name)
    if found is None:
        sys.exit(f"{name} not found: {INSTALL_HINT}")
    return found


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def process_cpu(pid: int) -> float:
    """User + system CPU seconds used so far by process `pid` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


class Sink:
    """A running `smtp-sink -c` on 127.0.0.1:`port`; its counters go to a file we read."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, counters: Path) -> None:
        self.process = process
        self.port = port
        self._counters = counters

    @classmethod
    @contextmanager
    def start(cls, *, backlog: int = 1000, timeout: float = 10.0) -> Iterator[Sink]:
        """Start smtp-sink on a free port, wait until it accepts connections, and stop it
        (SIGTERM, then SIGKILL) when the block ends."""
        binary = require("smtp-sink")
        with tempfile.TemporaryDirectory(prefix="smtp-sink-") as folder:
            counters, errors = Path(folder) / "counters", Path(folder) / "errors"
            for _ in range(5):  # the port may be taken between probing and binding it
                port = free_port()
                command = [binary, "-c"]
                if os.geteuid() == 0:  # it refuses to keep root privileges
                    command += ["-u", "nobody"]
                command += [f"{HOST}:{port}", str(backlog)]
                with counters.open("wb") as out, errors.open("wb") as err:
                    process = subprocess.Popen(command, stdout=out, stderr=err)
                sink = cls(process, port, counters)
                ready = False
                try:
                    ready = sink._wait_listening(timeout)
                finally:
                    if not ready:
                        sink._stop()
                if ready:
                    break
            else:
                problem = errors.read_text(errors="replace").strip() or "no reason given"
                sys.exit(f"smtp-sink did not start on {HOST}: {problem}")
            try:
                yield sink
            finally:
                sink._stop()

    def _wait_listening(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection((HOST, self.port), timeout=1.0) as probe:
                    probe.recv(512)  # the 220 greeting: it is really serving
                    probe.sendall(b"QUIT\r\n")
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def _stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def messages(self) -> int:
        """Messages received so far (counted at the final '.' of DATA)."""
        found = _COUNTER.findall(self._counters.read_bytes()[-200:])
        return int(found[-1]) if found else 0

    def settle(self, expected: int, timeout: float = 5.0) -> int:
        """The message count once it reaches `expected` (or `timeout` passes)."""
        deadline = time.monotonic() + timeout
        count = self.messages()
        while count < expected and time.monotonic() < deadline:
            time.sleep(0.02)
            count = self.messages()
        return count

    def cpu(self) -> float:
        """CPU seconds the sink has used so far."""
        return process_cpu(self.process.pid)
