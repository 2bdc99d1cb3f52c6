"""The mailer against a real SMTP server on 127.0.0.1 (tests/smtpserver.py).

Every test on the `server` fixture runs twice: against a server that offers PIPELINING (the
mailer's own pipelined path, smtpwire.py) and one that does not (aiosmtplib, one command at a
time). Both must keep the same contract.

Time is injected: backoff and the rate limit are checked from the sleeps the mailer asks for
and from a clock that only moves when it sleeps, never by waiting. Only the timeout tests wait
for real (a fraction of a second): timeouts run on the event loop's clock.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtplib.email import parse_address
from pydantic import SecretStr

from syndicate.config import Smtp
from syndicate.errors import MailerError
from syndicate.mailer import (
    BACKOFF_CAP,
    Mailer,
    Outgoing,
    Result,
    Status,
    Summary,
    backoff,
    refusal,
    retry_delay,
    verdict,
)
from syndicate.smtpwire import message_data
from tests.smtpserver import Certificate, Command, SmtpServer

SENDER = "press@example.org"
TEMPORARY = "451 4.3.0 Try again later"


def message(n: int, recipient: str | None = None) -> Outgoing:
    recipient = f"r{n}@example.com" if recipient is None else recipient
    data = (
        f"From: Press Office <{SENDER}>\r\nTo: <{recipient}>\r\nSubject: Digest {n}\r\n"
        f"Message-ID: <{n}@press.example.org>\r\n\r\nRelease {n}.\r\n.leading dot\r\n"
    ).encode()
    return Outgoing(f"d{n}", SENDER, recipient, data)


def messages(count: int) -> list[Outgoing]:
    return [message(n) for n in range(count)]


def smtp(server: SmtpServer | None = None, **overrides: Any) -> Smtp:
    values: dict[str, Any] = {"timeout": 5.0, "connections": 1, "max_attempts": 5}
    if server is not None:
        values.update(host=server.host, port=server.port)
    return Smtp(**(values | overrides))


class FakeTime:
    """A monotonic clock that only moves when the mailer sleeps: sleeping `s` seconds from
    instant t leaves the clock at t + s at least (sleepers overlap, as they would for real)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> Awaitable[None]:
        """Not `async def`: the wake-up instant is fixed when the mailer calls sleep, not
        when the event loop first runs the coroutine (by then another sleeper may have moved
        the clock)."""
        self.sleeps.append(seconds)
        until = self.now + seconds

        async def wake() -> None:
            self.now = max(self.now, until)
            await asyncio.sleep(0)

        return wake()


def mailer(settings: Smtp, time: FakeTime | None = None, **kwargs: Any) -> Mailer:
    time = time or FakeTime()
    kwargs.setdefault("random", lambda: 1.0)  # the top of the jitter range: whole backoff
    return Mailer(
        settings, clock=time.clock, sleep=time.sleep, local_hostname="client.test", **kwargs
    )


def deliver(
    sender: Mailer,
    items: Iterable[Outgoing] | AsyncIterator[Outgoing],
    then: Callable[[Result], None] | None = None,
) -> tuple[Summary, list[Result]]:
    """Run `sender.send` to the end; the results in the order they were reported."""
    results: list[Result] = []

    async def record(result: Result) -> None:
        results.append(result)
        if then is not None:
            then(result)

    summary = asyncio.run(sender.send(items, record))
    return summary, results


@pytest.fixture(params=[True, False], ids=["pipelined", "one-by-one"])
def server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    with SmtpServer(pipelining=request.param) as running:
        yield running


@pytest.fixture
def piped() -> Iterator[SmtpServer]:
    """A server that offers PIPELINING, as Postfix does."""
    with SmtpServer(pipelining=True) as running:
        yield running


# --- Deciders ---


@pytest.mark.parametrize(
    ("sender", "recipient", "reason"),
    [
        (SENDER, "desk@example.com", None),
        ("", "desk@example.com", None),  # the null sender, for bounces
        (SENDER, "müller@example.de", None),  # SMTPUTF8, decided per server
        (SENDER, "desk@example.com\r\nRCPT TO:<x@evil.test>", "refused: CR/LF in address"),
        (SENDER, "desk@example.com\nDATA", "refused: CR/LF in address"),
        ("press@example.org\r", "desk@example.com", "refused: CR/LF in address"),
        (SENDER, "desk@example.com\0", "refused: NUL in address"),
        (SENDER, "", "refused: empty recipient address"),
        (SENDER, "News desk <desk@example.com>", "is not a bare address"),
        (SENDER, "desk@example.com> NOTIFY=NEVER", "is not a bare address"),
    ],
)
def test_refusal_keeps_unsafe_addresses_off_the_wire(
    sender: str, recipient: str, reason: str | None
) -> None:
    found = refusal(Outgoing("k", sender, recipient, b""))
    assert (found is None) if reason is None else (found is not None and reason in found)


def test_refusal_agrees_with_parsing_on_many_generated_addresses() -> None:
    """refusal() passes plain addresses without parsing them (a parse costs more than the rest
    of a transaction): whatever it lets through must be what parse_address returns unchanged."""
    rng = random.Random(7)
    alphabet = "aZ09_+=-.@ <>\"'()[],;:\\\t\r\nü"
    for _ in range(10_000):
        address = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        try:
            bare = parse_address(address) == address
        except ValueError:
            bare = False
        if refusal(Outgoing("k", SENDER, address, b"")) is None:
            assert bare, address


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (250, "sent"),
        (550, "failed"),
        (552, "failed"),
        (554, "failed"),
        (451, "retry"),
        (452, "retry"),
        (421, "reconnect"),
        (503, "reconnect"),
        (354, "reconnect"),
        (None, "reconnect"),
        (530, "fatal"),
        (538, "fatal"),
    ],
)
def test_verdict_of_a_reply_code(code: int | None, expected: str) -> None:
    assert verdict(code) == expected


def test_backoff_doubles_from_one_second_with_jitter_and_a_five_minute_cap() -> None:
    assert [backoff(n, lambda: 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert [backoff(n, lambda: 0.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff(10, lambda: 1.0) == BACKOFF_CAP == 300.0
    assert backoff(100, lambda: 0.0) == 150.0


def test_retry_delay_gives_up_after_max_attempts_or_retry_for() -> None:
    settings = smtp(max_attempts=3, retry_for=10.0)
    assert retry_delay(1, 0.0, settings, lambda: 1.0) == 1.0
    assert retry_delay(3, 0.0, settings, lambda: 1.0) is None  # third attempt was the last
    assert retry_delay(2, 7.9, settings, lambda: 1.0) == 2.0  # next attempt at 9.9 s
    assert retry_delay(2, 8.1, settings, lambda: 1.0) is None  # next one would be past 10 s


# --- Delivery ---


def test_many_messages_over_a_few_reused_connections_arrive_once_each(
    server: SmtpServer,
) -> None:
    batch = messages(200)
    summary, results = deliver(mailer(smtp(server, connections=4)), batch)

    assert summary == Summary(sent=200)
    assert {r.key for r in results} == {m.key for m in batch}
    assert {(r.status, r.attempts) for r in results} == {(Status.SENT, 1)}
    assert all(r.reply.startswith("250 2.0.0 Ok: queued as ") for r in results)
    assert server.counts() == {m.recipient: 1 for m in batch}
    assert server.messages_for("r7@example.com") == [batch[7].data]  # bytes as given
    assert server.sessions <= 4  # connections + reconnects (none)
    commands = server.commands()
    assert (commands["MAIL"], commands["RSET"], commands["QUIT"]) == (200, 0, server.sessions)


def test_a_temporary_refusal_is_retried_with_backoff_then_sent(server: SmtpServer) -> None:
    server.refuse("RCPT", TEMPORARY, times=2)
    time = FakeTime()
    _, results = deliver(mailer(smtp(server), time), [message(1)])

    assert results == [Result("d1", Status.SENT, results[0].reply, 3)]
    assert time.sleeps == [1.0, 2.0]
    assert server.counts() == {"r1@example.com": 1}
    assert server.sessions == 1  # a 4xx leaves the connection usable…
    assert server.commands()["RSET"] == 2  # …once the half-done transaction is reset


def test_a_permanent_refusal_fails_that_recipient_only(server: SmtpServer) -> None:
    server.reject("nobody@example.com")
    batch = [message(1), message(2, "nobody@example.com"), message(3)]
    summary, results = deliver(mailer(smtp(server)), batch)

    assert summary == Summary(sent=2, failed=1)
    failed = next(r for r in results if r.key == "d2")
    assert failed == Result(
        "d2",
        Status.FAILED,
        "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown",
        1,
        "RCPT",
    )
    assert server.counts() == {"r1@example.com": 1, "r3@example.com": 1}
    assert server.sessions == 1


def test_a_5xx_to_mail_from_fails_that_message_and_the_run_goes_on(server: SmtpServer) -> None:
    server.refuse("MAIL", "553 5.7.1 Sender address rejected", times=1)
    summary, results = deliver(mailer(smtp(server)), messages(3))

    assert summary == Summary(sent=2, failed=1)
    assert results[0] == Result("d0", Status.FAILED, "553 5.7.1 Sender address rejected", 1, "MAIL")
    assert server.counts() == {"r1@example.com": 1, "r2@example.com": 1}


def test_a_5xx_to_the_data_is_failed_at_stage_data(server: SmtpServer) -> None:
    server.refuse("DATA", "554 5.6.0 Message content rejected", addresses=["r1@example.com"])
    summary, results = deliver(mailer(smtp(server)), messages(2))

    assert summary == Summary(sent=1, failed=1)
    failed = next(r for r in results if r.key == "d1")
    assert (failed.status, failed.stage) == (Status.FAILED, "DATA")
    assert next(r for r in results if r.key == "d0").stage == ""


def test_a_connection_dropped_during_data_is_reopened_and_the_message_sent_once(
    server: SmtpServer,
) -> None:
    """The server hung up before the final dot: it has no message, so a retry cannot make a
    duplicate."""
    server.drop_during_data(times=1)
    summary, results = deliver(mailer(smtp(server)), messages(2))

    assert summary == Summary(sent=2)
    assert [(r.key, r.attempts) for r in results] == [("d0", 2), ("d1", 1)]
    assert server.counts() == {"r0@example.com": 1, "r1@example.com": 1}
    assert server.sessions == 2


def test_a_421_closes_the_connection_and_the_message_is_retried_on_a_new_one(
    server: SmtpServer,
) -> None:
    server.refuse("MAIL", "421 4.3.2 Service shutting down", times=1)
    summary, results = deliver(mailer(smtp(server)), messages(2))

    assert summary == Summary(sent=2)
    assert results[0].attempts == 2
    assert server.sessions == 2
    assert server.counts() == {"r0@example.com": 1, "r1@example.com": 1}


def test_a_server_that_stalls_past_the_timeout_is_retried(server: SmtpServer) -> None:
    server.stall("RCPT", 3.0, times=1)
    time = FakeTime()
    _, results = deliver(mailer(smtp(server, timeout=0.2), time), [message(1)])

    assert results == [Result("d1", Status.SENT, results[0].reply, 2)]
    assert time.sleeps == [1.0]
    assert server.sessions == 2  # the timed-out connection is not trusted again
    assert server.counts() == {"r1@example.com": 1}


def test_a_reply_lost_after_the_final_dot_is_retried_and_may_duplicate(
    server: SmtpServer,
) -> None:
    """SMTP's own ambiguous window (RFC 1047): the server took the message and the
    connection failed before its 250 arrived. The mailer retries (a duplicate is better than
    a loss), and the server has two copies."""
    server.drop_after_data(times=1)
    _, results = deliver(mailer(smtp(server)), [message(1)])

    assert results == [Result("d1", Status.SENT, results[0].reply, 2)]
    assert server.counts() == {"r1@example.com": 2}


def test_a_lasting_temporary_failure_is_deferred_after_max_attempts(server: SmtpServer) -> None:
    server.refuse("RCPT", TEMPORARY)
    time = FakeTime()
    summary, results = deliver(mailer(smtp(server, max_attempts=4), time), [message(1)])

    assert summary == Summary(deferred=1)
    assert results == [Result("d1", Status.DEFERRED, TEMPORARY, 4)]
    assert time.sleeps == [1.0, 2.0, 4.0]  # asked for, never waited
    assert server.counts() == {}


def test_retry_for_bounds_the_time_spent_on_one_message(server: SmtpServer) -> None:
    server.refuse("DATA", TEMPORARY)
    time = FakeTime()
    settings = smtp(server, max_attempts=10, retry_for=2.5)
    _, results = deliver(mailer(settings, time), [message(1)])

    # attempt 1 at 0 s, attempt 2 at 1 s; a third at 1 + 2 = 3 s would be past 2.5 s
    assert results == [Result("d1", Status.DEFERRED, TEMPORARY, 2)]
    assert time.sleeps == [1.0]


def test_the_rate_limit_spaces_messages_across_all_connections(server: SmtpServer) -> None:
    time = FakeTime()
    reported_at: list[float] = []
    settings = smtp(server, connections=4, rate_limit=50)
    summary, _ = deliver(
        mailer(settings, time), messages(100), then=lambda _: reported_at.append(time.now)
    )

    assert summary == Summary(sent=100)
    # the n-th message can only finish once n slots, 1/50 s apart, have passed
    assert all(at >= n / 50 - 1e-9 for n, at in enumerate(reported_at))
    assert time.now == pytest.approx(99 / 50)  # and no later: the bucket never over-throttles
    assert server.counts().total() == 100


def test_no_rate_limit_means_no_waiting(server: SmtpServer) -> None:
    time = FakeTime()
    summary, _ = deliver(mailer(smtp(server, connections=4), time), messages(50))

    assert summary == Summary(sent=50)
    assert time.sleeps == []


# --- Stopping ---


def test_bad_credentials_stop_the_run_with_a_clear_error() -> None:
    with SmtpServer(auth=("press", "right")) as server:
        settings = smtp(server, username="press", password=SecretStr("wrong"))
        with pytest.raises(MailerError) as caught:
            deliver(mailer(settings), messages(3))

        message_text = str(caught.value)
        assert f"127.0.0.1:{server.port}" in message_text
        assert "authentication failed for user 'press'" in message_text
        assert "535" in message_text
        assert server.counts() == {}


def test_good_credentials_authenticate_over_plain_text() -> None:
    with SmtpServer(auth=("press", "right")) as server:
        settings = smtp(server, username="press", password=SecretStr("right"), connections=2)
        summary, _ = deliver(mailer(settings), messages(4))

        assert summary == Summary(sent=4)
        assert server.commands()["AUTH"] == server.sessions
        assert server.packets()[("MAIL", "RCPT", "DATA")] == 4  # after AUTH, pipelined


def test_a_server_requiring_auth_when_none_is_configured_stops_the_run() -> None:
    with (
        SmtpServer(auth=("press", "right")) as server,
        pytest.raises(MailerError, match=r"requires authentication or TLS \(530"),
    ):
        deliver(mailer(smtp(server)), messages(3))


def test_a_failed_run_reports_the_message_it_had_attempted() -> None:
    """530 comes back to MAIL FROM: the message was attempted, so it is reported (deferred,
    with the reply); the two behind it were never attempted and are not."""
    results: list[Result] = []

    async def record(result: Result) -> None:
        results.append(result)

    with SmtpServer(auth=("press", "right")) as server, pytest.raises(MailerError):
        asyncio.run(mailer(smtp(server)).send(messages(3), record))

    assert results == [Result("d0", Status.DEFERRED, "530 5.7.0 Authentication required", 1)]


def test_nothing_listening_is_a_clear_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, and not listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = smtp(host="127.0.0.1", port=port, connections=3)
    with pytest.raises(MailerError) as caught:
        deliver(mailer(settings), messages(5))

    assert f"SMTP server 127.0.0.1:{port}: cannot connect" in str(caught.value)
    assert "check smtp.host and smtp.port" in str(caught.value)


def test_a_non_ascii_address_is_sent_with_smtputf8(server: SmtpServer) -> None:
    summary, _ = deliver(mailer(smtp(server)), [message(1, "müller@example.de")])

    assert summary == Summary(sent=1)
    assert server.counts() == {"müller@example.de": 1}
    assert "SMTPUTF8" in server.received[0].options  # known from EHLO before MAIL FROM


def test_mail_from_declares_the_size_and_8bit_data(server: SmtpServer) -> None:
    item = Outgoing("d1", SENDER, "desk@example.com", "Subject: Türkiye\r\n\r\nÇ\r\n".encode())
    deliver(mailer(smtp(server)), [item])

    assert server.received[0].options == (f"SIZE={len(item.data)}", "BODY=8BITMIME")


def test_cr_lf_in_a_recipient_is_refused_and_never_sent(server: SmtpServer) -> None:
    evil = "desk@example.com\r\nRCPT TO:<everyone@example.com>"
    summary, results = deliver(mailer(smtp(server)), [message(1, evil), message(2)])

    assert summary == Summary(sent=1, failed=1)
    assert results[0] == Result("d1", Status.FAILED, "refused: CR/LF in address", 0)
    assert server.counts() == {"r2@example.com": 1}
    assert server.commands()["RCPT"] == 1


def test_stop_finishes_the_transactions_in_flight_and_leaves_the_rest(
    server: SmtpServer,
) -> None:
    settings = smtp(server, connections=4)
    sender = mailer(settings)
    pulled: list[str] = []

    def source() -> Iterator[Outgoing]:
        for item in messages(500):
            pulled.append(item.key)
            yield item

    reported: list[Result] = []

    def stop_at_ten(result: Result) -> None:
        reported.append(result)
        if len(reported) == 10:
            sender.stop()  # as SIGTERM would, with four transactions under way

    summary, results = deliver(sender, source(), then=stop_at_ten)

    # every transaction under way when stop() came was finished and reported; no new one began
    assert 10 <= len(results) <= 10 + settings.connections - 1
    assert summary == Summary(sent=len(results))
    assert {r.status for r in results} == {Status.SENT}
    assert server.counts() == {f"r{r.key[1:]}@example.com": 1 for r in results}
    assert len(pulled) <= len(results) + sender.queue_size + settings.connections
    assert server.commands()["QUIT"] == server.sessions


def test_stop_during_a_retry_wait_defers_the_message(server: SmtpServer) -> None:
    server.refuse("RCPT", TEMPORARY)
    sender: Mailer

    async def sleep_then_stop(seconds: float) -> None:
        sender.stop()  # SIGTERM arrives while the mailer waits to retry
        await asyncio.sleep(0)

    sender = Mailer(smtp(server), sleep=sleep_then_stop, local_hostname="client.test")
    summary, results = deliver(sender, messages(3))

    assert summary == Summary(deferred=1)
    assert results == [Result("d0", Status.DEFERRED, TEMPORARY, 1)]


def test_an_error_in_on_result_stops_the_run_and_is_raised(server: SmtpServer) -> None:
    async def broken(result: Result) -> None:
        raise RuntimeError("database is locked")

    sender = mailer(smtp(server, connections=2))
    with pytest.raises(RuntimeError, match="database is locked"):
        asyncio.run(sender.send(messages(20), broken))
    assert server.counts().total() <= 2  # the one in flight on each connection
    assert server.commands()["QUIT"] == server.sessions


def test_an_error_in_the_iterable_stops_the_run_and_is_raised(server: SmtpServer) -> None:
    def source() -> Iterator[Outgoing]:
        yield from messages(3)
        raise LookupError("the outbox query failed")

    results: list[Result] = []

    async def record(result: Result) -> None:
        results.append(result)

    with pytest.raises(LookupError, match="the outbox query failed"):
        asyncio.run(mailer(smtp(server)).send(source(), record))
    assert server.counts().total() == len(results) <= 3  # what was sent was reported


# --- Laziness ---


def test_a_long_lazy_iterable_is_taken_only_as_workers_free_up(server: SmtpServer) -> None:
    settings = smtp(server, connections=4)
    sender = mailer(settings)
    bound = sender.queue_size + settings.connections
    pulled = reported = lead = 0

    async def source() -> AsyncIterator[Outgoing]:
        nonlocal pulled, lead
        for n in range(5000):
            pulled += 1
            lead = max(lead, pulled - reported)
            yield Outgoing(f"d{n}", SENDER, f"r{n}@example.com", b"Subject: hi\r\n\r\nhi\r\n")

    def count(result: Result) -> None:
        nonlocal reported
        reported += 1

    summary, _ = deliver(sender, source(), then=count)

    assert summary == Summary(sent=5000)
    assert settings.connections <= lead <= bound
    assert server.counts().total() == 5000


# --- Pipelining (RFC 2920) ---


@pytest.mark.parametrize("offered", [True, False], ids=["offered", "not-offered"])
def test_mail_rcpt_and_data_arrive_in_one_packet_when_the_server_offers_pipelining(
    offered: bool,
) -> None:
    with SmtpServer(pipelining=offered) as server:
        batch = messages(20)
        summary, _ = deliver(mailer(smtp(server)), batch)

        assert summary == Summary(sent=20)
        assert server.messages_for("r7@example.com") == [batch[7].data]
        packets = server.packets()
        if offered:  # one round trip for the envelope, one for the message
            assert packets[("MAIL", "RCPT", "DATA")] == 20
            assert packets[("MAIL",)] == packets[("RCPT",)] == 0
        else:  # aiosmtplib: a round trip for each command
            assert packets[("MAIL",)] == packets[("RCPT",)] == packets[("DATA",)] == 20
            assert packets[("MAIL", "RCPT", "DATA")] == 0


def test_pipelining_can_be_turned_off(piped: SmtpServer) -> None:
    summary, _ = deliver(mailer(smtp(piped), pipelining=False), messages(5))

    assert summary == Summary(sent=5)
    assert piped.packets()[("MAIL",)] == 5


def test_on_result_returns_before_the_next_message_reaches_the_server(piped: SmtpServer) -> None:
    """The durability rule: while a result is being recorded, the server has that message and
    nothing of the next one (its MAIL FROM has not even been sent)."""
    seen: list[tuple[int, int]] = []

    async def slow_record(result: Result) -> None:
        await asyncio.sleep(0.02)  # time for anything sent already to reach the server
        seen.append((len(piped.received), piped.commands()["MAIL"]))

    asyncio.run(mailer(smtp(piped)).send(messages(5), slow_record))

    assert seen == [(n, n) for n in range(1, 6)]


def test_a_recipient_refused_mid_stream_fails_that_message_only(piped: SmtpServer) -> None:
    """The 550 to RCPT comes back in the same packet as the replies to MAIL and DATA (a 503:
    no valid recipient); the message fails at RCPT and the next ones go on, in step."""
    piped.reject("r4@example.com")
    summary, results = deliver(mailer(smtp(piped)), messages(9))

    assert summary == Summary(sent=8, failed=1)
    assert [r.key for r in results] == [f"d{n}" for n in range(9)]
    assert results[4] == Result(
        "d4",
        Status.FAILED,
        "550 5.1.1 <r4@example.com>: Recipient address rejected: User unknown",
        1,
        "RCPT",
    )
    assert {r.status for r in results[:4] + results[5:]} == {Status.SENT}
    assert piped.counts() == {f"r{n}@example.com": 1 for n in range(9) if n != 4}
    assert (piped.sessions, piped.commands()["RSET"]) == (1, 1)


def test_a_refused_recipient_is_not_sent_even_when_the_server_says_354(
    piped: SmtpServer,
) -> None:
    """Some servers answer DATA with 354 although no recipient was accepted (RFC 2920 says
    554). The mailer then ends the data at once, with no message in it."""
    piped.reject("r1@example.com")
    piped.accept_data_without_recipients()
    summary, results = deliver(mailer(smtp(piped)), messages(3))

    assert summary == Summary(sent=2, failed=1)
    assert (results[1].status, results[1].stage) == (Status.FAILED, "RCPT")
    assert piped.counts() == {"r0@example.com": 1, "r2@example.com": 1}
    assert piped.empty_data == 1  # the "." alone, and not a byte of the message
    assert piped.sessions == 1


def test_a_temporary_refusal_mid_stream_is_retried_on_the_same_connection(
    piped: SmtpServer,
) -> None:
    piped.refuse("RCPT", TEMPORARY, times=1, addresses=["r3@example.com"])
    time = FakeTime()
    summary, results = deliver(mailer(smtp(piped), time), messages(6))

    assert summary == Summary(sent=6)
    assert [(r.key, r.attempts) for r in results] == [
        ("d0", 1), ("d1", 1), ("d2", 1), ("d3", 2), ("d4", 1), ("d5", 1)
    ]  # fmt: skip
    assert time.sleeps == [1.0]
    assert piped.counts() == {f"r{n}@example.com": 1 for n in range(6)}
    assert piped.sessions == 1


@pytest.mark.parametrize("fault", ["421 at RCPT", "421 at the end of data", "drop during data"])
def test_a_connection_lost_mid_stream_retries_the_message_in_flight_on_a_new_one(
    piped: SmtpServer, fault: str
) -> None:
    """Whatever the point where the connection goes, the message then in flight is sent again
    on a new connection, every message arrives once, and none is reported twice."""
    where = ["r3@example.com"]
    closing = "421 4.3.2 Service shutting down"
    if fault == "421 at RCPT":
        piped.refuse("RCPT", closing, times=1, addresses=where)
    elif fault == "421 at the end of data":
        piped.refuse("DATA", closing, times=1, addresses=where)
    else:
        piped.drop_during_data(times=1, addresses=where)
    summary, results = deliver(mailer(smtp(piped)), messages(6))

    assert summary == Summary(sent=6)
    assert sorted(r.key for r in results) == [f"d{n}" for n in range(6)]
    assert {r.key: r.attempts for r in results if r.attempts > 1} == {"d3": 2}
    assert piped.counts() == {f"r{n}@example.com": 1 for n in range(6)}
    assert piped.sessions == 2


@pytest.mark.parametrize("command", ["RCPT", "DATA"])
def test_a_server_that_stalls_mid_stream_is_given_up_on_and_the_message_retried(
    piped: SmtpServer, command: Command
) -> None:
    """A stall in the middle of the pipelined group (RCPT), or after the message (the reply
    to the final dot, while the server holds it): each read is bounded by the timeout."""
    piped.stall(command, 3.0, times=1, addresses=["r2@example.com"])
    time = FakeTime()
    summary, results = deliver(mailer(smtp(piped, timeout=0.2), time), messages(4))

    assert summary == Summary(sent=4)
    assert {r.key: r.attempts for r in results} == {"d0": 1, "d1": 1, "d2": 2, "d3": 1}
    assert results[2].key == "d2"
    assert time.sleeps == [1.0]
    assert piped.counts() == {f"r{n}@example.com": 1 for n in range(4)}
    assert piped.sessions == 2


def test_message_bytes_are_dot_stuffed_and_get_crlf_line_ends(piped: SmtpServer) -> None:
    """Lines that start with a dot (the first one, a lone dot, two dots) arrive as given; a
    bare LF or CR, which SMTP forbids, arrives as CRLF; a last line without one gets it."""
    dotted = b".first\r\nSubject: dots\r\n\r\n.\r\n..two\r\n.\r\n. space\r\nend.\r\n"
    bare = b"Subject: bare\n\nline one\nline\rtwo\r\n.dot\nlast"
    items = [
        Outgoing("d0", SENDER, "r0@example.com", dotted),
        Outgoing("d1", SENDER, "r1@example.com", bare),
        Outgoing("d2", SENDER, "r2@example.com", b""),
    ]
    summary, _ = deliver(mailer(smtp(piped)), items)

    assert summary == Summary(sent=3)
    assert piped.messages_for("r0@example.com") == [dotted]
    assert piped.messages_for("r1@example.com") == [
        b"Subject: bare\r\n\r\nline one\r\nline\r\ntwo\r\n.dot\r\nlast\r\n"
    ]
    assert piped.messages_for("r2@example.com") == [b""]


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_message_given_in_data_form_is_sent_as_given_on_the_pipelined_path(
    pipelining: bool,
) -> None:
    """`Outgoing.wire` spares the pipelined path a scan of the whole message: it goes out as
    given (here it differs from `data` on purpose, to tell which was sent). Without
    pipelining, aiosmtplib sends `data`."""
    data = b"Subject: dots\r\n\r\n.leading dot\r\nbody\r\n"
    wire = b"X-Form: data\r\n" + message_data(data)
    item = Outgoing("d0", SENDER, "r0@example.com", data, wire)
    with SmtpServer(pipelining=pipelining) as server:
        summary, _ = deliver(mailer(smtp(server)), [item])
        assert summary == Summary(sent=1)
        expected = b"X-Form: data\r\n" + data if pipelining else data
        assert server.messages_for("r0@example.com") == [expected]


# --- TLS ---


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return Certificate.make(Path(tmp_path_factory.mktemp("tls")))


def test_starttls_then_send(certificate: Certificate) -> None:
    with SmtpServer(starttls=certificate.server_context()) as server:
        settings = smtp(server, security="starttls")
        sender = mailer(settings, tls_context=certificate.client_context())
        summary, _ = deliver(sender, messages(3))

        assert summary == Summary(sent=3)
        assert server.commands()["EHLO"] == 2  # before and after STARTTLS, one session
        assert server.packets()[("MAIL", "RCPT", "DATA")] == 3  # pipelined over TLS


def test_implicit_tls_then_send(certificate: Certificate) -> None:
    with SmtpServer(tls=certificate.server_context()) as server:
        settings = smtp(server, security="tls")
        sender = mailer(settings, tls_context=certificate.client_context())
        summary, _ = deliver(sender, messages(3))

        assert summary == Summary(sent=3)
        assert server.packets()[("MAIL", "RCPT", "DATA")] == 3


def test_an_untrusted_certificate_stops_the_run(certificate: Certificate) -> None:
    with (
        SmtpServer(tls=certificate.server_context()) as server,
        pytest.raises(MailerError, match=r"TLS failed .*CERTIFICATE_VERIFY_FAILED"),
    ):
        deliver(mailer(smtp(server, security="tls")), messages(3))


def test_starttls_required_but_not_offered_stops_the_run(server: SmtpServer) -> None:
    with pytest.raises(MailerError, match="STARTTLS extension not supported"):
        deliver(mailer(smtp(server, security="starttls")), messages(3))
