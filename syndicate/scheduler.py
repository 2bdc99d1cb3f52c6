"""The service processes. `syndicate run`: the web app, APScheduler jobs and (by default) one
outbox worker in one process; `syndicate worker`: an outbox worker alone. Jobs come from the
config; their work lives in `service`. SIGHUP reloads the config; SIGTERM finishes the SMTP
transactions in flight, puts the rest back to pending and exits.

Any number of these processes may share one database. Each scheduled job fires once among
them for each fire time (`service.once`); interval jobs fire at instants aligned on a fixed
epoch, so that every process fires them at the same instants whenever it started."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from syndicate import maillinks, service
from syndicate.config import IMMEDIATE, Config, load_config
from syndicate.digest import schedule
from syndicate.digest.worker import Tally, Worker
from syndicate.mailer import Mailer
from syndicate.store import Store, locks
from syndicate.web import create_app, server_config

log = logging.getLogger(__name__)
RETRY_SENDING = 60.0  # seconds before the embedded worker tries again after an SMTP failure


class _Server(uvicorn.Server):
    """uvicorn, minus its own signal handling: the Runner owns SIGTERM and SIGINT, so the
    process exits 0 after a clean shutdown instead of dying by the re-raised signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_exit(self) -> None:
        self.should_exit = True


def build_job(config: Config) -> str:
    """The name of the build job: once per output folder per machine (each machine serves
    its own copy of the site; processes on one machine share theirs)."""
    name = f"build {socket.gethostname()}:{Path(config.site.output_dir).resolve()}"
    if len(name) > 190:  # room for the "lift " prefix in job_runs.job (200)
        name = f"build {hashlib.sha256(name.encode()).hexdigest()}"
    return name


class Runner:
    """One process: serves the site, polls sources, rebuilds at embargo lifts, creates
    digests on their schedules, and (unless `worker` is false) sends what is in the outbox."""

    def __init__(
        self,
        config_path: Path | None,
        clock: Callable[[], datetime],
        host: str | None = None,
        port: int | None = None,
        *,
        worker: bool = True,
    ) -> None:
        self.config_path = config_path
        self.clock = clock
        self.config = load_config(config_path)
        self.store = Store.open(self.config.database.url)
        self.host = host or self.config.web.host
        self.port = port or self.config.web.port
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.worker_id = locks.new_worker_id()  # this process, for jobs and deliveries alike
        self.worker = (
            Worker(self.config, self.store, clock=clock, worker_id=self.worker_id)
            if worker
            else None
        )
        self.stopping = False  # set on SIGTERM: finish what is in flight, start nothing new
        self.stopped = asyncio.Event()
        self.lock = asyncio.Lock()  # one job's work at a time
        self.running: set[asyncio.Task[Any]] = set()  # the jobs started, not yet finished

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        server = _Server(
            server_config(
                create_app(
                    self.config.site.output_dir,
                    max_age=self.config.web.max_age,
                    routes=maillinks.routes(lambda: self.config, self.store, self.clock),
                ),
                self.config.web,
                host=self.host,
                port=self.port,
                log_config=None,
            )
        )
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop_signal, server.request_exit)
        try:
            with locks.present(self.store, self.worker_id):
                self.scheduler.start()
                self.plan_jobs()
                sending = loop.create_task(self.send()) if self.worker else None
                catch_up = loop.create_task(self.safely(self.start_up))  # the site is up
                try:
                    await server.serve()  # until SIGINT or SIGTERM
                finally:
                    self.stop()
                    await asyncio.gather(catch_up, *self.running, return_exceptions=True)
                    if sending is not None:
                        await sending
        finally:
            self.store.close()

    def stop(self) -> None:
        self.stopping = True
        self.stopped.set()
        if self.worker is not None:
            self.worker.stop()  # in-flight transactions finish; the rest goes back to pending
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    async def send(self) -> None:
        """The embedded worker, until the service stops; an SMTP failure is logged and the
        worker tries again later."""
        assert self.worker is not None
        while not self.stopping:
            try:
                await self.worker.run()
            except Exception:
                log.exception("sending stopped; trying again in %.0f s", RETRY_SENDING)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopped.wait(), RETRY_SENDING)

    async def safely(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run one job; an error is logged, never kills the service."""
        if self.stopping:
            return
        try:
            await work()
        except Exception:
            log.exception("job failed")

    def job(self, work: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            task = asyncio.current_task()
            assert task is not None
            self.running.add(task)
            try:
                await self.safely(work)
            finally:
                self.running.discard(task)

        return run

    async def once(
        self, job: str, fire_time: datetime, work: Callable[[], Awaitable[None]]
    ) -> bool:
        """`work` as `job` for `fire_time`, unless another process runs it (service.once)."""

        async def locked() -> None:
            async with self.lock:
                await work()

        return await service.once(
            self.store,
            self.worker_id,
            job,
            fire_time,
            locked,
            clock=self.clock,
            stopping=lambda: self.stopping,
        )

    def plan_jobs(self) -> None:
        """(Re)create every job from the current config."""
        self.scheduler.remove_all_jobs()
        for slug, mailing_list in self.config.lists.items():
            if mailing_list.schedule == IMMEDIATE:
                continue  # alerts are made after each poll and at each embargo lift
            self.scheduler.add_job(
                self.job(partial(self.digest_due, slug)),
                schedule.trigger(self.config, mailing_list),
                id=f"digest:{slug}",
                name=f"digest {slug}",
                misfire_grace_time=int(mailing_list.misfire_grace),
                coalesce=True,
                max_instances=1,
            )
        self.scheduler.add_job(
            self.job(self.poll),
            IntervalTrigger(seconds=self.config.sources_poll, start_date=service.EPOCH),
            id="poll",
            name="poll sources and rebuild",
            coalesce=True,
            max_instances=1,
        )

    async def start_up(self) -> None:
        """Catch up: read the sources unless another process did this poll interval, make
        what is due, and build this process's site."""
        now = self.clock()
        await self.once("poll", service.poll_slot(now, self.config.sources_poll), self.read)
        async with self.lock:
            await self.rebuild()
        await self.plan_next_lift()

    async def poll(self) -> None:
        slot = service.poll_slot(self.clock(), self.config.sources_poll)
        await self.once("poll", slot, self.read)
        await self.once(build_job(self.config), slot, self.rebuild)
        await self.plan_next_lift()

    async def read(self) -> None:
        """Ingest, then make the digests and alerts that are due (the workers send them)."""
        now = self.clock()
        await asyncio.to_thread(service.read_sources, self.config, self.store, now)
        await asyncio.to_thread(service.prune_jobs, self.store, now)
        await self.make_due(list(self.config.lists))

    async def rebuild(self) -> None:
        await asyncio.to_thread(service.rebuild, self.config, self.store, self.clock())

    async def lift(self, when: datetime) -> None:
        """An embargo lifts now: rebuild to the second, and alert. (Not the poll's build job:
        a lift at a poll's fire time must not stand for the build after that poll's ingest.)"""
        await self.once(f"lift {build_job(self.config)}", when, self.rebuild)
        immediate = [s for s, m in self.config.lists.items() if m.schedule == IMMEDIATE]
        if immediate:
            await self.once("alerts", when, partial(self.make_due, immediate))
        await self.plan_next_lift()

    async def plan_next_lift(self) -> None:
        when = await asyncio.to_thread(service.next_lift, self.store, self.clock())
        if self.stopping:
            return
        if when is not None:
            self.scheduler.add_job(
                self.job(partial(self.lift, when)),
                DateTrigger(when),
                id="lift",
                name="rebuild at the embargo lift",
                misfire_grace_time=None,
                replace_existing=True,
            )
        elif self.scheduler.get_job("lift"):
            self.scheduler.remove_job("lift")

    async def digest_due(self, slug: str) -> None:
        """A list's schedule fires: make its digest (once, whichever process)."""
        fire = schedule.latest_fire(self.config, self.config.lists[slug], self.clock())
        if fire is not None:
            await self.once(f"digest {slug}", fire, partial(self.make_due, [slug]))

    async def make_due(self, slugs: list[str]) -> None:
        now = self.clock()
        for slug in slugs:
            await asyncio.to_thread(service.due_digests, self.config, self.store, slug, now)
        if self.worker is not None:
            self.worker.wake()

    async def reload(self) -> None:
        """SIGHUP: read the config again and reschedule; a broken config keeps the old one."""
        async with self.lock:
            try:
                self.config = load_config(self.config_path)
            except Exception as exc:
                log.error("config not reloaded: %s", exc)
                return
            if self.worker is not None:
                self.worker.config = self.config
            self.plan_jobs()
            log.info("config reloaded")


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run(
    config_path: Path | None,
    clock: Callable[[], datetime],
    host: str | None = None,
    port: int | None = None,
    *,
    worker: bool = True,
) -> None:
    """The service, until SIGINT or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    asyncio.run(Runner(config_path, clock, host, port, worker=worker).run())


def work(
    config: Config,
    store: Store,
    clock: Callable[[], datetime],
    *,
    connections: int | None = None,
    until_empty: bool = False,
) -> Tally:
    """`syndicate worker`: drain the outbox over `connections` SMTP connections (default
    smtp.connections) until SIGTERM or SIGINT, or with `until_empty` until it is empty."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    settings = config.smtp
    if connections is not None:
        settings = settings.model_copy(update={"connections": connections})
    worker = Worker(config, store, clock=clock, mailer=Mailer(settings))

    async def main() -> Tally:
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop_signal, worker.stop)
        return await worker.run(until_empty=until_empty)

    return asyncio.run(main())
