"""The pipelined SMTP wire (smtpwire.py) against a real TCP peer on 127.0.0.1 that answers
from a script: replies in one packet or split byte by byte, early, malformed, late or never.
(The mailer's tests drive it against a real SMTP server; these pin down the byte stream.)"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from syndicate.smtpwire import Reply, Wire, message_data

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def talk(script: Script, client: Callable[[Wire], Awaitable[None]], timeout: float = 5.0) -> None:
    """Start a peer running `script` for one connection, connect, let a Wire take the
    connection over (as the mailer does after aiosmtplib's EHLO), and run `client` on it."""

    async def main() -> None:
        done = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await script(reader, writer)
                await done.wait()
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await asyncio.get_running_loop().create_connection(
            asyncio.Protocol, "127.0.0.1", port
        )
        wire = Wire.take_over(transport, timeout)
        try:
            await client(wire)
        finally:
            done.set()
            wire.abort()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def replying(*chunks: bytes, then_close: bool = False) -> Script:
    """A peer that reads one line (the client's first write), then sends `chunks`."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.001)  # separate reads on the client's side
        if then_close:
            writer.close()

    return script


GROUP = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
THREE = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"


def test_three_replies_in_one_packet_are_read_in_order() -> None:
    async def client(wire: Wire) -> None:
        wire.write(GROUP)
        codes = [(await wire.reply()).code for _ in range(3)]
        assert codes == [250, 250, 354]

    talk(replying(THREE), client)


def test_a_reply_split_across_reads_and_a_multi_line_reply_are_put_together() -> None:
    multi = b"250-first line\r\n250-second\r\n250 last  \r\n"
    pieces = [bytes([byte]) for byte in multi + b"250 2.1.5 Ok\r\n"]

    async def client(wire: Wire) -> None:
        wire.write(GROUP)
        first = await wire.reply()
        assert (first.code, first.text) == (250, "250 first line second last")
        assert await wire.reply() == Reply(250, (b"250 2.1.5 Ok\r",))

    talk(replying(*pieces), client)


def test_replies_that_come_before_they_are_asked_for_are_kept() -> None:
    async def client(wire: Wire) -> None:
        wire.write(GROUP)
        await asyncio.sleep(0.05)  # every reply has arrived by now
        assert [(await wire.reply()).code for _ in range(3)] == [250, 250, 354]

    talk(replying(THREE), client)


def test_a_peer_that_says_nothing_times_out_and_the_wire_stays_broken() -> None:
    async def client(wire: Wire) -> None:
        wire.write(GROUP)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError, match=r"no reply from the server within 0\.05 s"):
            await wire.reply()
        assert 0.04 <= loop.time() - started < 1.0
        assert not wire.usable
        with pytest.raises(TimeoutError):  # out of step for good: no late reply is taken
            await wire.reply()

    talk(replying(), client, timeout=0.05)


def test_each_wait_has_its_own_deadline() -> None:
    """Replies that each come well within the timeout never time out, however long the
    whole exchange takes (one timer serves every wait)."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(6):
            await reader.readline()
            await asyncio.sleep(0.04)
            writer.write(b"250 Ok\r\n")

    async def client(wire: Wire) -> None:
        for _ in range(6):
            wire.write(b"NOOP\r\n")
            assert (await wire.reply()).code == 250

    talk(script, client, timeout=0.1)


def test_a_closed_connection_fails_after_the_replies_that_came_before() -> None:
    async def client(wire: Wire) -> None:
        wire.write(GROUP)
        assert (await wire.reply()).code == 421
        with pytest.raises(ConnectionError, match="closed by the server"):
            await wire.reply()
        with pytest.raises(ConnectionError):
            wire.write(b"RSET\r\n")

    talk(replying(b"421 4.3.2 Service shutting down\r\n", then_close=True), client)


def test_a_malformed_reply_breaks_the_wire() -> None:
    async def client(wire: Wire) -> None:
        wire.write(GROUP)
        assert (await wire.reply()).code == 250
        with pytest.raises(ConnectionError, match="malformed reply"):
            await wire.reply()
        await asyncio.sleep(0.05)  # the last line arrives: out of step, it is not taken
        with pytest.raises(ConnectionError, match="malformed reply"):
            await wire.reply()

    talk(replying(b"250 Ok\r\nHTTP/1.1 400 Bad Request\r\n", b"250 Ok\r\n"), client)


# --- message_data ---


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"Subject: hi\r\n\r\nbody\r\n", b"Subject: hi\r\n\r\nbody\r\n.\r\n"),
        (b"no line end", b"no line end\r\n.\r\n"),
        (b".first\r\n.\r\n..\r\nx.\r\n", b"..first\r\n..\r\n...\r\nx.\r\n.\r\n"),
        (b"bare\nlf\rcr\r\n.dot\n", b"bare\r\nlf\r\ncr\r\n..dot\r\n.\r\n"),
        (b"", b".\r\n"),
        (b"\r\n", b"\r\n.\r\n"),
    ],
)
def test_message_data_is_stuffed_and_terminated(data: bytes, wire: bytes) -> None:
    assert message_data(data) == wire


def test_message_data_agrees_with_aiosmtplib_on_many_generated_messages() -> None:
    """The same bytes as aiosmtplib's regular expressions make (normalised line ends, doubled
    leading dots), without them. aiosmtplib sends an empty message as one empty line."""
    rng = random.Random(3)
    for _ in range(20_000):
        data = bytes(rng.choice(b"a.\r\n") for _ in range(rng.randint(1, 14)))
        expected = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(data)) + b".\r\n"
        assert message_data(data) == expected, data
