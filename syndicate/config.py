"""Configuration: pydantic models of config/*.yaml, loaded with FILE:LINE errors and
SYNDICATE_<SECTION>__<KEY> environment overrides."""

from __future__ import annotations

import difflib
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC
from email.utils import getaddresses
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import soupsieve
from apscheduler.triggers.cron import CronTrigger
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from syndicate.addresses import Mailbox, parse_mailbox
from syndicate.errors import ConfigError, ContentError
from syndicate.files import Utf8Error, decode_utf8
from syndicate.model import Kind
from syndicate.text import END_TAG, SLUG, UNSAFE_IN_URL, check_text
from syndicate.yamlfile import Loc, dotted, line_of, parse_yaml, shown

DEFAULT_PATH = Path("config/syndicate.yaml")
ENV_PREFIX = "SYNDICATE_"
_LANG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
YEAR = 366 * 86400.0  # the longest duration any setting needs


def _list_of(what: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError(f"expected a list of {what}")
        return value

    return BeforeValidator(check)


def _printable(value: str) -> str:
    """Titles end up in feeds, OPML and email headers: no XML-illegal control characters."""
    try:
        return check_text(value, "")
    except ContentError as exc:
        raise ValueError(str(exc)) from None


def _no_markup(value: str) -> str:
    """Text that feeds carry as plain text holds no HTML end tag: readers and validators
    would take it for markup."""
    found = END_TAG.search(value)
    if found:
        raise ValueError(f"contains HTML ({found.group()!r}); write plain text, without tags")
    return value


def _at_most_a_year(value: float) -> float:
    if value > YEAR:
        raise ValueError(
            f"expected a duration of at most a year (366d), such as '6h' or '15m'; got {value:g}s"
        )
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty: feeds, pages and emails show it")
    return value


Text = Annotated[str, AfterValidator(_printable)]
Title = Annotated[str, AfterValidator(_printable), AfterValidator(_not_blank)]
FeedText = Annotated[str, AfterValidator(_printable), AfterValidator(_no_markup)]
FeedTitle = Annotated[FeedText, AfterValidator(_not_blank)]
StrList = Annotated[list[str], _list_of("strings")]
KindList = Annotated[list[Kind], _list_of("kinds")]


def _relative_to_config(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    path = value if value.is_absolute() or base is None else base / value
    return Path(os.path.normpath(path))  # 'config/../public' reads as 'public' in messages


def _zone_name(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as 'Europe/Istanbul'"
        ) from None
    return value


def _http_url(value: str) -> str:
    """An absolute http(s) URL with a host and a valid port, holding nothing a URL cannot
    hold raw (spaces, quotes, angle brackets, control characters)."""
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ValueError(f"{shown(value)} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an absolute http(s) URL, got {shown(value)}")
    bad = UNSAFE_IN_URL.search(value)
    if bad:
        raise ValueError(
            f"{shown(value)} holds {bad.group()!r}, which a URL cannot hold; percent-encode it"
        )
    return value


def _base_url(value: str) -> str:
    """Every public URL is built by appending a path: a query or a fragment would end up in
    the middle of them."""
    parts = urlsplit(_http_url(value))
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ValueError(
            f"{shown(value)} has a query or fragment; give the site's address only, such as "
            "'https://example.org/news'"
        )
    return value.rstrip("/")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(_Section):
    title: FeedTitle
    base_url: str
    language: str = "en"
    timezone: str = "UTC"
    output_dir: Path = Field(default=Path("public"), validate_default=True)
    rights: FeedText | None = None
    icon: str | None = None
    logo: str | None = None

    @field_validator("base_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        return _base_url(value)

    @field_validator("icon", "logo")
    @classmethod
    def _image_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("language")
    @classmethod
    def _bcp47(cls, value: str) -> str:
        if not _LANG.match(value):
            raise ValueError(
                f"expected a BCP 47 language tag such as 'en' or 'tr-TR', got {value!r}"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _zone_name(value)

    _output = field_validator("output_dir")(_relative_to_config)

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Database(_Section):
    url: str = Field(default="sqlite:///var/syndicate.db", validate_default=True)

    @field_validator("url")
    @classmethod
    def _resolve_sqlite(cls, value: str, info: ValidationInfo) -> str:
        """Relative SQLite paths are relative to the config file, not the working directory;
        other databases (postgresql+psycopg://…) are left as they are."""
        scheme, sep, rest = value.partition("://")
        if not sep or not scheme:
            # The value is not echoed: a mistyped URL may still hold a password.
            raise ValueError(
                "expected a database URL such as 'sqlite:///var/syndicate.db' or "
                "'postgresql+psycopg://user@host/dbname'"
            )
        base = (info.context or {}).get("base_dir")
        path, query_sep, query = rest.partition("?")
        if not scheme.startswith("sqlite") or base is None or not path.startswith("/"):
            return value  # another database, no config folder, or in-memory 'sqlite://'
        path = path[1:]
        if not path or path == ":memory:" or path.startswith("/"):
            return value  # in-memory or absolute
        return f"{scheme}:///{base / path}{query_sep}{query}"


class _FileSource(_Section):
    path: Path
    _path = field_validator("path")(_relative_to_config)


class MarkdownSource(_FileSource):
    type: Literal["markdown"]


class JsonSource(_FileSource):
    type: Literal["json"]


class CsvSource(_FileSource):
    type: Literal["csv"]


class HtmlSource(_FileSource):
    """A listing page read with CSS selectors; `sel@attr` reads an attribute instead of text."""

    type: Literal["html"]
    item: str = "li"
    title: str = "h3"
    link: str = "a@href"
    summary: str = "p"
    date: str | None = "time@datetime"
    author: str | None = None
    base_url: str | None = None
    kind: Kind = Kind.PRESS_RELEASE
    byline_kind: Kind = Kind.OP_ED
    datelines: StrList = Field(default_factory=list)

    @field_validator("item", "title", "link", "summary", "date", "author")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        """`css` or `css@attr`; the CSS must compile (a mistake here would stop every read)."""
        css = (value or "").partition("@")[0]
        if css.strip():
            try:
                soupsieve.compile(css)
            except soupsieve.SelectorSyntaxError as exc:
                reason = str(exc).splitlines()[0]
                raise ValueError(f"invalid CSS selector {css!r}: {reason}") from None
        return value


class FeedSource(_Section):
    type: Literal["feed"]
    url: str

    @field_validator("url")
    @classmethod
    def _url_or_path(cls, value: str, info: ValidationInfo) -> str:
        if urlsplit(value).scheme in ("http", "https"):
            return value
        return str(_relative_to_config(Path(value), info))


Source = Annotated[
    MarkdownSource | HtmlSource | FeedSource | JsonSource | CsvSource,
    Field(discriminator="type"),
]


class Topic(_Section):
    title: FeedTitle
    description: FeedText = ""
    keywords: StrList = Field(default_factory=list)
    datelines: StrList = Field(default_factory=list)
    kinds: KindList = Field(default_factory=list)


class Feeds(_Section):
    limit: int = Field(default=50, ge=1, le=10_000)
    archive_size: int = Field(default=100, ge=10, le=10_000)
    websub_hubs: Annotated[list[str], _list_of("hub URLs")] = Field(default_factory=list)

    @field_validator("websub_hubs")
    @classmethod
    def _hub_urls(cls, value: list[str]) -> list[str]:
        return [_http_url(hub) for hub in value]


class Web(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_age: int = Field(default=300, ge=0)
    access_log: bool = False  # a line per request costs half a 304's CPU; proxies log anyway
    # Reverse proxies whose X-Forwarded-For names the client (the subscribe rate limit is per
    # client); empty: the header is ignored, as anyone can send it.
    trusted_proxies: StrList = Field(default_factory=list)


class Smtp(_Section):
    """Where digests are handed over. The password comes only from the environment."""

    host: str = "localhost"
    port: int = Field(default=1025, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    timeout: float = Field(default=30.0, gt=0, le=3600, allow_inf_nan=False)
    connections: int = Field(default=8, ge=1, le=100)
    rate_limit: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    max_attempts: int = Field(default=5, ge=1, le=100)
    retry_for: Annotated[float, AfterValidator(_at_most_a_year)] = Field(
        default=3600.0, gt=0, allow_inf_nan=False
    )


def _mailbox(value: Any) -> Any:
    """Text as written in the file; a Mailbox, or its dump, passes through (model_dump)."""
    if isinstance(value, dict):
        return Mailbox(**value)
    if not isinstance(value, str):
        return value
    if len(getaddresses([value])) > 1:  # parseaddr would keep the first and drop the rest
        raise ValueError(f"{shown(value)} holds more than one address; give one")
    return parse_mailbox(value)


MailboxText = Annotated[Mailbox, BeforeValidator(_mailbox)]


class Mail(_Section):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    sender: MailboxText = Field(default=Mailbox("press@example.org", "Press Office"), alias="from")
    reply_to: MailboxText | None = None
    secret: SecretStr | None = None
    old_secrets: list[SecretStr] = Field(default_factory=list)
    # Hard bounces (5xx to RCPT, or failed DSNs) after which an address gets no more mail.
    bounce_limit: int = Field(default=1, ge=1)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(value: Any) -> Any:
    """'6h', '15m', '90s', '1d' or a number of seconds."""
    if isinstance(value, float) and not math.isfinite(value):  # YAML's .inf and .nan
        raise ValueError(f"expected a duration such as '6h', '15m' or 3600, got {value}")
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"expected a duration such as '6h', '15m' or 3600, got {value!r}")
        return float(match.group(1)) * _UNITS[match.group(2)]
    return value


Seconds = Annotated[
    float,
    BeforeValidator(_seconds),
    Field(ge=0, allow_inf_nan=False),
    AfterValidator(_at_most_a_year),
]
IMMEDIATE = "immediate"


class MailingList(_Section):
    """A digest list: who (the admins' file plus self-service), what (topics), when (cron)."""

    title: Title
    schedule: str
    timezone: str | None = None
    topics: StrList = Field(default_factory=lambda: ["all"])
    subscribers: Path | None = None
    template: str = "digest"
    subject: str = "{{ list.title }}: {{ releases|length }} new releases"
    send_empty: bool = False
    misfire_grace: Seconds = 6 * 3600
    self_service: bool = True  # offered on the public subscribe form

    _subscribers = field_validator("subscribers")(_relative_to_config)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if value.strip() == IMMEDIATE:
            return IMMEDIATE
        try:
            CronTrigger.from_crontab(value, timezone=UTC)
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not 'immediate' nor a cron expression such as '0 8 * * mon' "
                f"(minute hour day month weekday): {exc}"
            ) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else _zone_name(value)

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        try:
            SandboxedEnvironment().parse(value)
        except TemplateSyntaxError as exc:
            raise ValueError(f"not a valid template: {exc.message}") from None
        return value

    @field_validator("template")
    @classmethod
    def _template_name(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError(f"expected a template name such as 'digest', got {value!r}")
        return value


def _topic_slug(slug: str) -> str:
    if slug == "all":
        raise ValueError("'all' is reserved for the feed of every release; rename the topic")
    if not SLUG.match(slug):
        raise ValueError(f"topic slug {slug!r} must be lowercase letters, digits and hyphens")
    return slug


TopicSlug = Annotated[str, AfterValidator(_topic_slug)]


class Config(_Section):
    site: Site
    database: Database = Field(default_factory=dict, validate_default=True)
    sources: Annotated[list[Source], _list_of("sources")] = Field(default_factory=list)
    topics: dict[TopicSlug, Topic] = Field(default_factory=dict)
    feeds: Feeds = Feeds()
    web: Web = Web()
    smtp: Smtp = Smtp()
    mail: Mail = Mail()
    lists: dict[TopicSlug, MailingList] = Field(default_factory=dict)
    sources_poll: Seconds = 15 * 60
    # Where the file was read from: set by load_config, never a key of the file itself.
    _path: Path = PrivateAttr(default=DEFAULT_PATH)
    # The parsed file (with its line numbers), for problems found after loading.
    _data: Any = PrivateAttr(default=None)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def line(self, *loc: str | int) -> int:
        """The 1-based line of a setting, such as ('lists', 'weekly', 'template'), or of the
        nearest enclosing one in the file (1 when none is)."""
        return (line_of(self._data, loc) or 0) + 1

    def configured_topics(self, categories: Iterable[str]) -> tuple[str, ...]:
        """The categories that are topics of this config, in their order: what a release's
        page notes and its feeds carry (the build compares the two, so both ask here)."""
        return tuple(c for c in categories if c in self.topics)

    def where(self, *loc: str | int) -> str:
        """'FILE:LINE: field' of a setting, for a problem found after loading."""
        return f"{self.path}:{self.line(*loc)}: {dotted(loc, self._data)}"


def config_path(
    explicit: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """--config beats SYNDICATE_CONFIG beats config/syndicate.yaml."""
    if explicit:
        return Path(explicit)
    environ = os.environ if environ is None else environ
    return Path(environ.get(f"{ENV_PREFIX}CONFIG") or DEFAULT_PATH)


def load_config(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load, override from the environment, validate; every problem in one ConfigError."""
    environ = os.environ if environ is None else environ
    path = config_path(path, environ)
    data = parse_yaml(_read_text(path), str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:1: (top level): expected a mapping with a 'site' section at the top level"
        )
    _no_password_in_file(data, path)
    env_locs = _apply_env(data, environ)
    context = {"base_dir": path.parent.absolute()}
    try:
        config = Config.model_validate(data, context=context)
    except ValidationError as exc:
        errors = _without_typo_echoes(exc.errors(), data)
        problems = sorted({_describe(err, data, path, env_locs) for err in errors})
        raise ConfigError("\n".join(message for _, message in problems)) from None
    config._path = path
    config._data = data
    problems = sorted(
        (line_of(data, loc) or 0, f"{dotted(loc, data)}: {message}")
        for loc, message in _cross_check(config)
    )
    if problems:
        raise ConfigError("\n".join(f"{path}:{line + 1}: {text}" for line, text in problems))
    return config


def _read_text(path: Path) -> str:
    """The config file as text; a file that is not UTF-8 is named with the line to look at
    and, when it is plainly another encoding (UTF-16 or UTF-32, as some Windows editors
    save), which one."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    other = _other_encoding(raw)
    if other is not None:
        raise ConfigError(f"{path}:1: encoding: the file is {other}; save it as UTF-8")
    try:
        text = decode_utf8(raw)
    except Utf8Error as exc:
        raise ConfigError(f"{path}:{exc.line}: encoding: {exc}") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ConfigError(f"{path}:{line}: encoding: a NUL character; save the file as UTF-8")
    return text


def _other_encoding(raw: bytes) -> str | None:
    """'UTF-16' or 'UTF-32' when the bytes plainly are (a byte-order mark, or the NUL bytes
    that ASCII text has in those encodings)."""
    if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    head = raw[:64]
    if len(head) >= 8 and head.count(0) * 4 >= len(head) * 3:
        return "UTF-32"
    if len(head) >= 4 and head.count(0) * 2 >= len(head):
        return "UTF-16"
    return None


def _cross_check(config: Config) -> Iterator[tuple[Loc, str]]:
    """Rules that span sections and files: a list's topics must be configured topics, and
    its subscriber file must be a file of its own."""
    known = ["all", *config.topics]
    for slug, mailing_list in config.lists.items():
        if mailing_list.subscribers is not None:
            problem = _list_file_problem(mailing_list.subscribers, config.path)
            if problem is not None:
                yield (("lists", slug, "subscribers"), problem)
        for number, topic in enumerate(mailing_list.topics):
            if topic not in known:
                yield (
                    ("lists", slug, "topics", number),
                    f"unknown topic {topic!r}; known: {', '.join(known)}",
                )


def _list_file_problem(path: Path, config_file: Path) -> str | None:
    """Why `path` cannot be a list file, or None."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"file not found: {path}"
    except OSError as exc:  # ELOOP: symlinks that point at each other
        return f"cannot read {path}: {exc.strerror}"
    if stat.S_ISDIR(mode):
        return f"{path} is a folder; name a YAML file such as lists/weekly.yaml"
    if not stat.S_ISREG(mode):
        return f"{path} is not a regular file"
    if path.resolve() == config_file.resolve():
        return "names the config file itself; name a list file such as lists/weekly.yaml"
    return None


def _no_password_in_file(data: dict[str, Any], path: Path) -> None:
    """A password in a file ends up in a repository; only the environment may hold it."""
    smtp = data.get("smtp")
    if isinstance(smtp, dict) and smtp.get("password") is not None:
        line = (line_of(data, ("smtp", "password")) or 0) + 1
        raise ConfigError(
            f"{path}:{line}: smtp.password: must not be in the file; set the "
            "environment variable SYNDICATE_SMTP__PASSWORD instead"
        )


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[Loc, str]:
    """Write SYNDICATE_A__B=v into data['a']['b']; remember which locations came from env."""
    locs: dict[Loc, str] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        node = data
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[keys[-1]] = value
        locs[tuple(keys)] = name
    return locs


def _describe(
    err: ErrorDetails, data: Any, path: Path, env_locs: dict[Loc, str]
) -> tuple[int, str]:
    """(1-based line, message); environment problems sort first, as line 0."""
    loc: Loc = tuple(err["loc"])
    field = dotted(loc, data) or "(top level)"
    for env_loc, name in env_locs.items():
        # Either the variable's own value is wrong, or it descended into a scalar.
        if loc[: len(env_loc)] == env_loc or env_loc[: len(loc)] == loc:
            return 0, f"environment {name}: {field}: {_message(err, data)}"
    line = (line_of(data, loc) or 0) + 1
    return line, f"{path}:{line}: {field}: {_message(err, data)}"


def _message(err: ErrorDetails, data: Any) -> str:
    kind, ctx = err["type"], err.get("ctx", {})
    if kind == "extra_forbidden":
        return "unknown key" + _suggest(err, data)
    if kind == "missing":
        return "required, but missing"
    if kind == "union_tag_invalid":
        return f"unknown type {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return "missing 'type' (markdown, html, feed, json or csv)"
    if kind in ("enum", "literal_error"):
        return f"expected one of {ctx.get('expected')}, got {shown(err['input'])}"
    simple = {
        "string_type": "expected a string",
        "list_type": "expected a list",
        "dict_type": "expected a mapping",
        "model_type": "expected a mapping",
        "model_attributes_type": "expected a mapping",
        "int_parsing": "expected a whole number",
        "int_type": "expected a whole number",
        "bool_parsing": "expected true or false",
        "bool_type": "expected true or false",
    }
    if kind in simple:
        return f"{simple[kind]}, got {shown(err['input'])}"
    msg = err["msg"]
    return msg.removeprefix("Value error, ")


def _without_typo_echoes(errors: list[ErrorDetails], data: Any) -> list[ErrorDetails]:
    """A misspelt required key ('titel') is one mistake: drop the 'title: missing' echo of
    the 'titel: unknown key (did you mean 'title'?)' error."""
    meant: set[Loc] = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            close = _close_key(err, data)
            if close is not None:
                meant.add((*err["loc"][:-1], close))
    return [err for err in errors if not (err["type"] == "missing" and err["loc"] in meant)]


def _close_key(err: ErrorDetails, data: Any) -> str | None:
    loc = tuple(err["loc"])
    close = difflib.get_close_matches(str(loc[-1]), _known_keys(loc[:-1], data), n=1)
    return close[0] if close else None


def _suggest(err: ErrorDetails, data: Any) -> str:
    close = _close_key(err, data)
    if close is not None:
        return f" (did you mean {close!r}?)"
    known = _known_keys(tuple(err["loc"])[:-1], data)
    return f"; expected one of: {', '.join(known)}" if known else ""


_SOURCES: dict[str, type[BaseModel]] = {
    "markdown": MarkdownSource,
    "html": HtmlSource,
    "feed": FeedSource,
    "json": JsonSource,
    "csv": CsvSource,
}


def _known_keys(parent: Loc, data: Any) -> list[str]:
    """Keys allowed in the mapping at `parent`, for 'did you mean' hints."""
    model: type[BaseModel] | None = None
    if parent == ():
        model = Config
    elif len(parent) == 1:  # a section: site, database, feeds, web
        field = Config.model_fields.get(str(parent[0]))
        section = field.annotation if field else None
        model = section if isinstance(section, type) and issubclass(section, BaseModel) else None
    elif len(parent) >= 2 and parent[0] == "topics":
        model = Topic
    elif len(parent) >= 2 and parent[0] == "lists":
        model = MailingList
    elif len(parent) >= 2 and parent[0] == "sources" and isinstance(parent[1], int):
        sources = data.get("sources") if isinstance(data, dict) else None
        item = sources[parent[1]] if isinstance(sources, list) else None
        model = _SOURCES.get(str(item.get("type"))) if isinstance(item, dict) else None
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]
