"""The service: the web app and APScheduler jobs in one process. Jobs come from the config;
their work lives in `service`. SIGHUP reloads the config; SIGTERM finishes the SMTP
transactions in flight, leaves the rest pending and exits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from syndicate import maillinks, service
from syndicate.build import build
from syndicate.config import IMMEDIATE, load_config
from syndicate.digest import schedule
from syndicate.mailer import Mailer
from syndicate.store import Store
from syndicate.web import create_app

log = logging.getLogger(__name__)
RESUME_EVERY = timedelta(minutes=5)


class _Server(uvicorn.Server):
    """uvicorn, minus its own signal handling: the Runner owns SIGTERM and SIGINT, so the
    process exits 0 after a clean shutdown instead of dying by the re-raised signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_exit(self) -> None:
        self.should_exit = True


class Runner:
    """One process: serves the site, polls sources, rebuilds at embargo lifts, sends
    digests on their schedules and resumes unfinished ones."""

    def __init__(
        self,
        config_path: Path | None,
        clock: Callable[[], datetime],
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        self.config_path = config_path
        self.clock = clock
        self.config = load_config(config_path)
        self.store = Store.open(self.config.database.url)
        self.host = host or self.config.web.host
        self.port = port or self.config.web.port
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.mailers: set[Mailer] = set()
        self.stopping = False  # set on SIGTERM: finish what is in flight, start nothing new
        self.lock = asyncio.Lock()  # one piece of work at a time: they share the store

    def mailer(self) -> Mailer:
        mailer = Mailer(self.config.smtp)
        self.mailers.add(mailer)
        return mailer

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        server = _Server(
            uvicorn.Config(
                create_app(
                    self.config.site.output_dir,
                    max_age=self.config.web.max_age,
                    routes=maillinks.routes(lambda: self.config, self.store, self.clock),
                ),
                host=self.host,
                port=self.port,
                log_config=None,
                lifespan="off",
            )
        )
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop_signal, server.request_exit)
        self.scheduler.start()
        self.plan_jobs()
        catch_up = loop.create_task(self.guarded(self.start_up))  # the site is up meanwhile
        try:
            await server.serve()  # until SIGINT or SIGTERM
        finally:
            await self.stop()
            await catch_up

    async def stop(self) -> None:
        self.stopping = True
        for mailer in list(self.mailers):
            mailer.stop()  # in-flight transactions finish; the rest stays pending
        self.scheduler.shutdown(wait=False)
        async with self.lock:
            self.store.close()

    async def guarded(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run one job; an error is logged, never kills the service."""
        async with self.lock:
            if self.stopping:
                return
            try:
                await work()
            except Exception:
                log.exception("job failed")
            finally:
                self.mailers.clear()

    def plan_jobs(self) -> None:
        """(Re)create every job from the current config."""
        self.scheduler.remove_all_jobs()
        for slug, mailing_list in self.config.lists.items():
            if mailing_list.schedule == IMMEDIATE:
                continue  # alerts go out after each ingest and at each embargo lift
            self.scheduler.add_job(
                self.job(partial(self.send_due, [slug])),
                schedule.trigger(self.config, mailing_list),
                id=f"digest:{slug}",
                name=f"digest {slug}",
                misfire_grace_time=int(mailing_list.misfire_grace),
                coalesce=True,
                max_instances=1,
            )
        self.scheduler.add_job(
            self.job(self.poll),
            IntervalTrigger(seconds=self.config.sources_poll),
            id="poll",
            name="poll sources and rebuild",
            coalesce=True,
            max_instances=1,
        )
        self.scheduler.add_job(
            self.job(self.resume),
            IntervalTrigger(seconds=RESUME_EVERY.total_seconds()),
            id="resume",
            name="resume unfinished digests",
            coalesce=True,
            max_instances=1,
        )

    def job(self, work: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await self.guarded(work)

        return run

    async def start_up(self) -> None:
        """Catch up: read and build, finish interrupted digests, send what is due."""
        await self.poll()
        await self.resume()

    async def poll(self) -> None:
        _, report = await asyncio.to_thread(service.refresh, self.config, self.store, self.clock())
        self.plan_lift(report.next_change)
        await self.send_due(list(self.config.lists))

    async def lift(self) -> None:
        """An embargo lifts now: rebuild to the second, and alert."""
        report = await asyncio.to_thread(build, self.config, self.store, self.clock())
        self.plan_lift(report.next_change)
        await self.send_due([s for s, m in self.config.lists.items() if m.schedule == IMMEDIATE])

    def plan_lift(self, when: datetime | None) -> None:
        if when is not None:
            self.scheduler.add_job(
                self.job(self.lift),
                DateTrigger(when),
                id="lift",
                name="rebuild at the embargo lift",
                misfire_grace_time=None,
                replace_existing=True,
            )
        elif self.scheduler.get_job("lift"):
            self.scheduler.remove_job("lift")

    async def send_due(self, slugs: list[str]) -> None:
        now = self.clock()
        digests = [
            d
            for slug in slugs
            for d in await asyncio.to_thread(
                service.due_digests, self.config, self.store, slug, now
            )
        ]
        await service.send(
            self.config, self.store, digests, self.clock, self.mailer, lambda: self.stopping
        )

    async def resume(self) -> None:
        digests = await asyncio.to_thread(service.waiting, self.config, self.store)
        await service.send(
            self.config, self.store, digests, self.clock, self.mailer, lambda: self.stopping
        )

    async def reload(self) -> None:
        """SIGHUP: read the config again and reschedule; a broken config keeps the old one."""
        async with self.lock:
            try:
                self.config = load_config(self.config_path)
            except Exception as exc:
                log.error("config not reloaded: %s", exc)
                return
            self.plan_jobs()
            log.info("config reloaded")


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run(
    config_path: Path | None,
    clock: Callable[[], datetime],
    host: str | None = None,
    port: int | None = None,
) -> None:
    """The service, until SIGINT or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    asyncio.run(Runner(config_path, clock, host, port).run())
