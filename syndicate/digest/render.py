"""A digest as MIME bytes: rendered once per variant, personalised per recipient in the bytes.

Rendering a digest (two Jinja templates, CSS inlining, MIME encoding) costs milliseconds; a
list has thousands of recipients who differ only in a few fields. So `render_variant` renders
once with a placeholder for each personal field, encodes the whole message, and cuts the bytes
at the placeholders; `Variant.personalise` joins the pieces with each recipient's values. It
calls neither Jinja nor the email package: a handful of string operations per recipient.
`Copies` does the same for the many recipients of one send, with what they share prepared
once, and gives each copy in SMTP's DATA form too (dot-stuffed), so that the mailer does not
scan every 25 KB copy for lines that start with a dot.

Placeholders and transfer encoding
----------------------------------
Both parts are quoted-printable UTF-8, so the message is 7-bit clean: no server needs
8BITMIME, and no line can exceed the 998-octet limit however long a summary or an inlined
`style` attribute is (8bit would need the HTML re-wrapped, which is unsafe inside attributes
and `<pre>`). QP has rules that a blind byte substitution could break (76-column lines, `=`
escapes, soft line breaks), so substitution is never blind:

- The templates see placeholders such as `__<20 random digits>_unsubscribe__`: ASCII letters,
  digits and underscores, which autoescaping and css-inline leave alone and which no release
  text can contain by chance (the digits are drawn afresh for each render). A template that
  alters one (a filter on it) is refused, as is one without an unsubscribe link.
- Each part is cut at its placeholders before QP encoding; each piece is encoded on its own
  and every personal value is set on lines of its own, after and before a soft line break.
  So each value starts in column 0 and is wrapped at 75 columns with soft breaks by
  `_qp_value`, which never splits an `=3D` escape.
- Personal values are ASCII without spaces before they are placed: URLs are percent-quoted
  (and HTML-escaped in the HTML part), addresses must be plain ASCII, and the To display
  name is quoted or RFC 2047-encoded. In QP such text needs only `=` escaped.

The prepared bytes therefore hold no placeholder text at all: `Variant` keeps the static
pieces and the names of the slots between them (`prepared` shows them with `${slot}` marks).
The multipart boundary starts with `=_`, which QP text can never contain, and is derived from
the content so that a render is reproducible byte for byte.

Header values are built here, not by the email package, so that the same code serves render
time and personalisation: names, subjects and titles are folded to one line (CR, LF, NUL and
every other control character become spaces) before they are quoted or encoded, so no header
can carry a line break of its own.
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email import quoprimime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin
from zoneinfo import ZoneInfo

import css_inline
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    pass_context,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from syndicate import tokens, urls
from syndicate.addresses import Mailbox
from syndicate.config import Config, Site
from syndicate.digest.compile import Section
from syndicate.errors import ConfigError
from syndicate.files import display
from syndicate.model import Kind, Release
from syndicate.pages import KIND_LABELS, MONTHS
from syndicate.smtpwire import message_data
from syndicate.text import SLUG

__all__ = [
    "Copies",
    "DigestContent",
    "Recipient",
    "Section",
    "Variant",
    "check_templates",
    "render_variant",
    "signed_recipient",
]

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "email"
UNSUBSCRIBE_PATH = "unsubscribe/"  # the web app's routes for the links' tokens
MANAGE_PATH = "preferences/"
PREHEADER_LENGTH = 140
MAX_URL = 900  # a List-Unsubscribe line stays far below 998 octets

_TEMPLATE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")
_SPACES = re.compile(r"\s+")
_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9.-]{1,253}")
_MESSAGE_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_QP_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_URL_SAFE = ":/?#[]@!$&'()*+,;=%-._~"
_TOKEN = re.compile(r"[A-Za-z0-9_-]*")  # what quoting, HTML escaping and QP leave alone
_HTML_SPECIAL = re.compile("[&<>\"']")
_FIELDS = ("address", "unsubscribe", "manage")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CRLF = "\r\n"
_SOFT_BREAK = b"=\r\n"


@dataclass(frozen=True, slots=True)
class DigestContent:
    """What one variant of a digest shows: new releases grouped in sections (each release
    in one section), and corrections of releases sent before."""

    list_slug: str
    list_title: str
    period: datetime
    sections: tuple[Section, ...]
    corrections: tuple[Release, ...] = ()

    @property
    def releases(self) -> tuple[Release, ...]:
        """Every new release, each once, in section order."""
        seen: set[str] = set()
        result = []
        for section in self.sections:
            for release in section.releases:
                if release.id not in seen:
                    seen.add(release.id)
                    result.append(release)
        return tuple(result)


@dataclass(frozen=True, slots=True)
class Recipient:
    """One copy's personal fields. The URLs are the recipient's own signed links."""

    address: str
    name: str
    unsubscribe_url: str
    manage_url: str


@dataclass(frozen=True, slots=True)
class _Placeholders:
    """What the body templates see as `recipient`: stand-ins for the personal fields."""

    address: str
    unsubscribe_url: str
    manage_url: str


@dataclass(frozen=True, slots=True)
class _ListView:
    slug: str
    title: str


@dataclass(frozen=True, slots=True)
class Variant:
    """A rendered digest: static byte pieces with a named slot between each two.

    `pieces[0] + value(slots[0]) + pieces[1] + … + pieces[-1]` is a message; slots are the
    header fields "to", "date", "message-id", "unsubscribe" (the List-Unsubscribe URL), and
    "{part}:{field}" for part text or html and field address, unsubscribe or manage.
    """

    list_slug: str
    subject: str
    pieces: tuple[bytes, ...]
    slots: tuple[str, ...]
    domain: str
    timezone: str

    @property
    def prepared(self) -> bytes:
        """The message with `${slot}` in place of each personal value, for inspection."""
        marks = [f"${{{slot}}}".encode() for slot in self.slots]
        return b"".join(p for pair in zip(self.pieces, [*marks, b""], strict=True) for p in pair)

    def personalise(self, recipient: Recipient, message_id: str, date: datetime) -> bytes:
        """This recipient's copy, sent at `date` (shown in the site's time zone), with
        Message-ID `<{message_id}@{domain}>`. `message_id` is the part before the `@`: keep it
        stable per delivery so a retried send carries the same id. Raises ValueError for an
        address, URL or id that cannot be written safely into a header. (For many copies,
        make one `Copies` and call its `message` or `both`: the same bytes, made faster.)"""
        return Copies(self, date).message(recipient, message_id)


class Copies:
    """Recipients' copies of one variant sent at one date. `message` returns a copy's bytes;
    `both` returns them and the same bytes in DATA form (what `smtpwire.message_data` makes of
    them: dot-stuffed and terminated), joined from pieces prepared once, so that no copy is
    scanned whole (scanning 25 KB for dots costs more than personalising it).

    Everything that is the same in every copy is prepared once: the static pieces in both
    forms, the Date header, and the links' prefixes (a signed link is `{prefix}{token}`, and a
    token is URL-safe base64, which quoting, HTML escaping and quoted-printable leave alone).

    The DATA form is exact because every piece and every value is made of CRLF lines (no bare
    CR or LF), the message ends with a CRLF, and no value is empty or ends a line: a line can
    only start inside a piece, or with a value that follows a piece ending in LF, so
    dot-stuffing each on its own is dot-stuffing the whole. A variant whose pieces are not
    like that (none made by `render_variant` is) gets its DATA form the slow way."""

    __slots__ = ("_date", "_line_start", "_links", "_wire", "variant")

    def __init__(self, variant: Variant, date: datetime) -> None:
        self.variant = variant
        self._date = _date_header(date, ZoneInfo(variant.timezone)).encode()
        self._links: dict[str, tuple[str, str]] = {}  # link prefix → (quoted, HTML-escaped)
        self._wire: tuple[bytes, ...] | None = None  # the pieces in DATA form, once asked
        self._line_start: tuple[bool, ...] = ()

    def message(self, recipient: Recipient, message_id: str) -> bytes:
        """This recipient's copy (see `Variant.personalise`)."""
        return b"".join(_interleave(self.variant.pieces, self._values(recipient, message_id)))

    def both(self, recipient: Recipient, message_id: str) -> tuple[bytes, bytes]:
        """(this recipient's copy, the same in DATA form)."""
        values = self._values(recipient, message_id)
        data = b"".join(_interleave(self.variant.pieces, values))
        wire = self._wire if self._wire is not None else self._prepare_wire()
        if not wire:
            return data, message_data(data)
        stuffed = [
            _dot_stuffed(value, start)
            if b"\r\n." in value or (start and value[:1] == b".")
            else value
            for value, start in zip(values, self._line_start, strict=True)
        ]
        return data, b"".join(_interleave(wire, stuffed))

    def _prepare_wire(self) -> tuple[bytes, ...]:
        """The static pieces in DATA form; () when the variant's pieces are not CRLF lines."""
        pieces = self.variant.pieces
        if not (pieces[-1].endswith(b"\r\n") and all(map(_crlf_lines, pieces))):
            self._wire = ()
            return ()
        # A slot starts a line when the piece before it ends one (or it starts the message).
        self._line_start = tuple(
            piece.endswith(b"\n") or (index == 0 and not piece)
            for index, piece in enumerate(pieces[:-1])
        )
        wire = [_dot_stuffed(piece, index == 0) for index, piece in enumerate(pieces)]
        wire[-1] += b".\r\n"
        self._wire = tuple(wire)
        return self._wire

    def _values(self, recipient: Recipient, message_id: str) -> list[bytes]:
        """The personal values, in the order of the variant's slots."""
        address = _plain_address(recipient.address, "recipient address")
        unsubscribe, unsubscribe_html = self._url(recipient.unsubscribe_url, "unsubscribe URL")
        manage, manage_html = self._url(recipient.manage_url, "manage URL")
        if len(message_id) > 200 or not _MESSAGE_ID.fullmatch(message_id):
            raise ValueError(f"message id {message_id!r} must be dot-atom text (the part before @)")
        name = recipient.name
        to = _mailbox(len("To: "), name, address) if name else address
        text_address = _qp_value(address)
        text_unsubscribe = _qp_value(unsubscribe)
        text_manage = _qp_value(manage)
        # The HTML part's values are the same text unless escaping changed something.
        found = {
            "to": to.encode(),
            "date": self._date,
            "message-id": f"<{message_id}@{self.variant.domain}>".encode(),
            "unsubscribe": unsubscribe.encode(),
            "text:address": text_address,
            "html:address": (
                _qp_value(html.escape(address)) if _HTML_SPECIAL.search(address) else text_address
            ),
            "text:unsubscribe": text_unsubscribe,
            "html:unsubscribe": (
                text_unsubscribe if unsubscribe_html is unsubscribe else _qp_value(unsubscribe_html)
            ),
            "text:manage": text_manage,
            "html:manage": text_manage if manage_html is manage else _qp_value(manage_html),
        }
        return [found[slot] for slot in self.variant.slots]

    def _url(self, url: str, what: str) -> tuple[str, str]:
        """The URL percent-quoted (as _safe_url does), and that HTML-escaped."""
        cut = url.rfind("/") + 1
        token = url[cut:]
        if not _TOKEN.fullmatch(token):
            quoted = _safe_url(url, what)
            return quoted, html.escape(quoted)
        prefix = url[:cut]
        known = self._links.get(prefix)
        if known is None:
            quoted = quote(prefix, safe=_URL_SAFE)
            if not quoted.startswith(("https://", "http://")):
                raise _bad_url(what)
            escaped = html.escape(quoted)
            known = self._links[prefix] = (quoted, quoted if escaped == quoted else escaped)
        quoted, escaped = known
        if len(quoted) + len(token) > MAX_URL:
            raise _bad_url(what)
        url = quoted + token
        return url, url if escaped is quoted else escaped + token


def _interleave(pieces: tuple[bytes, ...], values: list[bytes]) -> list[bytes]:
    """pieces[0], values[0], pieces[1], …, pieces[-1]."""
    out = [pieces[0]] * (2 * len(pieces) - 1)
    out[1::2] = values
    out[2::2] = pieces[1:]
    return out


def _crlf_lines(piece: bytes) -> bool:
    """Every CR and LF in `piece` is part of a CRLF."""
    pairs = piece.count(b"\r\n")
    return piece.count(b"\r") == pairs == piece.count(b"\n")


def _dot_stuffed(piece: bytes, line_start: bool) -> bytes:
    """A line that starts with "." gets a second one (RFC 5321 4.5.2); `line_start`: the piece
    starts a line."""
    if b"\r\n." in piece:
        piece = piece.replace(b"\r\n.", b"\r\n..")
    if line_start and piece[:1] == b".":
        piece = b"." + piece
    return piece


def signed_recipient(
    config: Config, secret: str, address: str, name: str, list_slug: str, *, issued: datetime
) -> Recipient:
    """A recipient whose links carry tokens signed with `secret` (the current signing secret:
    `mail.secret`, or the one the service generated and stored) for this address and list:
    `{base_url}/unsubscribe/{token}` (also the RFC 8058 one-click POST target) and
    `{base_url}/preferences/{token}`. They never expire; rotating the secret revokes them.
    Pass the digest's period as `issued`, so that a copy made again after a crash is the
    same bytes."""

    def link(path: str, purpose: str) -> str:
        token = tokens.sign(secret, purpose, address, list_slug, issued=issued, expires=None)
        return f"{config.site.base_url}/{path}{token}"

    unsubscribe = link(UNSUBSCRIBE_PATH, "unsubscribe")
    return Recipient(address, name, unsubscribe, link(MANAGE_PATH, "manage"))


def render_variant(
    content: DigestContent,
    config: Config,
    *,
    subject_template: str,
    template: str = "digest",
    templates: Path = TEMPLATES,
) -> Variant:
    """Render `content` once, as every recipient of this variant will get it, from
    `{template}.html.j2` and `{template}.txt.j2` in the folder `templates`."""
    if not SLUG.fullmatch(content.list_slug):
        raise ValueError(f"list slug {content.list_slug!r} is not a slug")
    if content.period.tzinfo is None or content.period.utcoffset() is None:
        raise ValueError("the period of a digest must be a timezone-aware datetime")
    if not _TEMPLATE_NAME.fullmatch(template):
        raise ConfigError(
            f"list {content.list_slug}: template {template!r} must be a name such as 'digest' "
            f"(files {template}.html.j2 and {template}.txt.j2 in {templates})"
        )
    site = config.site
    domain = urls.domain(site.base_url)
    nonce = "".join(str(secrets.randbelow(10)) for _ in range(20))
    placeholders = {field: f"__{nonce}_{field}__" for field in _FIELDS}
    list_view = _ListView(content.list_slug, content.list_title)
    releases = content.releases
    context: dict[str, Any] = {
        "site": site,
        "list": list_view,
        "period": content.period,
        "sections": content.sections,
        "corrections": content.corrections,
        "releases": releases,
        "preheader": _preheader(content),
        "recipient": _Placeholders(
            placeholders["address"], placeholders["unsubscribe"], placeholders["manage"]
        ),
    }
    text = _render(templates, f"{template}.txt.j2", context, content.list_slug)
    page = _render(templates, f"{template}.html.j2", context, content.list_slug)
    page = _inliner().inline(page)
    subject = _subject(_sandbox(), subject_template, list_view, releases, content, config.site)
    bodies = [
        ("text", "text/plain", _cut(text, nonce, f"{template}.txt.j2")),
        ("html", "text/html", _cut(page, nonce, f"{template}.html.j2")),
    ]
    encoded = [(kind, _qp_body(part, pieces)) for part, kind, pieces in bodies]
    boundary = "=_" + _boundary([p for _, body in encoded for p in body])
    message = _head(config, content, subject, domain, boundary)
    for kind, body in encoded:
        message.append(
            f"--{boundary}\r\n"
            f'Content-Type: {kind}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n"
            "\r\n".encode()
        )
        message += [*body, b"\r\n"]
    message.append(f"--{boundary}--\r\n".encode())
    return _variant(content.list_slug, subject, message, domain, site.timezone)


# --- the body -------------------------------------------------------------------------------


def _render(templates: Path, name: str, context: Mapping[str, Any], list_slug: str) -> str:
    try:
        rendered = _environment(templates).get_template(name).render(context)
    except TemplateNotFound:
        raise ConfigError(f"list {list_slug}: no template {templates / name}") from None
    except TemplateError as exc:
        raise ConfigError(f"list {list_slug}: template {name}: {exc}") from None
    return rendered.replace("\r\n", "\n").replace("\r", "\n")


def _cut(rendered: str, nonce: str, name: str) -> list[str]:
    """[text, field, text, field, …, text]: the rendered part cut at its placeholders."""
    pieces = re.split(f"__{nonce}_({'|'.join(_FIELDS)})__", rendered)
    fields = pieces[1::2]
    if rendered.count(nonce) != len(fields):
        raise ConfigError(
            f"template {name} alters a recipient field; write {{{{ recipient.address }}}}, "
            "{{ recipient.unsubscribe_url }} and {{ recipient.manage_url }} without filters"
        )
    if "unsubscribe" not in fields:
        raise ConfigError(f"template {name} must show {{{{ recipient.unsubscribe_url }}}}")
    return pieces


def _qp_body(part: str, pieces: list[str]) -> list[bytes | str]:
    """Quoted-printable pieces and slots; each slot's value sits on lines of its own."""
    out: list[bytes | str] = []
    at_line_start = True
    for index, piece in enumerate(pieces):
        if index % 2:
            if not at_line_start:
                out.append(_SOFT_BREAK)
            out.append(f"{part}:{piece}")
            at_line_start = False
            continue
        encoded = quoprimime.body_encode(piece.encode().decode("latin-1"), 75, _CRLF).encode()
        if encoded and not at_line_start and not encoded.startswith(b"\r\n"):
            out.append(_SOFT_BREAK)
        out.append(encoded)
        at_line_start = encoded.endswith(b"\r\n") or (not encoded and at_line_start)
    return out


def _qp_value(value: str) -> bytes:
    """Printable ASCII without spaces, QP-escaped and wrapped at 75 columns, never inside
    an `=3D` escape; the caller puts it at the start of a line and ends that line."""
    escaped = value.replace("=", "=3D") if "=" in value else value
    if len(escaped) <= 75:
        return escaped.encode()
    lines = []
    start = 0
    while len(escaped) - start > 75:
        end = start + 75
        cut = escaped.rfind("=", end - 2, end)
        if cut != -1:
            end = cut
        lines.append(escaped[start:end])
        start = end
    lines.append(escaped[start:])
    return "=\r\n".join(lines).encode()


def _preheader(content: DigestContent) -> str:
    """The line mail clients show after the subject: the first titles."""
    titles = [_one_line(r.title) for r in content.releases or content.corrections]
    return textwrap.shorten(" · ".join(titles), PREHEADER_LENGTH, placeholder=" …")


@cache
def _inliner() -> css_inline.CSSInliner:
    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@cache
def _environment(templates: Path) -> Environment:
    env = Environment(
        loader=FileSystemLoader(templates),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2",), default_for_string=False, default=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    return _with_helpers(env)


def _with_helpers(env: Environment) -> Environment:
    """What body and subject templates both see besides the digest: labels and filters."""
    env.globals.update(kind_labels=KIND_LABELS, default_kind=Kind.PRESS_RELEASE)
    env.filters.update(date=_date, datetime=_datetime, absolute=_absolute, wrap=_wrap)
    return env


class _Sandbox(SandboxedEnvironment):
    """Jinja's sandbox, which also refuses to build huge values with '*' and '**'."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "*" and _repeats(left, right) + _repeats(right, left) > 10_000:
            raise SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


def _repeats(value: Any, times: Any) -> int:
    """The length `value * times` would have, for a sequence and a count; else 0."""
    if isinstance(value, str | bytes | list | tuple) and isinstance(times, int):
        return len(value) * times
    return 0


@cache
def _sandbox() -> Environment:
    """For subject templates, which come from the config file rather than the templates
    folder: the body's filters, and no way to reach Python's internals
    ('{{ ''.__class__.__mro__ }}' raises SecurityError instead of walking them)."""
    return _with_helpers(_Sandbox(undefined=StrictUndefined, auto_reload=False))


@lru_cache(maxsize=64)
def _subject_template(env: Environment, source: str) -> Template:
    return env.from_string(source)


def _subject(
    env: Environment,
    source: str,
    list_view: _ListView,
    releases: tuple[Release, ...],
    content: DigestContent,
    site: Site,
) -> str:
    try:
        subject = _subject_template(env, source).render(
            site=site,  # the date filters read the site's time zone
            list=list_view,
            releases=releases,
            corrections=content.corrections,
            period=content.period,
        )
    except Exception as exc:  # the admin's template: 1/0 is as much a mistake as a typo
        raise ConfigError(f"lists.{content.list_slug}.subject: {exc}") from None
    return _one_line(subject) or _one_line(content.list_title)


def _site_tz(context: Context) -> ZoneInfo:
    site: Site = context["site"]
    return site.tz


@pass_context
def _date(context: Context, moment: datetime) -> str:
    local = moment.astimezone(_site_tz(context))
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}"


@pass_context
def _datetime(context: Context, moment: datetime) -> str:
    """'20 November 2026, 10:00 UTC+3', as on the public pages."""
    local = moment.astimezone(_site_tz(context))
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    hours, rest = divmod(abs(minutes), 60)
    zone = f"UTC{'+' if minutes > 0 else '-'}{hours}{f':{rest:02}' if rest else ''}"
    return f"{_date(context, moment)}, {local:%H:%M} {zone if minutes else 'UTC'}"


@pass_context
def _absolute(context: Context, url: str) -> str:
    site: Site = context["site"]
    return urljoin(site.base_url + "/", url)


def _wrap(value: str, width: int = 72, indent: str = "") -> str:
    """Plain-text paragraphs: wrapped, indented, long words (URLs) never broken."""
    return textwrap.fill(
        _SPACES.sub(" ", value).strip(),
        width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


# --- the header -----------------------------------------------------------------------------


def _sender(config: Config) -> Mailbox:
    sender = config.mail.sender
    _plain_address(sender.address, "mail.from", ConfigError)
    return sender


def _head(
    config: Config, content: DigestContent, subject: str, domain: str, boundary: str
) -> list[bytes | str]:
    """The message header: static bytes and the slots "to", "date", "message-id" and
    "unsubscribe"."""
    sender = _sender(config)
    lines = [f"From: {_mailbox(len('From: '), sender.name, sender.address)}"]
    reply_to = config.mail.reply_to
    if reply_to is not None:
        _plain_address(reply_to.address, "mail.reply_to", ConfigError)
        lines.append(f"Reply-To: {_mailbox(len('Reply-To: '), reply_to.name, reply_to.address)}")
    list_id = _mailbox(len("List-Id: "), content.list_title, f"{content.list_slug}.{domain}")
    before_to = "".join(line + _CRLF for line in lines)
    return [
        f"{before_to}To: ".encode(),
        "to",
        f"\r\nSubject: {_unstructured(len('Subject: '), subject)}\r\nDate: ".encode(),
        "date",
        b"\r\nMessage-ID: ",
        "message-id",
        f"\r\nList-Id: {list_id}\r\nList-Unsubscribe: <".encode(),
        "unsubscribe",
        # Only the one-click URL (RFC 8058): a mailto: here would promise a mailbox that
        # nothing reads.
        ">\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        "Precedence: bulk\r\n"
        "Auto-Submitted: auto-generated\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'
        "\r\n".encode(),
    ]


def _one_line(value: str) -> str:
    """CR, LF, NUL and every other control character become spaces; runs of white space one."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()


def _mailbox(column: int, name: str, address: str) -> str:
    """`"Name" <address>`, the name quoted, or RFC 2047-encoded when it is not ASCII or too
    long for one line; folded before `<address>` when the line would pass 78 columns."""
    name = _one_line(name)
    if not name:
        return f"<{address}>" if "@" not in address else address
    if name.isascii() and "=?" not in name and column + len(name) + len(address) + 5 <= 78:
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" <{address}>'
    phrase = "\r\n ".join(_encoded_words(name, column))
    last = len(phrase.rpartition("\n")[2]) + (column if "\n" not in phrase else 0)
    separator = "\r\n " if last + len(address) + 3 > 78 else " "
    return f"{phrase}{separator}<{address}>"


def _unstructured(column: int, text: str) -> str:
    """A Subject value: plain and folded at spaces when ASCII, else RFC 2047 encoded-words."""
    words = text.split(" ")
    if not text.isascii() or "=?" in text or max(map(len, words)) > 900:
        return "\r\n ".join(_encoded_words(text, column))
    out = [words[0]]
    width = column + len(words[0])
    for word in words[1:]:
        if width + 1 + len(word) > 78:
            out.append("\r\n " + word)
            width = 1 + len(word)
        else:
            out.append(" " + word)
            width += 1 + len(word)
    return "".join(out)


def _encoded_words(text: str, column: int) -> list[str]:
    """RFC 2047 'Q' encoded-words of whole characters; the first fits after `column`, the rest
    on continuation lines; no line passes 76 columns.

    A word ends after a space where it can (the space encoded at its end), and is split
    inside a word only when that word alone is too long: decoders disagree on the space
    between adjacent encoded-words in a display name (RFC 2047 drops it, Python's parser
    keeps it), and this way both read the words whole."""
    words: list[str] = []
    budget = max(76 - column - 12, 12)
    current: list[str] = []
    size = 0
    for char in text:
        if char == " ":
            encoded = "_"
        else:
            encoded = "".join(chr(b) if b in _QP_SAFE else f"={b:02X}" for b in char.encode())
        if current and size + len(encoded) > budget:
            cut = len(current) - current[::-1].index("_") if "_" in current else len(current)
            words.append(f"=?utf-8?q?{''.join(current[:cut])}?=")
            current, budget = current[cut:], 76 - 1 - 12
            size = sum(map(len, current))
        current.append(encoded)
        size += len(encoded)
    words.append(f"=?utf-8?q?{''.join(current)}?=")
    return words


def _plain_address(address: str, what: str, error: Callable[[str], Exception] = ValueError) -> str:
    """An address that can go into a header and a URL as it is: ASCII, no spaces or quotes."""
    if not _ADDRESS.fullmatch(address):
        raise error(
            f"{what} {address!r} cannot be written into a header: use a plain ASCII address "
            "(internationalised addresses need SMTPUTF8, which is not supported)"
        )
    return address


def _safe_url(url: str, what: str) -> str:
    """Percent-quoted: printable ASCII without spaces, quotes or angle brackets."""
    quoted = quote(url, safe=_URL_SAFE)
    if not quoted.startswith(("https://", "http://")) or len(quoted) > MAX_URL:
        raise _bad_url(what)
    return quoted


def _bad_url(what: str) -> ValueError:
    return ValueError(f"{what} must be an absolute http(s) URL under {MAX_URL} characters")


def _date_header(moment: datetime, zone: ZoneInfo) -> str:
    """RFC 5322 date-time in the site's zone: 'Mon, 30 Nov 2026 08:00:00 +0300'."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the Date of a message must be a timezone-aware datetime")
    local = moment.astimezone(zone)
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    hours, rest = divmod(abs(minutes), 60)
    return (
        f"{_DAYS[local.weekday()]}, {local.day:02d} {_MONTHS[local.month - 1]} {local.year:04d} "
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d} "
        f"{'-' if minutes < 0 else '+'}{hours:02d}{rest:02d}"
    )


def _boundary(pieces: list[bytes | str]) -> str:
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(piece if isinstance(piece, bytes) else f"\0{piece}\0".encode())
    return digest.hexdigest()[:32]


def _variant(
    list_slug: str, subject: str, message: list[bytes | str], domain: str, timezone: str
) -> Variant:
    """Merge adjacent static bytes: the pieces alternate with the slots."""
    pieces: list[bytes] = [b""]
    slots: list[str] = []
    for item in message:
        if isinstance(item, bytes):
            pieces[-1] += item
        else:
            slots.append(item)
            pieces.append(b"")
    return Variant(list_slug, subject, tuple(pieces), tuple(slots), domain, timezone)


def check_templates(config: Config, templates: Path = TEMPLATES) -> list[str]:
    """For `syndicate check`: every list's templates exist and compile, and its subject
    renders (in the sandbox, for a digest of one release). One `FILE:LINE: field: message`
    line per problem."""
    problems = []
    for slug, mailing_list in config.lists.items():
        missing = []
        for suffix in ("html.j2", "txt.j2"):
            name = f"{mailing_list.template}.{suffix}"
            try:
                _environment(templates).get_template(name)
            except TemplateNotFound:
                missing.append(name)
            except TemplateSyntaxError as exc:
                problems.append(
                    f"{display(templates / name)}:{exc.lineno or 1}: template: "
                    f"{_one_line(exc.message or 'syntax error')} (lists.{slug}.template)"
                )
        if missing:
            problems.append(
                f"{config.where('lists', slug, 'template')}: no {' nor '.join(missing)} "
                f"in {display(templates)}"
            )
        problem = _subject_problem(config, slug, datetime.now(UTC))
        if problem is not None:
            problems.append(f"{config.where('lists', slug, 'subject')}: {problem}")
    return problems


def _subject_problem(config: Config, slug: str, now: datetime) -> str | None:
    """Why the list's subject cannot be rendered, tried on a digest of one sample release."""
    mailing_list = config.lists[slug]
    sample = Release(
        id="sample",
        title="Sample release",
        published=now,
        url=f"{config.site.base_url}/",
        lang=config.site.language,
    )
    content = DigestContent(slug, mailing_list.title, now, (Section("all", "All", (sample,)),))
    try:
        _subject(
            _sandbox(),
            mailing_list.subject,
            _ListView(slug, mailing_list.title),
            content.releases,
            content,
            config.site,
        )
    except ConfigError as exc:
        return _one_line(str(exc).removeprefix(f"lists.{slug}.subject: "))
    return None
