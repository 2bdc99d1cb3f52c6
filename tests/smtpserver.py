"""A real SMTP server on 127.0.0.1 for tests: aiosmtpd in a background thread.

It keeps every message it accepts (envelope and bytes), counts sessions and commands, and can
be told to misbehave the ways real servers do:

    with SmtpServer() as server:
        server.refuse("RCPT", "451 4.3.0 Try again later", times=2)
        server.reject("nobody@example.com")                  # 550 for that recipient
        server.drop_during_data()                             # close the socket after the 354
        server.drop_after_data()                              # accept, then never answer
        server.stall("MAIL", 5.0)                             # answer late
        server.accept_data_without_recipients()               # 354 where 554 is due
        ...send...
        assert server.counts()["desk@example.com"] == 1

Faults fire for the first `times` matching commands (None: always), each with `probability`,
optionally only for some `addresses` (the sender for MAIL, the recipient for RCPT, any
recipient for DATA). The draw is seeded by `SmtpServer(seed=…)`, the fault, the command's
addresses and how many times the fault was asked about them: the same attempts of the same
recipients meet the same faults however the connections interleave, so a chaos run is
repeatable (MAIL knows only the sender, so its draws follow the order of transactions).

A test times what it does to the client by the server's progress, not by sleeping:

        hold = server.hold("DATA", after=500)   # the next DATA after 500 accepted waits...
        hold.wait()                              # ...here it is, the message read, no reply
        os.kill(sender.pid, signal.SIGKILL)      # the client dies inside DATA: once the
        hold.release()                           # server sees it close, nothing is stored
        server.on_accept(callback)               # called right after each accepted
                                                 # message's 250 is written (or just before)
        server.open_sessions                     # connections open at this instant

`SmtpServer(auth=("user", "secret"))` requires AUTH (PLAIN or LOGIN, over plain text:
`auth_require_tls=False`) before MAIL;
`SmtpServer(starttls=context)` advertises STARTTLS and `SmtpServer(tls=context)` speaks
implicit TLS, with contexts from `Certificate`. It offers PIPELINING (RFC 2920), as Postfix
does, unless made with `pipelining=False`; `packets()` tells which commands arrived together.

Everything the tests read is guarded by a lock: the server runs in its own thread and event
loop, so a test (or a sender in a subprocess) can count messages while it runs. A server
cannot be restarted: use a new one.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import ssl
import subprocess
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Command = Literal["MAIL", "RCPT", "DATA"]
_VERBS = frozenset({"EHLO", "HELO", "AUTH", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT"})
Action = Literal["reply", "drop", "drop-after", "stall"]


@dataclass(frozen=True, slots=True)
class Received:
    """One message the server accepted: the envelope as sent, and the bytes after DATA."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes = field(repr=False)
    session: int  # the number of the connection it came on (1, 2, …)
    options: tuple[str, ...] = ()  # MAIL FROM parameters, upper-cased: ("SIZE=123", …)


@dataclass(slots=True)
class _Fault:
    command: Command
    action: Action
    reply: str = ""
    seconds: float = 0.0
    times: int | None = None
    probability: float = 1.0
    addresses: frozenset[str] | None = None

    def matches(self, command: Command, addresses: Iterable[str]) -> bool:
        if command != self.command or self.times == 0:
            return False
        return self.addresses is None or not self.addresses.isdisjoint(addresses)

    @property
    def label(self) -> str:
        """What fired, for `fired()`: "RCPT 451", "DATA drop", "DATA stall"…"""
        return f"{self.command} {self.reply[:3] if self.action == 'reply' else self.action}"


class Hold:
    """A command the server keeps waiting before it answers, until `release()` (see
    SmtpServer.hold). `reached` is set when the first one arrives; `address` is its sender
    (MAIL) or recipient (RCPT, DATA). A client that closes the connection meanwhile cancels
    the wait: nothing of that transaction is stored."""

    def __init__(self, command: Command, after: int, times: int | None) -> None:
        self.command = command
        self.after = after
        self.times = times
        self.reached = threading.Event()
        self.released = threading.Event()
        self.address = ""

    def wait(self, timeout: float = 60.0) -> Hold:
        """Block until the command is held (AssertionError after `timeout` seconds)."""
        assert self.reached.wait(timeout), f"no {self.command} to hold within {timeout} s"
        return self

    def release(self) -> None:
        self.released.set()

    async def _keep(self) -> None:  # in the server's loop; cancelled if the client goes
        while not self.released.is_set():
            await asyncio.sleep(0.002)


OnAccept = Callable[[Received, int], None]


class _State:
    """What the server has seen, and the faults it was told about. Locked: two threads."""

    def __init__(self, seed: int, auth: tuple[str, str] | None, pipelining: bool) -> None:
        self.lock = threading.Lock()
        self.seed = seed
        self.draws: Counter[tuple[int, str, tuple[str, ...]]] = Counter()
        self.fired: Counter[str] = Counter()
        self.holds: list[Hold] = []
        self.on_accept: list[tuple[OnAccept, bool]] = []  # (callback, before the reply)
        self.open = 0  # connections open now
        self.auth = auth
        self.pipelining = pipelining
        self.packets: list[tuple[str, ...]] = []
        self.lax_data = False  # 354 to a DATA without recipients
        self.empty_data = 0  # messages of no line read after such a 354
        self.faults: list[_Fault] = []
        self.received: list[Received] = []
        self.sessions = 0
        self.commands: Counter[str] = Counter()

    def fault(
        self, command: Command, addresses: Iterable[str], actions: Iterable[Action]
    ) -> _Fault | None:
        """The first fault of one of these `actions` that fires now for this command,
        spending one of its `times`."""
        addresses, actions = tuple(addresses), frozenset(actions)
        with self.lock:
            for index, fault in enumerate(self.faults):
                if fault.action not in actions or not fault.matches(command, addresses):
                    continue
                if fault.probability < 1.0 and self._draw(index, command, addresses) >= (
                    fault.probability
                ):
                    continue
                if fault.times is not None:
                    fault.times -= 1
                self.fired[fault.label] += 1
                return fault
        return None

    def _draw(self, index: int, command: str, addresses: tuple[str, ...]) -> float:
        """A number in [0, 1) for the n-th time fault `index` is asked about this command for
        these addresses: the same whatever else happened meanwhile. Locked by the caller."""
        key = (index, command, tuple(sorted(addresses)))
        nth = self.draws[key]
        self.draws[key] += 1
        return random.Random(f"{self.seed}/{index}/{command}/{','.join(key[2])}/{nth}").random()

    def hold(self, command: Command, address: str) -> Hold | None:
        """The hold, if any, this command must wait for (spending one of its `times`)."""
        with self.lock:
            for hold in self.holds:
                if hold.command != command or hold.times == 0 or hold.released.is_set():
                    continue
                if len(self.received) < hold.after:
                    continue
                if hold.times is not None:
                    hold.times -= 1
                if not hold.reached.is_set():
                    hold.address = address
                return hold
        return None

    def accepted(self, received: Received, number: int, *, before_reply: bool) -> None:
        """Call the on_accept callbacks (outside the lock: they may read the server)."""
        with self.lock:
            callbacks = [c for c, before in self.on_accept if before == before_reply]
        for callback in callbacks:
            callback(received, number)

    def count(self, command: str) -> None:
        with self.lock:
            self.commands[command] += 1

    def packet(self, commands: tuple[str, ...]) -> None:
        with self.lock:
            self.packets.append(commands)


class _Handler:
    """aiosmtpd's hooks: record, apply the faults, enforce AUTH, store what is accepted."""

    def __init__(self, state: _State) -> None:
        self.state = state

    async def _refusal(self, command: Command, addresses: Iterable[str]) -> str | None:
        """The reply that replaces acceptance, if a fault says so (after any hold or stall)."""
        addresses = tuple(addresses)
        hold = self.state.hold(command, addresses[0] if addresses else "")
        if hold is not None:
            hold.reached.set()
            await hold._keep()
        fault = self.state.fault(command, addresses, ("stall", "reply"))
        if fault is not None and fault.action == "stall":
            await asyncio.sleep(fault.seconds)
            fault = self.state.fault(command, addresses, ("reply",))
        return None if fault is None else fault.reply

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.state.count("EHLO")
        session.host_name = hostname
        if self.state.pipelining:  # aiosmtpd reads commands one by one from its stream, so
            responses.insert(-1, "250-PIPELINING")  # it takes pipelined ones as they come
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.state.count("MAIL")
        # Checked here rather than with auth_required=True, which aiosmtpd accepts without TLS
        # only with a UserWarning (an error under filterwarnings=error); the reply is the same.
        if self.state.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        reply = await self._refusal("MAIL", [address])
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.state.count("RCPT")
        reply = await self._refusal("RCPT", [address])
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Called with the whole message read (a drop during DATA is _SMTP's business)."""
        reply = await self._refusal("DATA", envelope.rcpt_tos)
        if reply is not None:
            return reply
        assert isinstance(server, _SMTP)
        assert isinstance(envelope.original_content, bytes)
        assert envelope.mail_from is not None
        received = Received(
            envelope.mail_from,
            tuple(envelope.rcpt_tos),
            envelope.original_content,
            server.number,
            tuple(envelope.mail_options),
        )
        with self.state.lock:
            self.state.received.append(received)
            number = len(self.state.received)
        if self.state.fault("DATA", envelope.rcpt_tos, ("drop-after",)) is not None:
            assert server.transport is not None
            server.transport.close()  # accepted, and the reply is lost: the RFC 1047 window
            return ""  # _SMTP.push sends nothing for it
        self.state.accepted(received, number, before_reply=True)
        server.replying = (received, number)
        return f"250 2.0.0 Ok: queued as {number}"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.state.count("RSET")
        return "250 2.0.0 Ok"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.state.count("QUIT")
        return "221 2.0.0 Bye"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        self.state.count("AUTH")
        expected = self.state.auth
        ok = (
            expected is not None
            and isinstance(data, LoginPassword)
            and (data.login, data.password) == (expected[0].encode(), expected[1].encode())
        )
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


class _SMTP(SMTP):
    """aiosmtpd's server with what a test needs and the library does not offer: a session
    number, a connection closed after any 421 (as real servers do), and a drop in DATA."""

    def __init__(self, state: _State, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.state = state
        self.number = 0
        self.replying: tuple[Received, int] | None = None  # accepted, its 250 not yet written
        self.counted = False  # in state.open

    def data_received(self, data: bytes) -> None:
        """Note the commands that arrived together, in one read from the socket."""
        commands = tuple(
            verb
            for line in data.split(b"\r\n")
            if (verb := line[:4].decode("ascii", "replace").upper()) in _VERBS
            and line[4:5] in (b"", b" ")
        )
        if commands:
            self.state.packet(commands)
        super().data_received(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:  # not the second call, after STARTTLS
            with self.state.lock:
                self.state.sessions += 1
                self.number = self.state.sessions
                if not self.counted:
                    self.counted = True
                    self.state.open += 1
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        with self.state.lock:
            if self.counted:
                self.counted = False
                self.state.open -= 1
        super().connection_lost(error)

    async def push(self, status: Any) -> None:
        if not status:  # the handler closed the connection and answers nothing
            return
        replying, self.replying = self.replying, None
        await super().push(status)
        if replying is not None:  # the 250 of an accepted message is written
            self.state.accepted(*replying, before_reply=False)
        text = status.decode() if isinstance(status, bytes) else str(status)
        if text.startswith("421") and self.transport is not None:
            self.transport.close()

    async def smtp_DATA(self, arg: str) -> None:
        self.state.count("DATA")
        envelope = self.envelope
        if envelope is not None and not envelope.rcpt_tos and not arg and self.state.lax_data:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            lines = 0
            while await self._reader.readuntil(b"\r\n") != b".\r\n":
                lines += 1
            if not lines:
                with self.state.lock:
                    self.state.empty_data += 1
            await self.push("554 5.5.1 Error: no valid recipients")
            return
        if (
            envelope is not None
            and envelope.rcpt_tos
            and not arg
            and self.state.fault("DATA", envelope.rcpt_tos, ("drop",)) is not None
        ):
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b"\r\n")  # one line of the message, then hang up
            assert self.transport is not None
            self.transport.close()
            # And stop here, as a server that hung up does: the rest of the message, already
            # read from the socket, must not be taken for commands ("To: …" and the like).
            raise asyncio.CancelledError
        await super().smtp_DATA(arg)


class _Controller(Controller):
    """aiosmtpd's threaded controller on a socket bound here, so the port is known up front
    and never raced for (Controller itself wants a fixed port)."""

    def __init__(self, handler: _Handler, sock: socket.socket, **kwargs: Any) -> None:
        self.state = handler.state
        self.sock = sock
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1], **kwargs)

    def factory(self) -> SMTP:
        assert isinstance(self.handler, _Handler)
        return _SMTP(self.state, self.handler, **self.SMTP_kwargs)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self.sock, ssl=self.ssl_context)


class SmtpServer:
    """The test server; a context manager. `host` and `port` are known once it is created."""

    def __init__(
        self,
        *,
        auth: tuple[str, str] | None = None,
        starttls: ssl.SSLContext | None = None,
        tls: ssl.SSLContext | None = None,
        seed: int = 0,
        pipelining: bool = True,
    ) -> None:
        self._state = _State(seed, auth, pipelining)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.host = "127.0.0.1"
        self.port: int = sock.getsockname()[1]
        handler = _Handler(self._state)
        auth_kwargs: dict[str, Any] = {}
        if auth is not None:
            auth_kwargs.update(authenticator=handler.authenticate, auth_require_tls=False)
        self._controller = _Controller(
            handler,
            sock,
            server_hostname="smtp.test",  # else aiosmtpd asks socket.getfqdn() per session
            ready_timeout=5.0,
            ssl_context=tls,
            tls_context=starttls,
            **auth_kwargs,
        )

    def start(self) -> SmtpServer:
        self._controller.start()
        with self._state.lock:  # start() opened one session of its own, to see it answers
            self._state.sessions = 0
            self._state.commands.clear()
            self._state.packets.clear()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- telling it what to do ---

    def refuse(
        self,
        command: Command,
        reply: str,
        *,
        times: int | None = None,
        probability: float = 1.0,
        addresses: Iterable[str] | None = None,
    ) -> None:
        """Answer `reply` (e.g. "451 4.3.0 Try again later") instead of accepting. A 421
        closes the connection after the reply. On DATA, the whole message is read first."""
        self._add(_Fault(command, "reply", reply, 0.0, times, probability, _set(addresses)))

    def reject(self, address: str, reply: str | None = None) -> None:
        """Refuse this recipient for good: 550 unless told otherwise."""
        reply = reply or f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        self.refuse("RCPT", reply, addresses=[address])

    def drop_during_data(
        self,
        *,
        times: int | None = 1,
        addresses: Iterable[str] | None = None,
        probability: float = 1.0,
    ) -> None:
        """After the 354, read one line of the message and close the connection: the server
        never has the whole message, so nothing is stored."""
        self._add(_Fault("DATA", "drop", "", 0.0, times, probability, _set(addresses)))

    def drop_after_data(
        self,
        *,
        times: int | None = 1,
        addresses: Iterable[str] | None = None,
        probability: float = 1.0,
    ) -> None:
        """Store the message, then close the connection without replying: what a client sees
        when the network fails after the final dot (the duplicate window of RFC 1047)."""
        self._add(_Fault("DATA", "drop-after", "", 0.0, times, probability, _set(addresses)))

    def stall(
        self,
        command: Command,
        seconds: float,
        *,
        times: int | None = 1,
        addresses: Iterable[str] | None = None,
        probability: float = 1.0,
    ) -> None:
        """Wait `seconds` before answering normally (a client that gave up meanwhile has
        closed the connection, which cancels the wait: nothing is stored). On DATA the
        whole message is read first."""
        self._add(_Fault(command, "stall", "", seconds, times, probability, _set(addresses)))

    def hold(self, command: Command, *, after: int = 0, times: int | None = 1) -> Hold:
        """Keep the first `times` `command`s (None: every one) that arrive once `after`
        messages have been accepted waiting, without an answer, until `release()`; on DATA
        the whole message is read first. For timing a kill: `hold.wait()`, kill, release."""
        hold = Hold(command, after, times)
        with self._state.lock:
            self._state.holds.append(hold)
        return hold

    def on_accept(self, callback: OnAccept, *, before_reply: bool = False) -> None:
        """Call `callback(received, number)` in the server's thread for every message
        accepted (`number` counts them from 1): right after its 250 is written to the socket,
        or with `before_reply` right before. It runs inside the server (no connection is
        served meanwhile) and must not raise."""
        with self._state.lock:
            self._state.on_accept.append((callback, before_reply))

    def accept_data_without_recipients(self) -> None:
        """Answer 354 to a DATA that follows no accepted RCPT (RFC 2920 wants 554, some
        servers do this), read what comes up to the final dot, and refuse it with 554;
        `empty_data` counts those that had no line at all."""
        with self._state.lock:
            self._state.lax_data = True

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.faults.clear()

    def _add(self, fault: _Fault) -> None:
        with self._state.lock:
            self._state.faults.append(fault)

    # --- what it saw ---

    @property
    def received(self) -> list[Received]:
        with self._state.lock:
            return list(self._state.received)

    def messages_for(self, address: str) -> list[bytes]:
        """Every message accepted for `address`, in order."""
        return [m.data for m in self.received if address in m.recipients]

    def emails_for(self, address: str) -> list[EmailMessage]:
        """The same, parsed."""
        out = []
        for data in self.messages_for(address):
            parsed = message_from_bytes(data, policy=policy.default)
            assert isinstance(parsed, EmailMessage)
            out.append(parsed)
        return out

    def counts(self) -> Counter[str]:
        """Messages accepted per recipient address."""
        return Counter(address for m in self.received for address in m.recipients)

    @property
    def empty_data(self) -> int:
        with self._state.lock:
            return self._state.empty_data

    @property
    def sessions(self) -> int:
        """Connections opened by clients so far."""
        with self._state.lock:
            return self._state.sessions

    @property
    def open_sessions(self) -> int:
        """Connections open at this instant (closed ones are counted once the server has
        seen them close)."""
        with self._state.lock:
            return self._state.open

    def fired(self) -> Counter[str]:
        """How many times each fault fired: "RCPT 451", "DATA drop", "DATA stall"…"""
        with self._state.lock:
            return Counter(self._state.fired)

    def commands(self) -> Counter[str]:
        """How many times each of EHLO, AUTH, MAIL, RCPT, DATA, RSET, QUIT was received."""
        with self._state.lock:
            return Counter(self._state.commands)

    def packets(self) -> Counter[tuple[str, ...]]:
        """How often each run of commands arrived together, in one read from the socket:
        ("MAIL", "RCPT", "DATA") is a pipelined transaction, ("MAIL",) one sent alone. A
        message line that starts like a command (b"DATA ...") would count as one."""
        with self._state.lock:
            return Counter(self._state.packets)


def _set(addresses: Iterable[str] | None) -> frozenset[str] | None:
    return None if addresses is None else frozenset(addresses)


@dataclass(frozen=True, slots=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command line tool)."""

    cert: Path
    key: Path

    @classmethod
    def make(cls, directory: Path) -> Certificate:
        """Skips the test where openssl is not installed."""
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.skip("the openssl command is needed to make a test certificate")
        cert, key = directory / "cert.pem", directory / "key.pem"
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )  # fmt: skip
        return cls(cert, key)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.cert))
