"""The admin's commands: thin shells over the library; user mistakes are one line, exit 2."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

from syndicate import bounces as bounce_service
from syndicate import build as build_service
from syndicate import ingest as ingest_service
from syndicate import mailcatcher as catcher
from syndicate import maillinks, scheduler, service, subscriptions, web
from syndicate.config import IMMEDIATE, Config, load_config
from syndicate.digest import outbox, preview, schedule, send
from syndicate.digest.compile import Plan
from syndicate.digest.render import check_templates
from syndicate.errors import ConfigError, ContentError, SyndicateError
from syndicate.files import display
from syndicate.ingest.record import parse_when
from syndicate.model import Release
from syndicate.output import topic_heading
from syndicate.store import Store
from syndicate.store import digests as store_digests
from syndicate.store import releases as store_releases
from syndicate.store.db import current_revision, migrate
from syndicate.store.digests import Digest
from syndicate.store.digests import State as DeliveryState
from syndicate.subscriptions import check_lists, suppressed_entries

app = typer.Typer(
    name="syndicate",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Press-release syndication: topic feeds and email digests.",
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
digest_app = typer.Typer(no_args_is_help=True, help="Digests: preview, send, status.")
app.add_typer(digest_app, name="digest")
outbox_app = typer.Typer(no_args_is_help=True, help="Deliveries waiting to be sent.")
app.add_typer(outbox_app, name="outbox")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@dataclass
class State:
    config_path: Path | None
    now: datetime

    def config(self) -> Config:
        return load_config(self.config_path)


def _now(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        return parse_when(value, UTC)
    except ContentError as exc:
        raise typer.BadParameter(str(exc), param_hint="--now") from None


@app.callback()
def _options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file [default: $SYNDICATE_CONFIG or config/syndicate.yaml].",
            show_default=False,
        ),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help="Act as if it were this instant (ISO 8601), e.g. to preview an embargo.",
            show_default=False,
        ),
    ] = None,
) -> None:
    ctx.obj = State(config, _now(now))


def _state(ctx: typer.Context) -> State:
    state = ctx.find_root().obj
    assert isinstance(state, State)
    return state


@contextmanager
def _store(config: Config) -> Iterator[Store]:
    store = Store.open(config.database.url)
    try:
        yield store
    finally:
        store.close()


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


@app.command()
def check(ctx: typer.Context) -> None:
    """Validate the configuration and the content of local sources; exit 2 on any error."""
    state = _state(ctx)
    config = state.config()
    rejected, warnings, count = ingest_service.check(config, state.now)
    list_problems = [*check_lists(config), *check_templates(config)]
    for problem in [*warnings, *_suppressed_entries(config)]:
        _err(f"warning: {problem}")
    for line in [*map(str, rejected), *list_problems]:
        _err(line)
    if rejected or list_problems:
        raise typer.Exit(2)
    typer.echo(
        f"{config.path}: ok ({len(config.topics)} topics, {len(config.sources)} sources, "
        f"{len(config.lists)} lists, {count} releases read)"
    )


def _suppressed_entries(config: Config) -> list[str]:
    """List-file entries whose address gets no mail, when the store already exists."""
    try:
        store = Store.open_existing(config.database.url)
    except SyndicateError as exc:
        return [f"suppressions not checked: {exc}"]
    if store is None:
        return []
    with store, store.connect() as conn:
        return list(suppressed_entries(conn, config))


@app.command()
def ingest(
    ctx: typer.Context,
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="Paths or feed URLs to read instead of the configured sources.", show_default=False
        ),
    ] = None,
    reclassify: Annotated[
        bool,
        typer.Option(
            "--reclassify", help="Recompute every stored release's topics from the config."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Read sources into the release store; exit 1 if anything was rejected."""
    state = _state(ctx)
    config = state.config()
    with _store(config) as store, _progress() as tick:
        report = ingest_service.ingest(
            config, store, state.now, paths=sources or (), reclassify=reclassify, progress=tick
        )
    if as_json:
        _print_json(report.to_dict())
    else:
        for problem in report.warnings:
            _err(f"warning: {problem}")
        for problem in report.rejected:
            _err(f"rejected: {problem}")
        typer.echo(report.summary())
    if report.rejected:
        raise typer.Exit(1)


@contextmanager
def _progress(what: str = "ingesting", total: int | None = None) -> Iterator[Any]:
    """A live count (a bar when the total is known) on a terminal; nothing when stderr is a
    file or a pipe."""
    if not sys.stderr.isatty():
        yield None
        return
    columns: list[Any] = [SpinnerColumn(), TextColumn(f"{what}: {{task.completed}}")]
    if total is not None:
        columns += [BarColumn(), TextColumn("of {task.total}")]
    with Progress(*columns, transient=True, console=None) as progress:
        task = progress.add_task(what, total=total)
        yield lambda: progress.advance(task)


def _topic_option(config: Config, topic: str | None) -> str | None:
    if topic is not None and topic != "all" and topic not in config.topics:
        known = ", ".join(["all", *config.topics])
        raise typer.BadParameter(f"unknown topic {topic!r}; known: {known}", param_hint="--topic")
    return topic


def _status(release: Release, now: datetime) -> str:
    if release.retracted:
        return "retracted"
    if not release.is_public(now):
        return "embargoed"
    return "public"


@app.command()
def releases(
    ctx: typer.Context,
    topic: Annotated[
        str | None, typer.Option("--topic", help="Only this topic's releases.", show_default=False)
    ] = None,
    include_all: Annotated[
        bool, typer.Option("--all", help="Include embargoed and retracted releases (marked).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List public releases, newest first."""
    state = _state(ctx)
    config = state.config()
    slug = _topic_option(config, topic)
    order = list(config.topics)
    with _store(config) as store, store.connect() as conn:
        found = (
            store_releases.everything(conn, topic=slug, order=order)
            if include_all
            else store_releases.latest(conn, state.now, topic=slug, order=order)
        )
    if as_json:
        _print_json([{**r.to_dict(), "status": _status(r, state.now)} for r in found])
        return
    tz = config.site.tz
    for r in found:
        status = _status(r, state.now)
        mark = (
            ""
            if status == "public"
            else f"  [{status}"
            + (
                f" until {r.public_from.astimezone(tz):%Y-%m-%d %H:%M}]"
                if status == "embargoed"
                else "]"
            )
        )
        topics = f"  ({', '.join(r.categories)})" if r.categories else ""
        typer.echo(f"{r.published.astimezone(tz):%Y-%m-%d}  {r.id}  {r.title}{topics}{mark}")
    if not found:
        _err("no releases" + (f" in topic {slug!r}" if slug else "") + "; run `syndicate ingest`")


@app.command()
def topics(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List topics with their number of public releases."""
    state = _state(ctx)
    config = state.config()
    with _store(config) as store, store.connect() as conn:
        counts = store_releases.topic_counts(conn, state.now)
    rows = [
        {"slug": slug, "title": title, "description": description, "releases": counts.get(slug, 0)}
        for slug in ["all", *config.topics]
        for title, description in [topic_heading(config, slug)]
    ]
    if as_json:
        _print_json(rows)
        return
    width = max(len(str(row["slug"])) for row in rows)
    for row in rows:
        typer.echo(f"{row['slug']:<{width}}  {row['releases']:>5}  {row['title']}")


@app.command()
def build(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Write the feeds and pages of everything public now; print what changed."""
    state = _state(ctx)
    config = state.config()
    with _store(config) as store:
        report = build_service.build(config, store, state.now)
    for warning in report.warnings:
        _err(f"warning: {warning}")
    if as_json:
        _print_json(report.to_dict())
        return
    for path in report.written:
        typer.echo(f"written  {path}")
    for path in report.removed:
        typer.echo(f"removed  {path}")
    typer.echo(f"{display(config.site.output_dir)}: {report.summary()}")
    if report.next_change:
        lift = report.next_change.astimezone(config.site.tz)
        typer.echo(f"next embargo lift: {lift:%Y-%m-%d %H:%M:%S %z}; build again then")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            help="Address to listen on [default: web.host, 127.0.0.1].",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", help="Port to listen on [default: web.port, 8000].", show_default=False
        ),
    ] = None,
) -> None:
    """Serve the built site and feeds (ETag, 304, gzip) and the unsubscribe links of
    digests, until interrupted."""
    state = _state(ctx)
    config = state.config()
    with _store(config) as store:
        web.serve(
            config.site.output_dir,
            config.web.model_copy(
                update={"host": host or config.web.host, "port": port or config.web.port}
            ),
            max_age=config.web.max_age,
            routes=maillinks.routes(lambda: config, store, _clock(state)),
        )


@app.command()
def run(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(
            "--host", help="Address to listen on [default: web.host].", show_default=False
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Port to listen on [default: web.port].", show_default=False),
    ] = None,
    no_worker: Annotated[
        bool,
        typer.Option(
            "--no-worker", help="Send nothing: leave the outbox to `syndicate worker` processes."
        ),
    ] = False,
) -> None:
    """The service: serve the site, poll the sources, rebuild at embargo lifts, make digests
    on their schedules and send them, until SIGTERM or Ctrl-C (SIGHUP reloads the config)."""
    state = _state(ctx)
    scheduler.run(state.config_path, _clock(state), host, port, worker=not no_worker)


@app.command()
def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            max=100,
            help="SMTP connections [default: smtp.connections].",
            show_default=False,
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Exit when there is nothing left to send.")
    ] = False,
) -> None:
    """Send what is in the outbox, every list and digest, until SIGTERM or Ctrl-C; any
    number of workers share one database without sending anything twice."""
    state = _state(ctx)
    config = state.config()
    with _store(config) as store:
        tally = scheduler.work(
            config, store, _clock(state), connections=concurrency, until_empty=once
        )
        digests = _digests(store, tally.digests)
        for digest in digests:
            typer.echo(f"{digest.list_slug} {digest.key}: {send.status(store, digest).summary()}")
    typer.echo(f"worker: {tally}")


def _digests(store: Store, ids: Iterable[int]) -> list[Digest]:
    with store.connect() as conn:
        found = [store_digests.get(conn, digest_id) for digest_id in sorted(ids)]
    return [digest for digest in found if digest is not None]


@app.command()
def mailcatcher(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="SMTP port.")] = 1025,
    folder: Annotated[
        Path, typer.Option("--dir", help="Where to keep the messages, one .eml file each.")
    ] = Path("var/mail"),
) -> None:
    """Run a local SMTP server that keeps every message as an .eml file (for trying out)."""
    typer.echo(f"catching mail on {host}:{port} into {display(folder)}/ (Ctrl-C stops)")
    catcher.serve(folder, host, port)


ListArgument = Annotated[
    str, typer.Argument(help="A list slug from the config.", show_default=False)
]
WhenOption = Annotated[str | None, typer.Option(help="An instant, ISO 8601.", show_default=False)]


def _list_slug(config: Config, slug: str) -> str:
    if slug not in config.lists:
        known = ", ".join(config.lists) or "none configured"
        raise typer.BadParameter(f"unknown list {slug!r}; known: {known}", param_hint="LIST")
    return slug


def _instant(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value, UTC)
    except ContentError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _print_plan(config: Config, slug: str, since: datetime, until: datetime, plan: Plan) -> None:
    tz = config.site.tz
    typer.echo(
        f"{slug}: releases public after {since.astimezone(tz):%Y-%m-%d %H:%M} "
        f"up to {until.astimezone(tz):%Y-%m-%d %H:%M}: {len(plan.new)} new, "
        f"{len(plan.corrected)} corrected"
    )
    for label, releases in (("new", plan.new), ("corrected", plan.corrected)):
        for r in releases:
            typer.echo(f"  {label:9}  {r.public_from.astimezone(tz):%Y-%m-%d}  {r.id}  {r.title}")


@digest_app.command("preview")
def digest_preview(
    ctx: typer.Context,
    list_slug: ListArgument,
    subscriber: Annotated[
        str | None,
        typer.Option(
            "--subscriber", help="Show this subscriber's copy (their topics).", show_default=False
        ),
    ] = None,
    since: WhenOption = None,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Write the HTML part to this file.", show_default=False),
    ] = None,
    eml: Annotated[
        Path | None,
        typer.Option(
            "--eml", help="Write the whole message to this .eml file.", show_default=False
        ),
    ] = None,
) -> None:
    """What the next digest would contain now, without recording or sending anything."""
    state = _state(ctx)
    config = state.config()
    slug = _list_slug(config, list_slug)
    with _store(config) as store:
        start = _instant(since, "--since") or outbox.window_start(config, store, slug, state.now)
        plan = outbox.current_plan(config, store, slug, start, state.now)
        _print_plan(config, slug, start, state.now, plan)
        if html or eml:
            with store.connect() as conn:
                person = preview.subscriber(conn, config, slug, subscriber) if subscriber else None
            message = preview.message(config, slug, plan, state.now, person)
            if html:
                html.write_bytes(message.html)
                typer.echo(f"wrote {display(html)}")
            if eml:
                eml.write_bytes(message.eml)
                typer.echo(f"wrote {display(eml)}")


@digest_app.command("send")
def digest_send(
    ctx: typer.Context,
    list_slug: ListArgument,
    period: WhenOption = None,
    since: WhenOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be sent; record and send nothing.")
    ] = False,
) -> None:
    """Create the digest of the current period (the latest fire time not after now) if
    needed, and deliver it now; exit 1 if any delivery failed or is still pending."""
    state = _state(ctx)
    config = state.config()
    slug = _list_slug(config, list_slug)
    with _store(config) as store:
        if config.lists[slug].schedule == IMMEDIATE:
            digests = (
                [
                    c.digest
                    for c in outbox.create_alerts(config, store, slug, state.now)
                    if c.digest is not None
                ]
                if not dry_run
                else []
            )
        else:
            when = _instant(period, "--period") or schedule.latest_fire(
                config, config.lists[slug], state.now
            )
            if when is None:
                raise typer.BadParameter(
                    "the schedule has not fired yet; give --period", param_hint="--period"
                )
            start = _instant(since, "--since")
            if dry_run:
                begin = start or outbox.window_start(config, store, slug, when)
                _print_plan(
                    config, slug, begin, when, outbox.current_plan(config, store, slug, begin, when)
                )
                return
            created = outbox.create(config, store, slug, when, state.now, since=start)
            digests = [created.digest] if created.digest else []
            if created.digest is None:
                typer.echo(f"{slug}: nothing new for the period of {when.isoformat()}; no digest")
        reports = _deliver(config, store, digests, state)
        for report in reports:
            typer.echo(f"{slug} {report.digest.key}: {report.summary()}")
    if not all(report.settled for report in reports):
        raise typer.Exit(1)


def _deliver(
    config: Config, store: Store, digests: list[Digest], state: State
) -> list[send.Report]:
    total = sum(send.status(store, digest).waiting for digest in digests)
    with _progress("sending", total) as tick:
        return asyncio.run(
            send.deliver_all(config, store, digests, clock=_clock(state), progress=tick)
        )


def _clock(state: State) -> Callable[[], datetime]:
    """Now, moving on from --now when it was given (so recorded times stay ordered)."""
    started = datetime.now(UTC)
    return lambda: state.now + (datetime.now(UTC) - started)


@digest_app.command("status")
def digest_status(
    ctx: typer.Context,
    list_slug: Annotated[
        str | None, typer.Argument(help="Only this list.", show_default=False)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Digests, newest first, with their deliveries per state."""
    config = _state(ctx).config()
    slug = _list_slug(config, list_slug) if list_slug else None
    with _store(config) as store, store.connect() as conn:
        rows = store_digests.status(conn, slug)
    if as_json:
        _print_json(
            [
                {
                    "list": d.list_slug,
                    "key": d.key,
                    "period": d.period.isoformat(),
                    "since": d.since.isoformat(),
                    "deliveries": counts,
                }
                for d, counts in rows
            ]
        )
        return
    for digest, counts in rows:
        states = ", ".join(f"{name} {n}" for name, n in counts.items())
        typer.echo(
            f"{digest.list_slug}  {digest.period.astimezone(config.site.tz):%Y-%m-%d %H:%M}"
            f"  {states}"
        )
    if not rows:
        _err("no digests yet")


@outbox_app.command("retry")
def outbox_retry(
    ctx: typer.Context,
    failed: Annotated[
        bool, typer.Option("--failed", help="Also retry deliveries that failed permanently.")
    ] = False,
) -> None:
    """Resume every digest with deliveries left pending, sending (after a crash) or deferred."""
    state = _state(ctx)
    config = state.config()
    with _store(config) as store:
        if failed:
            with store.begin() as conn:
                store_digests.requeue(conn, [DeliveryState.FAILED], state.now)
        waiting, unconfigured = service.waiting(config, store)
        for digest in unconfigured:
            _err(f"warning: list {digest.list_slug!r} is no longer configured; skipped")
        for report in _deliver(config, store, waiting, state):
            typer.echo(f"{report.digest.list_slug} {report.digest.key}: {report.summary()}")
    if not waiting and not unconfigured:
        typer.echo("nothing waiting")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply pending schema migrations (also done automatically on start)."""
    config = _state(ctx).config()
    store = Store.open(config.database.url, upgrade=False)
    try:
        migrate(store.engine)
        typer.echo(f"database at revision {current_revision(store.engine)} (latest)")
    finally:
        store.close()


subscribers_app = typer.Typer(
    no_args_is_help=True, help="The admins' subscriber files: list, add, remove, import, export."
)
app.add_typer(subscribers_app, name="subscribers")
EmailArgument = Annotated[str, typer.Argument(help="An email address.", show_default=False)]


@subscribers_app.command("list")
def subscribers_list(
    ctx: typer.Context, list_slug: ListArgument, as_json: JsonOption = False
) -> None:
    """Every subscriber with source, status (active, or why suppressed) and topics."""
    config = _state(ctx).config()
    slug = _list_slug(config, list_slug)
    with _store(config) as store, store.connect() as conn:
        listed, problems = subscriptions.listing(conn, config, slug)
    for problem in problems:
        _err(f"warning: {problem}")
    if as_json:
        _print_json([entry.to_dict() for entry in listed])
        return
    width = max((len(entry.subscriber.address) for entry in listed), default=0)
    for entry in listed:
        s = entry.subscriber
        topics = ", ".join(s.topics) or "all topics"
        name = f"  {s.name}" if s.name else ""
        typer.echo(f"{s.address:<{width}}  {entry.status:<12}  {entry.source:<12}  {topics}{name}")
    if not listed:
        _err(f"no subscribers in list {slug!r}")


@subscribers_app.command("add")
def subscribers_add(
    ctx: typer.Context,
    list_slug: ListArgument,
    email: EmailArgument,
    name: Annotated[
        str, typer.Option("--name", help="The subscriber's name.", show_default=False)
    ] = "",
    topics: Annotated[
        str,
        typer.Option(
            "--topics",
            help="Comma-separated topics [default: every topic of the list].",
            show_default=False,
        ),
    ] = "",
    resubscribe: Annotated[
        bool,
        typer.Option(
            "--resubscribe", help="Add a suppressed address, lifting its suppression for this list."
        ),
    ] = False,
) -> None:
    """Add a subscriber to the list's file, keeping the rest of it as written."""
    state = _state(ctx)
    config = state.config()
    slug = _list_slug(config, list_slug)
    try:
        subscriber = subscriptions.make_subscriber(email, name, topics.split(","))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="EMAIL") from None
    with _store(config) as store:
        lifted = subscriptions.add(
            config, store, slug, subscriber, now=state.now, by=_who(), resubscribe=resubscribe
        )
    path = display(subscriptions.list_path(config, slug))
    typer.echo(f"added {subscriber.address} to {path}")
    for record in lifted:
        typer.echo(
            f"resubscribed {record.address} to {slug} by {record.by} at "
            f"{record.at:%Y-%m-%d %H:%M:%S} UTC; lifted: {record.lifted.describe()}"
        )


def _who() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown user"


@subscribers_app.command("remove")
def subscribers_remove(ctx: typer.Context, list_slug: ListArgument, email: EmailArgument) -> None:
    """Remove a subscriber from the list's file (suppressions are kept)."""
    config = _state(ctx).config()
    slug = _list_slug(config, list_slug)
    lines = subscriptions.remove(config, slug, email)
    path = display(subscriptions.list_path(config, slug))
    where = ", ".join(str(line) for line in lines)
    typer.echo(f"removed {email.strip()} from {path} (line {where})")


@subscribers_app.command("import")
def subscribers_import(
    ctx: typer.Context,
    list_slug: ListArgument,
    csv_file: Annotated[
        Path, typer.Argument(help="A CSV file with header email,name,topics.", show_default=False)
    ],
) -> None:
    """Append the rows of a CSV file to the list's file; exit 1 if any row was rejected."""
    config = _state(ctx).config()
    slug = _list_slug(config, list_slug)
    with _store(config) as store:
        report = subscriptions.import_csv(config, store, slug, csv_file)
    for problem in report.rejected:
        _err(problem)
    typer.echo(f"{display(subscriptions.list_path(config, slug))}: {report.summary()}")
    if report.rejected:
        raise typer.Exit(1)


@subscribers_app.command("export")
def subscribers_export(
    ctx: typer.Context,
    list_slug: ListArgument,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print CSV (email,name,topics) instead of addresses.")
    ] = False,
) -> None:
    """Print the list file's subscribers: one address per line, or CSV."""
    config = _state(ctx).config()
    slug = _list_slug(config, list_slug)
    subscriptions.list_path(config, slug)
    read = subscriptions.read_list_file(config, slug)
    for problem in read.problems:
        _err(f"warning: {problem}")
    if as_csv:
        typer.echo(subscriptions.export_csv(read.subscribers), nl=False)
    else:
        for s in read.subscribers:
            typer.echo(s.address)


bounces_app = typer.Typer(no_args_is_help=True, help="Hard bounces reported by mail servers.")
app.add_typer(bounces_app, name="bounces")


@bounces_app.command("process")
def bounces_process(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            help="An .eml file, a Maildir (cur/ and new/), or a folder of .eml files.",
            show_default=False,
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Record the hard bounces that delivery status notifications (DSNs) report; suppress
    an address from every list once it has mail.bounce_limit of them."""
    state = _state(ctx)
    config = state.config()
    files = bounce_service.message_files(path)  # a wrong path is reported before the store opens
    with _store(config) as store:
        report = bounce_service.process(store, files, limit=config.mail.bounce_limit, now=state.now)
    if as_json:
        _print_json(report.to_dict())
        return
    for message in report.messages:
        for counted in message.counted:
            f = counted.failure
            what = "recorded" if counted.new else "already known"
            if counted.suppressed:
                what += ", suppressed from every list"
            typer.echo(f"{message.file}: bounce {f.address} ({f.status}) {what}")
        if message.skipped is not None:
            typer.echo(f"{message.file}: skipped: {message.skipped}")
            continue
        for f in message.not_counted:
            typer.echo(f"{message.file}: not counted {f.address}: {f.excuse}")
    typer.echo(report.summary())


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on stderr for user mistakes, never a traceback."""
    try:
        app(args=argv, prog_name="syndicate")
    except ConfigError as exc:
        _err(str(exc))
        sys.exit(exc.exit_code)
    except SyndicateError as exc:
        _err(f"error: {exc}")
        sys.exit(exc.exit_code)
