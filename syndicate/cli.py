"""The admin's commands: thin shells over the library; user mistakes are one line, exit 2."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from syndicate import build as build_service
from syndicate import ingest as ingest_service
from syndicate import mailcatcher as catcher
from syndicate import web
from syndicate.config import Config, load_config
from syndicate.errors import ConfigError, ContentError, SyndicateError
from syndicate.files import display
from syndicate.ingest.record import parse_when
from syndicate.model import Release
from syndicate.output import topic_heading
from syndicate.store import Store
from syndicate.store import releases as store_releases
from syndicate.store.db import current_revision, migrate
from syndicate.subscriptions import check_lists

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
    list_problems = list(check_lists(config))
    for problem in warnings:
        _err(f"warning: {problem}")
    for line in [*map(str, rejected), *list_problems]:
        _err(line)
    if rejected or list_problems:
        raise typer.Exit(2)
    typer.echo(
        f"{config.path}: ok ({len(config.topics)} topics, {len(config.sources)} sources, "
        f"{len(config.lists)} lists, {count} releases read)"
    )


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
def _progress() -> Iterator[Any]:
    """A live count on a terminal; nothing when stderr is a file or a pipe."""
    if not sys.stderr.isatty():
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("ingesting: {task.completed} items"))
    with Progress(*columns, transient=True, console=None) as progress:
        task = progress.add_task("ingest", total=None)
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
    """Serve the built site and feeds (ETag, 304, gzip) until interrupted."""
    config = _state(ctx).config()
    web.serve(
        config.site.output_dir,
        host=host or config.web.host,
        port=port or config.web.port,
        max_age=config.web.max_age,
    )


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
