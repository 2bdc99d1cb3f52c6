"""SMTP delivery: a few long-lived connections, many messages each, a rate limit, retries.

The mailer knows messages and SMTP only. The caller (the outbox) hands it `Outgoing` messages
one recipient each, lazily, and records every `Result` durably in `on_result`, which is awaited
right after the server's final reply for that message, and before that connection sends
anything of its next message: at a crash, each connection has at most one message the server
accepted and the caller did not record.

Each connection is opened by aiosmtplib (connect, EHLO, STARTTLS, AUTH). When the server
offers PIPELINING (RFC 2920), as Postfix and most others do, smtpwire.Wire takes it over: MAIL,
RCPT and DATA go in one packet and the message in the next, two round trips a message instead
of four, and about a fifth of aiosmtplib's CPU. A server without it is served by aiosmtplib.
RFC 2920 would also let the next message's MAIL, RCPT and DATA follow the "." in the same
packet; they do not, because a transaction past its 354 can only be finished or cut off: a
stop() would then have two transactions to finish on a connection instead of one.

Exactly-once, from the mailer's side:
- A message is *attempted* once MAIL FROM has been sent for it. Every attempted message is
  reported exactly once (SENT, FAILED or DEFERRED); a message taken from the iterable but never
  attempted (the run stopped, or failed on a misconfiguration) is not reported at all, and the
  caller may treat it as never sent. When `send` returns or raises, no transaction is in flight.
- The ambiguous windows are the ones SMTP itself has (RFC 1047): after the server's 250 and
  before `on_result` has returned (a crash there loses the record of a delivered message), and
  after the final "." of DATA and before the server's reply arrives (a dropped connection or a
  timeout there is retried, and the server may already have accepted the first copy). A drop
  anywhere earlier in the transaction leaves the server with no message, so a retry cannot
  duplicate it.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import re
import socket
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import aiosmtplib
from aiosmtplib.email import parse_address

from syndicate.config import Smtp
from syndicate.errors import MailerError
from syndicate.smtpwire import Wire, message_data

log = logging.getLogger(__name__)

BACKOFF_BASE = 1.0  # seconds before the first retry (before jitter)
BACKOFF_CAP = 300.0  # no wait between two attempts is longer than five minutes
CLOSE_WAIT = 2.0  # the longest a run waits after QUIT for its connections to be closed


class Status(StrEnum):
    SENT = "sent"  # the server answered 2xx to the end of DATA: it took responsibility
    FAILED = "failed"  # permanent: a 5xx for this sender, recipient or message, or refused here
    DEFERRED = "deferred"  # temporary trouble until max_attempts/retry_for ran out, or stopped


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to one recipient, exactly as it goes on the wire."""

    key: str  # the caller's delivery id, echoed in the result
    sender: str  # envelope MAIL FROM, a bare address ("" is the null sender)
    recipient: str  # envelope RCPT TO, a bare address
    data: bytes = field(repr=False)  # the complete RFC 5322 message, CRLF line ends
    # (the mailer dot-stuffs it, and turns a bare CR or LF into CRLF, as SMTP requires)
    # The same message as it follows a 354, smtpwire.message_data(data), when the caller has
    # it already (digest/render.py makes it from prepared pieces): the pipelined path then
    # sends it as given instead of scanning the whole message again.
    wire: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Result:
    key: str
    status: Status
    reply: str  # the server's last reply ("550 5.1.1 No such user"), or what failed locally
    attempts: int  # transactions started for the message (0: refused before reaching the wire)
    # The command whose 5xx failed the message: "MAIL", "RCPT" or "DATA"; "" otherwise. Only
    # a refusal at RCPT is about the recipient's address (a hard bounce, see bounces.py).
    stage: str = ""


@dataclass(frozen=True, slots=True)
class Summary:
    sent: int = 0
    failed: int = 0
    deferred: int = 0

    def __str__(self) -> str:
        return f"sent {self.sent}, failed {self.failed}, deferred {self.deferred}"


OnResult = Callable[[Result], Awaitable[None]]
Verdict = Literal["sent", "failed", "retry", "reconnect", "fatal"]


# --- Deciders: pure functions, tested exhaustively without a server. ---


def refusal(message: Outgoing) -> str | None:
    """Why the message must not reach the wire, or None. A CR or LF in an address would end
    the SMTP command and start another one (command injection); the rest aiosmtplib would
    reject, or silently rewrite ('Name <a@b>' → 'a@b'), and addresses are sent as given."""
    if not message.recipient:
        return "refused: empty recipient address"
    if _plain(message.recipient) and (not message.sender or _plain(message.sender)):
        return None  # the common case, decided without parsing (a parse costs ~20 µs)
    for address in (message.sender, message.recipient):
        if "\r" in address or "\n" in address:
            return "refused: CR/LF in address"
        if "\0" in address:
            return "refused: NUL in address"
    for address in (message.sender, message.recipient):
        try:
            bare = parse_address(address)
        except ValueError:
            return f"refused: {address!r} is not a bare address"
        if bare != address:
            return f"refused: {address!r} is not a bare address"
    return None


# A dot-atom local part and a domain of letters, digits and hyphens: an address that
# parse_address would return unchanged (a test checks that on many generated strings).
_ATOMS = r"[A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*"
_LABELS = r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_plain = re.compile(f"{_ATOMS}@{_LABELS}").fullmatch


def verdict(code: int | None) -> Verdict:
    """What a reply code (None: the connection failed) means for the message: 2xx sent, 5xx
    failed, 4xx retry on the same connection. 421 (closing), 503 (we are out of step with the
    server) and anything unexpected retry on a fresh connection. 530/538 (authentication or
    encryption required) are a configuration error, not the message's fault: fatal."""
    if code is None:
        return "reconnect"
    if 200 <= code < 300:
        return "sent"
    if code in (530, 538):
        return "fatal"
    if code in (421, 503):
        return "reconnect"
    if 400 <= code < 500:
        return "retry"
    if 500 <= code < 600:
        return "failed"
    return "reconnect"


def backoff(attempt: int, random: Callable[[], float]) -> float:
    """Seconds to wait after the `attempt`-th failure: exponential from BACKOFF_BASE, capped at
    BACKOFF_CAP, with "equal jitter" (between half and all of it) so that messages deferred
    together by one server hiccup do not all come back in the same instant."""
    full = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** min(attempt - 1, 30))
    return full * (0.5 + random() / 2)


def retry_delay(
    attempts: int, elapsed: float, settings: Smtp, random: Callable[[], float]
) -> float | None:
    """The wait before the next attempt, or None to give up (DEFERRED): after max_attempts,
    or when the next attempt would start later than retry_for after the first."""
    if attempts >= settings.max_attempts:
        return None
    delay = backoff(attempts, random)
    if elapsed + delay > settings.retry_for:
        return None
    return delay


def connect_problem(exc: BaseException, settings: Smtp, *, connected_before: bool) -> str | None:
    """Why failing to open a session must stop the whole run, or None if it is worth retrying.
    Credentials, TLS and refusals are misconfiguration: every message would fail the same way.
    An unreachable server is misconfiguration too until this run has reached it once; after
    that it is a restart or a network blip."""
    tls = _ssl_error(exc)
    if tls is not None:
        return (
            f"TLS failed ({tls}); check smtp.security ({settings.security}) "
            "and the server's certificate"
        )
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return (
            f"authentication failed for user {settings.username!r}: {_reply(exc)}; "
            "check smtp.username and SYNDICATE_SMTP__PASSWORD"
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        if 400 <= exc.code < 500:
            return None
        return f"the server refused the session: {_reply(exc)}"
    if isinstance(exc, OSError | TimeoutError):  # refused, unreachable, reset, timed out
        if connected_before:
            return None
        return f"cannot connect ({exc}); check smtp.host and smtp.port, and that it is running"
    return f"{exc}; check smtp.security and smtp.username"  # e.g. no STARTTLS or AUTH offered


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}".replace("\n", " ")


# --- Appliers: the connections, the rate limit and the run. ---


@dataclass(frozen=True, slots=True)
class _Outcome:
    verdict: Verdict
    reply: str
    stage: str = ""  # the command that got `reply`, when it was an SMTP error reply


class _Session:
    """One worker's SMTP connection: opened on first use, reused for many messages, opened
    again after a drop, closed with QUIT at the end. aiosmtplib opens it (connect, EHLO,
    STARTTLS, AUTH). When the server offers PIPELINING, a `Wire` takes the connection over and
    each transaction costs one round trip for MAIL, RCPT and DATA together and one for the
    message (RFC 2920); otherwise aiosmtplib carries on, one command at a time."""

    def __init__(self, run: _Run) -> None:
        self._run = run
        self._smtp: aiosmtplib.SMTP | None = None  # a server that does not pipeline
        self._wire: Wire | None = None  # a server that does
        self._extensions: dict[str, str] = {}  # from the last EHLO, lower-case names

    def _connected(self) -> bool:
        if self._wire is not None:
            return self._wire.usable
        return self._smtp is not None and self._smtp.is_connected

    async def open(self) -> bool:
        """Connect unless connected; False if the run stopped while waiting to reconnect.
        Raises MailerError when the session cannot be opened (see connect_problem), or after
        max_attempts failures in a row."""
        if self._connected():
            return True
        self.abort()
        run = self._run
        failures = 0
        while True:
            smtp = run.client()
            try:
                await smtp.connect()
                await _greet(smtp)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                smtp.close()  # connected, perhaps, and then the greeting failed
                problem = connect_problem(exc, run.settings, connected_before=run.connected)
                if problem is not None:
                    raise run.error(problem) from exc
                failures += 1
                if failures >= run.settings.max_attempts:
                    raise run.error(f"cannot reconnect after {failures} attempts ({exc})") from exc
                log.warning("SMTP %s: cannot reconnect (%s), attempt %d", run.server, exc, failures)
                if not await run.pause(backoff(failures, run.random)):
                    return False
                continue
            run.connected = True
            self._extensions = dict(smtp.esmtp_extensions)
            if run.pipelining and "pipelining" in self._extensions and smtp.transport:
                self._wire = Wire.take_over(smtp.transport, run.settings.timeout)
            else:
                self._smtp = smtp
            return True

    def unsupported(self, message: Outgoing) -> str | None:
        """Why this server cannot take the message as given: non-ASCII addresses need
        SMTPUTF8 (and are sent as given, never downgraded)."""
        if message.sender.isascii() and message.recipient.isascii():
            return None
        if "smtputf8" in self._extensions:
            return None
        return "refused: non-ASCII address and the server does not offer SMTPUTF8"

    async def transact(self, message: Outgoing) -> _Outcome:
        """MAIL, RCPT and DATA for one message on the open connection."""
        if self._wire is not None:
            outcome = await self._pipelined(self._wire, message)
            if outcome.verdict == "sent":
                return outcome
            await self._reset(outcome)
            return outcome
        smtp = self._smtp
        assert smtp is not None
        options, encoding = _mail_options(self._extensions, message)
        stage = "MAIL"
        try:
            await smtp.mail(message.sender, options=options, encoding=encoding)
            stage = "RCPT"
            await smtp.rcpt(message.recipient, encoding=encoding)
            stage = "DATA"
            response = await smtp.data(message.data)
        except aiosmtplib.SMTPResponseException as exc:
            outcome = _Outcome(verdict(exc.code), _reply(exc), stage)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            outcome = _Outcome("reconnect", f"{_failure(exc)} during {stage}: {exc}")
        else:
            return _Outcome("sent", f"{response.code} {response.message}".replace("\n", " "))
        await self._reset(outcome)
        return outcome

    async def _pipelined(self, wire: Wire, message: Outgoing) -> _Outcome:
        """One write for MAIL, RCPT and DATA, their three replies in order, then the message
        (only after a 354, and only when MAIL and RCPT were accepted), then its reply. The
        first refusal decides the outcome; the replies after it are read all the same, to
        stay in step with the server."""
        options, encoding = _mail_options(self._extensions, message)
        group = b"".join(
            (
                b"MAIL FROM:<",
                message.sender.encode(encoding),
                b">",
                "".join(f" {option}" for option in options).encode(),
                b"\r\nRCPT TO:<",
                message.recipient.encode(encoding),
                b">\r\nDATA\r\n",
            )
        )
        outcome: _Outcome | None = None
        stage = "MAIL"
        try:
            wire.write(group)
            data = message.wire or message_data(message.data)  # as the server reads
            reply = await wire.reply()
            if reply.code // 100 != 2:
                outcome = _Outcome(verdict(reply.code), reply.text, stage)
            stage = "RCPT"
            reply = await wire.reply()
            if outcome is None and reply.code // 100 != 2:
                outcome = _Outcome(verdict(reply.code), reply.text, stage)
            stage = "DATA"
            reply = await wire.reply()
            if reply.code != 354:
                if outcome is None:  # 354 or a refusal; anything else is out of step
                    code = reply.code if reply.code >= 400 else None
                    outcome = _Outcome(verdict(code), reply.text, stage)
                return outcome
            if outcome is not None:
                # Refused at MAIL or RCPT, and the server waits for the message anyway: end
                # it at once (RFC 2920 3.1); with no recipient it cannot be delivered.
                wire.write(b".\r\n")
                await wire.reply()
                return outcome
            wire.write(data)
            reply = await wire.reply()
        except (OSError, TimeoutError) as exc:
            if outcome is not None:  # the connection failed after the refusal that counts
                wire.abort()
                return outcome
            return _Outcome("reconnect", f"{_failure(exc)} during {stage}: {exc}")
        if reply.code // 100 == 2:
            return _Outcome("sent", reply.text)
        return _Outcome(verdict(reply.code), reply.text, stage)

    async def _reset(self, outcome: _Outcome) -> None:
        """After a failed transaction: RSET, so the next message starts clean; or drop the
        connection when it cannot be trusted any more (421, 503, timeout, RSET failing)."""
        if not self._connected():
            return
        if outcome.verdict == "reconnect":
            self.abort()
            return
        if self._wire is not None:
            wire = self._wire
            try:
                wire.write(b"RSET\r\n")
                if (await wire.reply()).code // 100 == 2:
                    return
            except (OSError, TimeoutError):
                pass
            wire.abort()
            return
        assert self._smtp is not None
        try:
            await self._smtp.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            self._smtp.close()

    async def close(self) -> None:
        """QUIT, politely; a server that does not answer is simply disconnected."""
        wait = min(self._run.settings.timeout, CLOSE_WAIT)
        wire, self._wire = self._wire, None
        if wire is not None:
            sock = wire.transport.get_extra_info("socket")
            if wire.usable:
                try:
                    wire.write(b"QUIT\r\n")
                    await wire.reply()
                except (OSError, TimeoutError):
                    pass
            wire.abort()
            await _closed(sock, wait)
        smtp, self._smtp = self._smtp, None
        if smtp is None or not smtp.is_connected:
            return
        sock = smtp.get_transport_info("socket")
        try:
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            smtp.close()
        await _closed(sock, wait)

    def abort(self) -> None:
        if self._wire is not None:
            self._wire.abort()
            self._wire = None
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None


def _mail_options(extensions: dict[str, str], message: Outgoing) -> tuple[list[str], str]:
    """ESMTP parameters for MAIL FROM, and the encoding of the addresses. SIZE lets the
    server refuse an oversized message before it is transferred; 8-bit data is declared when
    the server offers 8BITMIME and is otherwise sent as given."""
    options: list[str] = []
    if "size" in extensions:
        options.append(f"SIZE={len(message.data)}")
    if "8bitmime" in extensions and not message.data.isascii():
        options.append("BODY=8BITMIME")
    if message.sender.isascii() and message.recipient.isascii():
        return options, "ascii"
    return [*options, "SMTPUTF8"], "utf-8"


def _failure(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionError):
        return "connection lost"
    return "error"


class _Bucket:
    """`rate` messages per second across all connections, evenly spaced (a token bucket that
    holds one token: providers count per second, so a burst would be throttled anyway). Each
    caller reserves its slot before it waits, so concurrent workers never share one."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._next: float | None = None

    def reserve(self) -> float:
        """Seconds to wait for the next free slot (0 when unlimited or free now)."""
        if not self._interval:
            return 0.0
        now = self._clock()
        slot = now if self._next is None else max(self._next, now)
        self._next = slot + self._interval
        return slot - now


async def _greet(smtp: aiosmtplib.SMTP) -> None:
    """EHLO (HELO for a server that does not know it), unless connect() did already: it does
    only for STARTTLS or AUTH, and the extensions must be known before the first MAIL FROM."""
    if not smtp.is_ehlo_or_helo_needed:
        return
    try:
        await smtp.ehlo()
    except aiosmtplib.SMTPHeloError:
        if not smtp.is_connected:
            raise
        await smtp.helo()


async def _closed(sock: socket.socket | None, limit: float) -> None:
    """Wait, at most `limit` seconds, until `sock` (a connection's, taken before it was
    closed) is really closed. A TLS connection closes after an exchange of close_notify, some
    time after close() returns; a run that ended without waiting would leave its sockets to the
    garbage collector (ResourceWarning) when asyncio.run() closes the loop. Neither aiosmtplib
    nor asyncio offers anything to await."""
    if sock is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while sock.fileno() != -1 and loop.time() < deadline:
        await asyncio.sleep(0.001)  # real time: this is I/O, not the injected policy clock


_END = object()  # the producer is done; each worker passes it on to the next and exits


class _Run:
    """The state of one `Mailer.send`: settings, injected time, the stop flag, counters."""

    def __init__(
        self,
        settings: Smtp,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        random: Callable[[], float],
        tls_context: ssl.SSLContext | None,
        local_hostname: str,
        queue_size: int,
        pipelining: bool,
    ) -> None:
        self.settings = settings
        self.pipelining = pipelining
        self.server = f"{settings.host}:{settings.port}"
        self.clock = clock
        self.random = random
        self._sleep = sleep
        self._tls_context = tls_context
        self.local_hostname = local_hostname
        self.bucket = _Bucket(self.settings.rate_limit, self.clock)
        self.queue: asyncio.Queue[object] = asyncio.Queue(maxsize=queue_size)
        self.room = asyncio.Semaphore(queue_size)  # taken from the iterable, not yet by a worker
        self.stopping = False
        self.stopped = asyncio.Event()
        self.connected = False  # some connection of this run has been opened
        self.failure: BaseException | None = None
        self.counts = dict.fromkeys(Status, 0)

    def client(self) -> aiosmtplib.SMTP:
        settings = self.settings
        password = settings.password.get_secret_value() if settings.password else None
        return aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            local_hostname=self.local_hostname,
            timeout=settings.timeout,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",  # "none" means none, not opportunistic
            tls_context=self._tls_context,
            username=settings.username,
            password=password if settings.username else None,
        )

    def error(self, reason: str) -> MailerError:
        return MailerError(f"SMTP server {self.server}: {reason}")

    def stop(self) -> None:
        """Take no new messages: empty the queue and wake the idle workers."""
        if self.stopping:
            return
        self.stopping = True
        self.stopped.set()
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_END)

    def fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
        elif not isinstance(exc, MailerError):  # the other connections' copies of it are noise
            log.error("SMTP %s: another error while stopping: %r", self.server, exc)
        self.stop()

    async def pause(self, seconds: float) -> bool:
        """Wait `seconds` (the injected sleep); False, at once, if the run stops meanwhile."""
        if self.stopping:
            return False
        if seconds <= 0:
            return True
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        stopper = asyncio.ensure_future(self.stopped.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()
        return not self.stopping


class Mailer:
    """Delivers messages over `settings.connections` SMTP connections, each reused for many
    messages, at most `settings.rate_limit` messages a second, retrying temporary failures."""

    def __init__(
        self,
        settings: Smtp,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        queue_size: int | None = None,
        pipelining: bool = True,
    ) -> None:
        """`clock`, `sleep` and `random` drive the rate limit, backoff and jitter (inject them
        to test without waiting). `tls_context` replaces the default verifying one, e.g. to
        trust a private CA. `queue_size` (default 2 × connections) bounds the messages taken
        from the iterable ahead of the workers. `pipelining=False` sends one command at a
        time even to a server that offers PIPELINING (for comparison; it is slower)."""
        self.settings = settings
        self.queue_size = queue_size or 2 * settings.connections
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._tls_context = tls_context
        self._local_hostname = local_hostname
        self._pipelining = pipelining
        self._run: _Run | None = None

    async def send(
        self, messages: AsyncIterable[Outgoing] | Iterable[Outgoing], on_result: OnResult
    ) -> Summary:
        """Deliver `messages`, taken lazily (at most queue_size + connections of them are taken
        and not yet reported at any time); await `on_result` for each one attempted, right
        after the server's final reply for it. Raises MailerError (after the transactions in
        flight have finished) on a misconfiguration, and re-raises an exception from
        `on_result` or from the iterable the same way. One run at a time per Mailer."""
        if self._run is not None:
            raise RuntimeError("Mailer.send is already running")
        run = self._run = _Run(  # at once, so that a stop() from now on is heard
            self.settings,
            clock=self._clock,
            sleep=self._sleep,
            random=self._random,
            tls_context=self._tls_context,
            local_hostname=self._local_hostname or "",
            queue_size=self.queue_size,
            pipelining=self._pipelining,
        )
        producer: asyncio.Task[None] | None = None
        workers: list[asyncio.Task[None]] = []
        try:
            if not run.local_hostname:  # as aiosmtplib would, but once per run
                run.local_hostname = await asyncio.to_thread(socket.getfqdn)
            producer = asyncio.create_task(self._produce(run, messages))
            workers = [
                asyncio.create_task(self._work(run, on_result))
                for _ in range(self.settings.connections)
            ]
            await asyncio.gather(*workers)
        finally:
            tasks = [*workers, *([producer] if producer else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._run = None
        if run.failure is not None:
            raise run.failure
        counts = run.counts
        return Summary(counts[Status.SENT], counts[Status.FAILED], counts[Status.DEFERRED])

    def stop(self) -> None:
        """Finish the SMTP transactions in flight, take no new message, and let `send` return
        its summary. Messages waiting to be retried are reported DEFERRED; messages not yet
        attempted are not reported. Call it from the event loop's thread, e.g. with
        `loop.add_signal_handler(signal.SIGTERM, mailer.stop)`."""
        if self._run is not None:
            self._run.stop()

    async def _produce(
        self, run: _Run, messages: AsyncIterable[Outgoing] | Iterable[Outgoing]
    ) -> None:
        """Feed the queue, taking the next message only when there is room for it."""
        iterator = aiter(messages) if isinstance(messages, AsyncIterable) else _aiter(messages)
        try:
            while True:
                await run.room.acquire()
                if run.stopping:
                    return
                try:
                    message = await anext(iterator)
                except StopAsyncIteration:
                    break
                if run.stopping:
                    return
                run.queue.put_nowait(message)
            if not run.stopping:
                run.queue.put_nowait(_END)
        except Exception as exc:
            run.fail(exc)

    async def _work(self, run: _Run, on_result: OnResult) -> None:
        session = _Session(run)
        try:
            while not run.stopping:
                item = await run.queue.get()
                if item is _END:
                    run.queue.put_nowait(_END)
                    break
                run.room.release()
                assert isinstance(item, Outgoing)
                try:
                    await self._deliver(run, session, item, on_result)
                except Exception as exc:
                    run.fail(exc)
        except asyncio.CancelledError:
            session.abort()
            raise
        await session.close()

    async def _deliver(
        self, run: _Run, session: _Session, message: Outgoing, on_result: OnResult
    ) -> None:
        """Attempt `message` until it is sent, failed or deferred; report it if attempted."""

        async def report(status: Status, reply: str, stage: str = "") -> None:
            run.counts[status] += 1
            log.debug("%s → %s: %s (%d attempts)", message.key, status, reply, attempts)
            await on_result(Result(message.key, status, reply, attempts, stage))

        attempts = 0
        refused = refusal(message)
        if refused is not None:
            await report(Status.FAILED, refused)
            return
        started = run.clock()
        reply = ""
        try:
            while True:
                if not await session.open() or run.stopping:
                    if attempts:
                        await report(Status.DEFERRED, reply)
                    return
                refused = session.unsupported(message)
                if refused is not None:
                    await report(Status.FAILED, refused)
                    return
                if not await run.pause(run.bucket.reserve()):
                    if attempts:
                        await report(Status.DEFERRED, reply)
                    return
                attempts += 1
                outcome = await session.transact(message)
                reply = outcome.reply
                if outcome.verdict in ("sent", "failed"):
                    await report(Status(outcome.verdict), reply, outcome.stage)
                    return
                if outcome.verdict == "fatal":
                    raise run.error(
                        f"the server requires authentication or TLS ({reply}); "
                        "check smtp.username and smtp.security"
                    )
                delay = retry_delay(attempts, run.clock() - started, run.settings, run.random)
                if delay is None:
                    await report(Status.DEFERRED, reply)
                    return
                log.info("%s: %s; retrying in %.1f s", message.key, reply, delay)
                if not await run.pause(delay):
                    await report(Status.DEFERRED, reply)
                    return
        except MailerError:
            if attempts:
                await report(Status.DEFERRED, reply)
            raise


async def _aiter(items: Iterable[Outgoing]) -> AsyncIterator[Outgoing]:
    for item in items:
        yield item
