"""A worker drains the outbox: it claims pending deliveries in batches (of every digest, the
oldest first, or of the digests it was given), hands them to the mailer, and records each
result durably before that SMTP connection goes on to its next message. Any number of
workers, in any number of processes and machines, drain one outbox together; `claim` never
gives one row to two of them.

Liveness without clocks: a worker holds a lock named after its id while it works
(store/locks.py), and the rows it claims carry that id. Rows left `sending` by a worker whose
lock can be taken are a dead worker's: its messages in flight at the kill, at most one per
SMTP connection, plus rows it had claimed and not yet attempted. They go back to pending and
are sent again (a recipient may get a second copy, never none). A live worker's rows are
never touched.

Group commit: a connection's result is queued and the connection waits; one commit records
everything queued so far, then lets those connections go on. The durability of a commit per
message, with far fewer commits. Commits go through a connection the worker holds
(store.digests.Recording), in a thread, one at a time.

Claims are big (claim_size) and the next batch is claimed while the second half of the
current one goes out. Each copy is made from prepared pieces in both forms the mailer needs
(render.Copies), so the mailer sends it without scanning it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from syndicate import bounces
from syndicate.config import Config
from syndicate.digest.messages import Messages, signing_secret
from syndicate.mailer import Mailer, Outgoing, Result, Status
from syndicate.store import Store, locks
from syndicate.store import digests as store_digests
from syndicate.store import suppressions as store_suppressions
from syndicate.store.digests import Delivery, Digest, Outcome, State

log = logging.getLogger(__name__)

REAP_EVERY = 2.0  # seconds between looks for rows of dead workers (and deferred ones to retry)
IDLE_POLL = 1.0  # seconds between looks at an empty outbox (a wake() looks at once)
WAIT_POLL = 0.2  # seconds between looks at another worker's rows a caller waits for
RETRY_DEFERRED = timedelta(minutes=5)  # a deferred delivery is tried again this much later
_STATES = {Status.SENT: State.SENT, Status.FAILED: State.FAILED, Status.DEFERRED: State.DEFERRED}
T = TypeVar("T")
_Claimed = tuple[list[Delivery], dict[int, set[str]]]  # a batch, and its suppressed addresses


def claim_size(connections: int) -> int:
    """Deliveries claimed at a time: enough for a few seconds of every connection, so that
    claims cost little per message, and few enough that a worker that stops puts back little."""
    return min(1000, max(64, 64 * connections))


@dataclass
class Report:
    """Deliveries of one digest by state."""

    digest: Digest
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def waiting(self) -> int:
        return sum(self.counts.get(s, 0) for s in ("pending", "sending", "deferred"))

    @property
    def settled(self) -> bool:
        """Every delivery sent: none failed, none still to send."""
        return self.waiting == 0 and self.counts.get("failed", 0) == 0

    def summary(self) -> str:
        c = self.counts
        return f"sent {c.get('sent', 0)}, failed {c.get('failed', 0)}, pending {self.waiting}"


def status(store: Store, digest: Digest) -> Report:
    with store.connect() as conn:
        return Report(digest, store_digests.counts(conn, digest.id))


@dataclass
class Tally:
    """What one worker did with the deliveries it claimed."""

    counts: dict[State, int] = field(default_factory=lambda: dict.fromkeys(State, 0))
    digests: set[int] = field(default_factory=set)  # the digests it sent from
    commits: int = 0  # group commits of results
    largest_commit: int = 0  # the most results in one

    def __str__(self) -> str:
        c = self.counts
        return (
            f"sent {c[State.SENT]}, failed {c[State.FAILED]}, deferred {c[State.DEFERRED]}, "
            f"skipped {c[State.SKIPPED]}"
        )


class _Recorder:
    """Group commit of outcomes: `record` (the mailer's on_result) returns once its outcome
    is committed; whatever is queued while one commit runs goes into the next one. Each
    waiting connection has a future of its own (cancelling one cancels nothing else)."""

    def __init__(self, worker: Worker, me: str) -> None:
        self.worker, self.me = worker, me
        self.recording = store_digests.Recording(worker.store.engine, me)
        self.queue: list[tuple[Outcome, bool]] = []  # (outcome, a hard bounce?)
        self.waiters: list[asyncio.Future[None]] = []
        self.flushing: asyncio.Task[None] | None = None

    async def record(self, result: Result) -> None:
        status = result.status
        bounce = status is Status.FAILED and result.stage == "RCPT"
        self.queue.append(
            (Outcome(int(result.key), _STATES[status], result.reply, result.attempts), bounce)
        )
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(done)
        if self.flushing is None:
            self.flushing = asyncio.ensure_future(self._flush())
        await done

    def note(self, delivery_id: int, state: State, reply: str) -> None:
        """A delivery settled without reaching the mailer. Not awaited: if the process dies
        first, the row is still `sending` and is decided again."""
        self.queue.append((Outcome(delivery_id, state, reply, 0), False))
        if self.flushing is None:
            self.flushing = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        worker = self.worker
        try:
            while self.queue:
                batch, self.queue = self.queue, []
                waiters, self.waiters = self.waiters, []
                try:
                    await asyncio.to_thread(self._commit, batch, worker.clock())
                except Exception as exc:
                    for done in waiters:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                tally = worker.tally
                tally.commits += 1
                tally.largest_commit = max(tally.largest_commit, len(batch))
                counts = tally.counts
                for outcome, _ in batch:
                    counts[outcome.state] += 1
                for done in waiters:
                    if not done.done():  # its connection may have been cancelled
                        done.set_result(None)
                if worker.progress is not None:
                    for _ in batch:
                        worker.progress()
        finally:
            self.flushing = None

    def _commit(self, batch: list[tuple[Outcome, bool]], at: datetime) -> None:
        outcomes = [outcome for outcome, _ in batch]
        if not any(bounce for _, bounce in batch):
            self.recording.commit(outcomes, at)
            return
        worker = self.worker  # a hard bounce: recorded in the same transaction
        with worker.store.begin() as conn:
            store_digests.record(conn, outcomes, self.me, at)
            for outcome, bounce in batch:
                if bounce:
                    bounces.record_refusal(
                        conn,
                        outcome.delivery_id,
                        outcome.reply,
                        worker.config.mail.bounce_limit,
                        at,
                    )

    async def drain(self) -> None:
        """Return when everything queued is committed (or has failed)."""
        while self.flushing is not None:
            await asyncio.shield(self.flushing)

    def close(self) -> None:
        """After `drain`: give the recording connection back."""
        self.recording.close()


class Worker:
    """Drains the outbox over one Mailer (its `smtp.connections` connections). `run` works
    until `stop()`, or with `until_empty` until nothing is left to claim."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Callable[[], datetime],
        mailer: Mailer | None = None,
        worker_id: str | None = None,
        digests: Collection[int] | None = None,
        progress: Callable[[], None] | None = None,
    ) -> None:
        """`mailer`: the one to use (default: a new Mailer(config.smtp) for each burst, so a
        reloaded config counts). `worker_id`: an id whose lock the caller holds
        (locks.present) for longer than the worker runs; by default each `run` is present
        under a new id. `digests`: send only these. `progress` is called for each delivery
        recorded."""
        self.config, self.store, self.clock = config, store, clock
        self.mailer, self.worker_id, self.progress = mailer, worker_id, progress
        self.digests = list(digests) if digests is not None else None
        self.stopping = False
        self.tally = Tally()
        self._me = ""
        self._until_empty = False
        self._sending: Mailer | None = None
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._reaped_at = -float("inf")
        self._digests: dict[int, Digest | None] = {}  # as claimed: None when deleted
        self._messages: dict[int, Messages | None] = {}

    def stop(self) -> None:
        """Let the SMTP transactions in flight finish, claim nothing more; `run` then puts
        what it claimed and did not attempt back to pending and returns. Call it from the
        event loop's thread."""
        self.stopping = True
        self._wake.set()
        if self._sending is not None:
            self._sending.stop()

    def wake(self) -> None:
        """Look at the outbox now (something was just added)."""
        self._wake.set()

    async def run(self, *, until_empty: bool = False, wait_for_others: bool = False) -> Tally:
        """Send until stopped, or with `until_empty` until there is nothing to claim (and with
        `wait_for_others` also until no other worker is sending any of `digests`). Deferred
        deliveries are retried at the start, and later every RETRY_DEFERRED. Raises
        MailerError (the rest stays pending) when the SMTP server cannot be used."""
        self._until_empty = until_empty
        with ExitStack() as stack:
            self._me = self.worker_id or stack.enter_context(locks.present(self.store))
            recorder = _Recorder(self, self._me)
            try:
                await self._io(self._start)
                while not self.stopping:
                    self._wake.clear()
                    if time.monotonic() - self._reaped_at >= REAP_EVERY:
                        await self._io(self._maintain)
                    if await self._io(self._has_pending):
                        if not await self._burst(recorder):  # others claimed them first
                            await self._idle(WAIT_POLL)
                        continue
                    if until_empty:
                        if await self._io(self._reap):  # a dead worker's rows, if any, first
                            continue
                        if not wait_for_others or not await self._io(self._others_in_flight):
                            break
                    await self._idle(WAIT_POLL if until_empty else IDLE_POLL)
            finally:
                await asyncio.gather(*self._tasks, return_exceptions=True)
                await recorder.drain()
                recorder.close()
                self._release()
        return self.tally

    async def _io(self, work: Callable[[], T]) -> T:
        """Run blocking store work in a thread. Shielded: a claim or a commit that started
        finishes even when the caller is cancelled, and `run` waits for it before it puts
        its claimed rows back."""
        return await asyncio.shield(self._spawn(work))

    def _spawn(self, work: Callable[[], T]) -> asyncio.Future[T]:
        """Start blocking store work in a thread; `run` waits for it before it returns."""
        task = asyncio.ensure_future(asyncio.to_thread(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _idle(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _burst(self, recorder: _Recorder) -> bool:
        """One Mailer run, while there is something to claim; whether it claimed any."""
        mailer = self.mailer or Mailer(self.config.smtp)
        self._messages.clear()  # rendered afresh: a release may have been retracted since
        secret = await self._io(lambda: signing_secret(self.config, self.store))
        touched: set[int] = set()
        if self.stopping:
            return False
        self._sending = mailer
        try:
            await mailer.send(self._outgoing(mailer, recorder, secret, touched), recorder.record)
        finally:
            self._sending = None
            await recorder.drain()
            self.tally.digests |= touched
        for digest_id in sorted(touched):
            messages = self._messages.get(digest_id)
            if messages is not None:
                report = await self._io(partial(status, self.store, messages.digest))
                log.info("%s %s: %s", report.digest.list_slug, report.digest.key, report.summary())
        return bool(touched)

    async def _outgoing(
        self, mailer: Mailer, recorder: _Recorder, secret: str, touched: set[int]
    ) -> AsyncIterator[Outgoing]:
        """The claimed deliveries as messages. The next batch is claimed while the second half
        of this one goes out, so that the connections never wait for a claim."""
        sender = self.config.mail.sender.address
        size = claim_size(mailer.settings.connections)
        claim: asyncio.Future[_Claimed] | None = None
        while not self.stopping:
            if time.monotonic() - self._reaped_at >= REAP_EVERY:
                await self._io(self._maintain)
            if claim is None:
                claim = self._spawn(partial(self._claim, size))
            batch, blocked = await asyncio.shield(claim)
            claim = None
            if not batch:
                return
            halfway = len(batch) // 2
            digest_id, messages, suppressed = -1, None, set()
            for index, delivery in enumerate(batch):
                if index == halfway and not self.stopping:
                    claim = self._spawn(partial(self._claim, size))
                if delivery.digest_id != digest_id:
                    digest_id = delivery.digest_id
                    touched.add(digest_id)
                    messages = self._messages.get(digest_id)
                    if digest_id not in self._messages:
                        messages = await self._io(partial(self._messages_of, digest_id, secret))
                    suppressed = blocked[digest_id]
                if messages is None:  # its list left the config since it was claimed
                    recorder.note(
                        delivery.id, State.PENDING, "not sent: the list is not configured"
                    )
                    continue
                if suppressed and store_suppressions.key(delivery.address) in suppressed:
                    # Checked at the claim: an unsubscribe since the digest was made counts.
                    recorder.note(delivery.id, State.SKIPPED, "not sent: the address is suppressed")
                    continue
                made = messages.personalised(delivery)
                if isinstance(made, str):
                    recorder.note(delivery.id, State.FAILED, made)
                    continue
                data, wire = made
                yield Outgoing(str(delivery.id), sender, delivery.address, data, wire)

    # --- Store work, each in a thread (see _io). ---

    def _messages_of(self, digest_id: int, secret: str) -> Messages | None:
        """The digest's messages (its releases read now), once per burst; None when its list
        has left the config."""
        digest = self._digests.get(digest_id)
        messages = None
        if digest is not None and digest.list_slug in self.config.lists:
            messages = Messages(self.config, self.store, digest, secret)
        self._messages[digest_id] = messages
        return messages

    def _claim(self, size: int) -> _Claimed:
        """A batch of deliveries, and per digest which of their addresses are suppressed."""
        with self.store.begin() as conn:
            batch = store_digests.claim(
                conn,
                self.digests,
                size,
                self.clock(),
                worker=self._me,
                lists=list(self.config.lists),
            )
            blocked: dict[int, set[str]] = {}
            for digest_id in {d.digest_id for d in batch}:
                if digest_id not in self._digests:
                    self._digests[digest_id] = store_digests.get(conn, digest_id)
                digest = self._digests[digest_id]
                addresses = (d.address for d in batch if d.digest_id == digest_id)
                blocked[digest_id] = store_suppressions.among(
                    conn, digest.list_slug if digest else "", addresses
                )
        return batch, blocked

    def _start(self) -> None:
        """Resume: a dead worker's rows, and deferred ones, go out again now."""
        self._reap()
        with self.store.begin() as conn:
            store_digests.requeue(conn, [State.DEFERRED], self.clock(), self.digests)

    def _maintain(self) -> None:
        self._reap()
        if not self._until_empty:
            now = self.clock()
            with self.store.begin() as conn:
                store_digests.requeue(
                    conn, [State.DEFERRED], now, self.digests, older_than=now - RETRY_DEFERRED
                )

    def _reap(self) -> int:
        """Put the `sending` rows of dead workers back to pending; how many."""
        self._reaped_at = time.monotonic()
        with self.store.connect() as conn:
            others = store_digests.claimers(conn) - {self._me}
            unclaimed = store_digests.unclaimed_sending(conn)
        released = 0
        for other in sorted(others):
            with locks.gone(self.store, other) as dead:
                if not dead:
                    continue
                with self.store.begin() as conn:
                    count = store_digests.release(conn, other, self.clock())
            log.warning(
                "worker %s is gone: %d deliveries it had claimed go out again", other, count
            )
            released += count
        for digest_id in unclaimed:  # left by a sender from before workers had ids
            with locks.held(self.store, f"digest-{digest_id}") as free:
                if free:
                    with self.store.begin() as conn:
                        released += store_digests.release_unclaimed(conn, digest_id, self.clock())
        return released

    def _has_pending(self) -> bool:
        with self.store.connect() as conn:
            return store_digests.has_pending(conn, self.digests, list(self.config.lists))

    def _others_in_flight(self) -> bool:
        with self.store.connect() as conn:
            return store_digests.in_flight(conn, self.digests, self._me) > 0

    def _release(self) -> None:
        """Rows this worker claimed and never attempted go back to pending."""
        with self.store.begin() as conn:
            store_digests.release(conn, self._me, self.clock())
