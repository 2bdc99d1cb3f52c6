"""Deliver digests now: a worker (digest/worker.py) restricted to them, run until none of
their deliveries is left to send, then their counts per state.

Exactly once: a delivery is `sent` only after the server's 250, recorded before that SMTP
connection ends its next message. Any number of senders may work on one digest at once (a
`digest send`, an `outbox retry`, the workers of `syndicate run` and `syndicate worker`); no
delivery is claimed by two. After a crash the only ambiguous rows are the dead sender's
`sending` ones: at most one per SMTP connection in flight (and any the server had accepted
just before the connection broke), plus rows it had claimed and not yet attempted. The next
sender puts them back and sends them again: a recipient may get a second copy, never none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from syndicate.config import Config
from syndicate.digest.messages import signing_secret
from syndicate.digest.worker import Report, Worker, status
from syndicate.mailer import Mailer
from syndicate.store import Store
from syndicate.store.digests import Digest

__all__ = ["Report", "deliver", "deliver_all", "signing_secret", "status"]


async def deliver_all(
    config: Config,
    store: Store,
    digests: Sequence[Digest],
    *,
    clock: Callable[[], datetime],
    mailer: Mailer | None = None,
    progress: Callable[[], None] | None = None,
) -> list[Report]:
    """Send every pending and deferred delivery of `digests`, together with whichever other
    workers are sending them, and wait until no live worker is sending any of them. Raises
    MailerError if the SMTP server cannot be used (the rest stays pending)."""
    if digests:
        worker = Worker(
            config,
            store,
            clock=clock,
            mailer=mailer or Mailer(config.smtp),
            digests=[d.id for d in digests],
            progress=progress,
        )
        await worker.run(until_empty=True, wait_for_others=True)
    return [status(store, digest) for digest in digests]


async def deliver(
    config: Config,
    store: Store,
    digest: Digest,
    *,
    clock: Callable[[], datetime],
    mailer: Mailer | None = None,
    progress: Callable[[], None] | None = None,
) -> Report:
    """Send every pending and deferred delivery of `digest` (see deliver_all)."""
    [report] = await deliver_all(
        config, store, [digest], clock=clock, mailer=mailer, progress=progress
    )
    return report
