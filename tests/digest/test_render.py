"""Digest rendering: the message as bytes (golden files), its MIME structure and headers, what
each part shows, escaping, header injection, and personalisation that is cheap by construction
(it calls neither Jinja nor the email package) and changes only the personal fields.

Golden files: `tests/digest/golden/weekly.eml` is one recipient's copy, byte for byte;
`weekly.txt` and `weekly.html` are its two parts decoded, for reading a change in review.
After an intended change to the templates or the renderer, regenerate them with

    SYNDICATE_UPDATE_GOLDEN=1 pytest tests/digest/test_render.py

and read the diff. A Jinja or css-inline upgrade may change them too.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate import tokens
from syndicate.config import Config
from syndicate.digest.render import (
    Copies,
    DigestContent,
    Recipient,
    Section,
    Variant,
    render_variant,
    signed_recipient,
)
from syndicate.errors import ConfigError
from syndicate.model import Kind, Release
from syndicate.smtpwire import message_data

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("SYNDICATE_UPDATE_GOLDEN") == "1"
BASE = "https://press.example.org/news"
SECRET = "test-secret-not-for-production"
ISSUED = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
PERIOD = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # 08:00 in Istanbul
SENT = datetime(2026, 11, 30, 5, 0, 7, tzinfo=UTC)
SUBJECT = "{{ list.title }}: {{ releases|length }} new releases"
T0 = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
HEADERS = [
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Precedence",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
]


def make_config(**mail: Any) -> Config:
    return Config.model_validate(
        {
            "site": {
                "title": "IOM Türkiye",
                "base_url": BASE,
                "timezone": "Europe/Istanbul",
                "rights": "© IOM Türkiye",
            },
            "mail": {
                "from": "IOM Türkiye Press <press@example.org>",
                "reply_to": "Press Desk <desk@press.example.org>",
                **mail,
            },
        }
    )


def release(rid: str, title: str, *, hours: int = 0, **fields: Any) -> Release:
    return Release(
        id=rid,
        title=title,
        published=T0 + timedelta(hours=hours),
        url=fields.pop("url", f"{BASE}/releases/{rid}/"),
        lang=fields.pop("lang", "en"),
        **fields,
    )


def sample(**changes: Any) -> DigestContent:
    istanbul = release(
        "gocmen-kacakciligi",
        "Göçmen kaçakçılığına karşı İstanbul'da ortak operasyon",
        lang="tr",
        dateline="İstanbul",
        summary="Türkiye'de düzensiz göçle mücadele kapsamında 12 şüpheli gözaltına alındı; "
        "IOM, mağdurlara psikososyal destek sağlıyor.",
    )
    tricky = release(
        "tricky",
        "Shelters & schools <script>alert('x')</script> reopen",
        hours=2,
        summary="Families return to Hatay & Adıyaman; <b>not bold</b>.",
    )
    statement = release(
        "statement",
        "Statement on World Day against Trafficking",
        hours=4,
        kind=Kind.STATEMENT,
        dateline="Ankara",
    )
    corrected = release(
        "figures",
        "Corrected: 2025 migration figures",
        hours=-100,
        updated=datetime(2026, 11, 27, 14, 15, tzinfo=UTC),
        summary="Figures for Gaziantep were revised.",
    )
    content = DigestContent(
        list_slug="weekly",
        list_title="Weekly press digest",
        period=PERIOD,
        sections=(
            Section("trafficking", "Human trafficking", (istanbul, statement)),
            Section("turkiye", "Türkiye", (tricky,)),
        ),
        corrections=(corrected,),
    )
    return replace(content, **changes)


def recipient(address: str = "desk@example.com", name: str = "Müge Yılmaz") -> Recipient:
    def link(path: str, purpose: str) -> str:
        token = tokens.sign(SECRET, purpose, address, "weekly", issued=ISSUED, expires=None)
        return f"{BASE}/{path}/{token}"

    return Recipient(
        address, name, link("unsubscribe", "unsubscribe"), link("preferences", "manage")
    )


def render(
    content: DigestContent | None = None, config: Config | None = None, **kw: Any
) -> Variant:
    kw.setdefault("subject_template", SUBJECT)
    return render_variant(content or sample(), config or make_config(), **kw)


def send(variant: Variant, to: Recipient | None = None, message_id: str = "d7.r42") -> bytes:
    return variant.personalise(to or recipient(), message_id, SENT)


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(raw: bytes) -> tuple[str, str]:
    """(text, html) decoded."""
    message = parse(raw)
    text, page = message.iter_parts()
    assert isinstance(text, EmailMessage) and isinstance(page, EmailMessage)
    return decoded(text), decoded(page)


def decoded(part: EmailMessage) -> str:
    return str(part.get_content()).replace("\r\n", "\n")


def header_block(raw: bytes) -> str:
    return raw.partition(b"\r\n\r\n")[0].decode("ascii")


def header_lines(raw: bytes, name: str) -> list[str]:
    """The raw lines of one header field: its first line and its continuation lines."""
    lines = header_block(raw).split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}: "))
    end = start + 1
    while end < len(lines) and lines[end].startswith(" "):
        end += 1
    return lines[start:end]


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value for name, value in attrs if name == "href" and value is not None]


def hrefs(page: str) -> list[str]:
    parser = Links()
    parser.feed(page)
    return parser.hrefs


# --- golden files ---------------------------------------------------------------------------


def test_the_rendered_message_matches_the_golden_files_byte_for_byte() -> None:
    raw = send(render())
    text, page = parts(raw)
    expected = {"weekly.eml": raw, "weekly.txt": text.encode(), "weekly.html": page.encode()}
    for name, data in expected.items():
        path = GOLDEN / name
        if UPDATE:
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
        assert path.read_bytes() == data, f"{name} differs; see the module docstring"


def test_a_render_is_reproducible_although_its_placeholders_are_random() -> None:
    assert render().pieces == render().pieces


# --- structure and headers ------------------------------------------------------------------


def test_the_message_is_multipart_alternative_with_text_then_html() -> None:
    message = parse(send(render()))
    assert message.get_content_type() == "multipart/alternative"
    assert not message.defects
    children = list(message.iter_parts())
    assert [p.get_content_type() for p in children] == ["text/plain", "text/html"]
    for part in children:
        assert not part.defects
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"


def test_every_header_is_present_once_with_its_value() -> None:
    to = recipient()
    message = parse(send(render(), to))
    assert [name for name, _ in message.items()] == HEADERS
    assert message["From"] == "IOM Türkiye Press <press@example.org>"
    assert message["Reply-To"] == "Press Desk <desk@press.example.org>"
    assert message["To"] == "Müge Yılmaz <desk@example.com>"
    assert message["Subject"] == "Weekly press digest: 3 new releases"
    assert message["Date"] == "Mon, 30 Nov 2026 08:00:07 +0300"
    assert message["Message-ID"] == "<d7.r42@press.example.org>"
    assert message["List-Id"] == '"Weekly press digest" <weekly.press.example.org>'
    assert message["List-Unsubscribe"] == (f"<{to.unsubscribe_url}>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Precedence"] == "bulk"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["MIME-Version"] == "1.0"


def test_there_is_no_reply_to_unless_configured() -> None:
    message = parse(send(render(config=make_config(reply_to=None))))
    assert "Reply-To" not in message


def test_the_list_unsubscribe_url_is_https_and_carries_a_valid_unsubscribe_token() -> None:
    message = parse(send(render()))
    url = str(message["List-Unsubscribe"]).split(",")[0].strip("<> ")
    assert url.startswith(f"{BASE}/unsubscribe/")
    claims = tokens.verify(url.rpartition("/")[2], [SECRET], "unsubscribe", SENT)
    assert (claims.address, claims.list_slug) == ("desk@example.com", "weekly")


def test_the_date_header_is_in_the_site_time_zone_and_any_aware_time_is_accepted() -> None:
    variant = render()
    raw = variant.personalise(recipient(), "x", datetime(2026, 12, 31, 22, 30, tzinfo=UTC))
    assert parse(raw)["Date"] == "Fri, 01 Jan 2027 01:30:00 +0300"
    with pytest.raises(ValueError, match="timezone-aware"):
        variant.personalise(recipient(), "x", datetime(2026, 12, 31, 22, 30))


def test_the_message_is_7bit_with_crlf_lines_within_the_limits() -> None:
    raw = send(render())
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    lines = raw.split(b"\r\n")
    assert max(map(len, lines)) <= 998
    long = [line for line in lines if len(line) > 78]
    assert all(line.startswith(b"List-Unsubscribe: <https://") for line in long), long


def assert_valid_quoted_printable(body: bytes) -> None:
    for line in body.split(b"\r\n"):
        assert len(line) <= 76, line
        assert not line.endswith((b" ", b"\t")), line
        assert re.fullmatch(rb"(?:[!-<>-~ \t]|=[0-9A-F]{2})*=?", line), line


def test_both_parts_are_valid_quoted_printable() -> None:
    variant = render()
    raw = send(variant, replace(recipient(), manage_url=f"{BASE}/p?a=1&b=={'x' * 300}"))
    boundary = parse(raw).get_boundary()
    assert boundary is not None
    for section in raw.split(f"--{boundary}".encode())[1:-1]:
        body = section.partition(b"\r\n\r\n")[2].removesuffix(b"\r\n")
        assert_valid_quoted_printable(body)


def test_non_ascii_subject_is_encoded_and_folded_at_76_columns() -> None:
    subject = "Haftalık bülten: {{ releases|length }} yeni basın bülteni — " + "ğüşıöç " * 12
    raw = send(render(subject_template=subject))
    folded = header_lines(raw, "Subject")
    assert len(folded) > 2
    assert all(len(line) <= 76 and "=?utf-8?q?" in line for line in folded)
    expected = "Haftalık bülten: 3 yeni basın bülteni — " + " ".join(["ğüşıöç"] * 12)
    assert parse(raw)["Subject"] == expected


def test_a_long_ascii_subject_is_folded_at_spaces_and_unfolds_unchanged() -> None:
    subject = " ".join(f"word{i}" for i in range(40))
    raw = send(render(subject_template=subject))
    assert parse(raw)["Subject"] == subject
    folded = header_lines(raw, "Subject")
    assert len(folded) > 2
    assert all(len(line) <= 78 and "=?" not in line for line in folded)


@pytest.mark.parametrize(
    ("name", "display"),
    [
        ("Müge Yılmaz", "Müge Yılmaz"),
        ("News desk", "News desk"),
        ('The "Desk", Ankara \\ Istanbul', 'The "Desk", Ankara \\ Istanbul'),
        ("=?utf-8?q?fake?=", "=?utf-8?q?fake?="),
        ("", ""),
        ("Çağlayan " * 12, ("Çağlayan " * 12).strip()),
        ("A very long English name " * 4, ("A very long English name " * 4).strip()),
    ],
)
def test_the_to_header_carries_the_name_exactly_and_one_address(name: str, display: str) -> None:
    raw = send(render(), recipient(name=name))
    message = parse(raw)
    (address,) = message["To"].addresses
    assert address.addr_spec == "desk@example.com"
    lines = header_lines(raw, "To")
    shown = address.display_name
    if len(lines) > 1:
        # Python's parser keeps the space between two encoded-words of a display name (RFC
        # 2047 drops it), so a name folded after a space reads with two spaces there.
        shown = " ".join(shown.split())
    assert shown == display
    phrase = "".join(lines).removeprefix("To: ").rpartition("<")[0].strip()
    if phrase.startswith("=?"):  # an RFC 2047 decoder reads it exactly
        assert str(make_header(decode_header(phrase))) == display
    assert all(len(line) <= 78 for line in header_block(raw).split("\r\n") if "<https" not in line)


# --- what the parts show --------------------------------------------------------------------


def test_the_text_part_is_written_text_not_stripped_html() -> None:
    text, _ = parts(send(render()))
    assert not re.search(r"<(p|h\d|a|div|table|br)\b", text)
    assert "Human trafficking\n=================" in text
    assert "* Göçmen kaçakçılığına karşı İstanbul'da ortak operasyon" in text
    assert "Shelters & schools <script>alert('x')</script> reopen" in text  # text, not HTML
    assert "  Türkiye'de düzensiz göçle mücadele" in text
    assert all(len(line) <= 78 for line in text.splitlines() if "://" not in line)


def test_both_parts_link_every_release_absolutely() -> None:
    content = sample()
    text, page = parts(send(render(content)))
    urls = [r.url for r in (*content.releases, *content.corrections)]
    for url in urls:
        assert url in text
        assert url in hrefs(page)
    assert all(urlsplit(href).scheme == "https" for href in hrefs(page))


def test_a_relative_release_url_is_made_absolute() -> None:
    relative = release("rel", "Relative", url="releases/rel/")
    content = sample(sections=(Section("turkiye", "Türkiye", (relative,)),), corrections=())
    text, page = parts(send(render(content)))
    assert f"{BASE}/releases/rel/" in hrefs(page)
    assert f"  {BASE}/releases/rel/\n" in text


def test_each_part_has_the_recipients_own_unsubscribe_and_manage_links() -> None:
    to = recipient()
    text, page = parts(send(render(), to))
    for url in (to.unsubscribe_url, to.manage_url):
        assert f"\n{url}\n" in text
        assert url in hrefs(page)
    assert "at desk@example.com." in text and "at desk@example.com.<br>" in page


def test_urls_with_query_strings_are_escaped_for_html_and_kept_for_text() -> None:
    url = f"{BASE}/preferences?token=abc&list=weekly"
    text, page = parts(send(render(), replace(recipient(), manage_url=url)))
    assert f"\n{url}\n" in text
    assert 'href="https://press.example.org/news/preferences?token=abc&amp;list=weekly"' in page
    assert url in hrefs(page)


def test_unsafe_characters_in_a_url_are_percent_quoted_everywhere() -> None:
    url = f'{BASE}/preferences/a b"<c>\r\nBcc: x@y/ğ'
    raw = send(render(), replace(recipient(), manage_url=url, unsubscribe_url=url))
    quoted = f"{BASE}/preferences/a%20b%22%3Cc%3E%0D%0ABcc:%20x@y/%C4%9F"
    text, page = parts(raw)
    assert f"\n{quoted}\n" in text and quoted in hrefs(page)
    assert parse(raw)["List-Unsubscribe"].startswith(f"<{quoted}>")


def test_titles_and_summaries_are_escaped_in_html() -> None:
    _, page = parts(send(render()))
    assert "<script>" not in page and "<b>" not in page
    assert "Shelters &amp; schools &lt;script&gt;alert('x')&lt;/script&gt; reopen" in page
    assert "Hatay &amp; Adıyaman; &lt;b&gt;not bold&lt;/b&gt;." in page


def test_css_is_inlined_and_only_media_rules_stay_in_a_style_element() -> None:
    _, page = parts(send(render()))
    assert re.search(r'<h3[^>]*style="[^"]*font-size: 17px', page)
    styles = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert all(style.strip().startswith("@media") for style in styles)


def test_a_hidden_preheader_opens_the_html_with_the_first_titles() -> None:
    _, page = parts(send(render()))
    match = re.search(r'<div class="preheader" style="([^"]*)">([^<]*)', page)
    assert match is not None
    assert "display:none" in match.group(1)
    assert match.group(2).startswith("Göçmen kaçakçılığına karşı İstanbul'da ortak operasyon · ")


def test_dates_are_shown_in_the_site_time_zone() -> None:
    late = release("late", "Late news", url=f"{BASE}/releases/late/")
    late = replace(late, published=datetime(2026, 11, 29, 21, 30, tzinfo=UTC))  # 00:30 +03
    content = sample(
        period=datetime(2026, 11, 29, 22, 0, tzinfo=UTC),
        sections=(Section("turkiye", "Türkiye", (late,)),),
    )
    text, page = parts(send(render(content)))
    assert "IOM Türkiye · 30 November 2026" in text and "29 November" not in text
    assert "  30 November 2026\n" in text
    assert "Corrected 27 November 2026, 17:15 UTC+3" in text
    assert "Corrected 27 November 2026, 17:15 UTC+3" in page


def test_corrections_have_their_own_section_after_the_new_releases() -> None:
    text, page = parts(send(render()))
    for part in (text, page):
        corrected = part.index("Corrected</h2>" if part is page else "Corrected\n=========")
        assert part.index("Corrected: 2025 migration figures") > corrected
        assert part.index("Statement on World Day") < corrected


def test_an_empty_digest_says_so() -> None:
    text, page = parts(send(render(sample(sections=(), corrections=()))))
    assert "No new releases this time." in text and "No new releases this time." in page


def test_digest_releases_lists_each_new_release_once_in_section_order() -> None:
    content = sample()
    a, b = content.sections[0].releases
    (c,) = content.sections[1].releases
    twice = replace(content, sections=(*content.sections, Section("x", "X", (a,))))
    assert twice.releases == (a, b, c)


# --- header injection -----------------------------------------------------------------------

INJECTION = "Hello\r\nBcc: evil@example.net\r\n\r\n<b>body</b>\x00"


def assert_no_injection(raw: bytes) -> None:
    head = header_block(raw)
    for line in head.split("\r\n"):
        assert line.startswith(" ") or line.split(":")[0] in HEADERS, line
    message = parse(raw)
    assert message.get_all("Bcc") is None
    assert len(message.get_all("To") or []) == 1
    assert len(message["To"].addresses) == 1
    assert [name for name, _ in message.items()] == HEADERS


def test_a_subject_template_cannot_inject_headers() -> None:
    raw = send(render(subject_template="{{ list.title }}\r\nBcc: evil@example.net\n\x00x"))
    assert_no_injection(raw)
    assert parse(raw)["Subject"] == "Weekly press digest Bcc: evil@example.net x"


def test_a_list_title_cannot_inject_headers() -> None:
    raw = send(render(sample(list_title=INJECTION)))
    assert_no_injection(raw)
    assert parse(raw)["List-Id"].startswith('"Hello Bcc: evil@example.net <b>body</b>"')


def test_a_recipient_name_cannot_inject_headers() -> None:
    for name in (INJECTION, "Müge\r\nBcc: evil@example.net", "a\nb\rc\x00d\x85e\u2028f"):
        raw = send(render(), recipient(name=name))
        assert_no_injection(raw)


@pytest.mark.parametrize(
    "address",
    [
        "desk@example.com\r\nBcc: evil@example.net",
        "desk@example.com>, evil@example.net",
        "Evil <desk@example.com>",
        "desk @example.com",
        "gülşen@example.com",
        "",
    ],
)
def test_an_address_that_cannot_be_written_safely_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="recipient address"):
        send(render(), replace(recipient(), address=address))


@pytest.mark.parametrize("message_id", ["a@b", "x\r\nBcc: e@x", "", "<x>", "a..b", "a b"])
def test_a_message_id_that_is_not_dot_atom_text_is_refused(message_id: str) -> None:
    with pytest.raises(ValueError, match="message id"):
        send(render(), message_id=message_id)


@pytest.mark.parametrize("slug", ["weekly\n", "week ly", "weekly\r\nBcc: e@x", "Weekly"])
def test_a_list_slug_that_is_not_a_slug_is_refused(slug: str) -> None:
    with pytest.raises(ValueError, match="not a slug"):
        render(sample(list_slug=slug))


def test_a_sender_address_that_needs_smtputf8_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"mail\.from"):
        render(config=make_config(**{"from": "Press <basın@örnek.org>"}))


# --- templates ------------------------------------------------------------------------------


def write_templates(folder: Path, html: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "t.html.j2").write_text(html, encoding="utf-8")
    (folder / "t.txt.j2").write_text(text, encoding="utf-8")
    return folder


def test_a_template_that_alters_a_recipient_field_is_refused(tmp_path: Path) -> None:
    ok = "{{ recipient.unsubscribe_url }}"
    folder = write_templates(tmp_path, ok, "{{ recipient.unsubscribe_url|upper }}")
    with pytest.raises(ConfigError, match="alters a recipient field"):
        render(template="t", templates=folder)
    write_templates(tmp_path, ok, "{{ recipient.address[:-1] }}" + ok)
    with pytest.raises(ConfigError, match="alters a recipient field"):
        render(template="t", templates=folder)


def test_a_template_without_an_unsubscribe_link_is_refused(tmp_path: Path) -> None:
    folder = write_templates(tmp_path, "{{ recipient.unsubscribe_url }}", "{{ list.title }}")
    with pytest.raises(ConfigError, match=r"t\.txt\.j2 must show"):
        render(template="t", templates=folder)


def test_a_minimal_template_pair_renders(tmp_path: Path) -> None:
    folder = write_templates(
        tmp_path,
        '<p><a href="{{ recipient.unsubscribe_url }}">{{ list.title }}</a></p>',
        "{{ recipient.unsubscribe_url }}{{ recipient.unsubscribe_url }}",
    )
    to = recipient()
    text, page = parts(send(render(template="t", templates=folder), to))
    assert text == to.unsubscribe_url * 2
    assert hrefs(page) == [to.unsubscribe_url]


@pytest.mark.parametrize("name", ["../site/base", "Digest", "", "a/b"])
def test_a_template_name_must_be_a_plain_name(name: str) -> None:
    with pytest.raises(ConfigError, match="must be a name"):
        render(template=name)


def test_a_missing_template_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"no template .*missing\.txt\.j2"):
        render(template="missing")


@pytest.mark.parametrize(
    ("source", "match"),
    [("{{ list.nope }}", "nope"), ("{% if %}", "subject"), ("{{ releases|nofilter }}", "nofilter")],
)
def test_subject_template_errors_are_config_errors(source: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        render(subject_template=source)


def test_an_empty_subject_falls_back_to_the_list_title() -> None:
    assert parse(send(render(subject_template="  \n ")))["Subject"] == "Weekly press digest"


# --- personalisation ------------------------------------------------------------------------


def modules_called(action: Any) -> set[str]:
    """Every module whose functions run (Python or C) while `action()` runs."""
    seen: set[str] = set()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            seen.add(str(frame.f_globals.get("__name__")))
        elif event == "c_call":
            seen.add(str(getattr(arg, "__module__", None) or type(getattr(arg, "__self__", None))))

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return seen


FORBIDDEN = ("jinja2", "email", "markupsafe", "css_inline")


def test_personalise_calls_neither_jinja_nor_the_email_package() -> None:
    variant = render()
    to = recipient()
    during_render = modules_called(render)
    assert any(m.startswith("jinja2") for m in during_render)  # the probe sees them
    assert any(m.startswith("email") for m in during_render)
    called = modules_called(lambda: variant.personalise(to, "d7.r42", SENT))
    assert not [m for m in called if m.startswith(FORBIDDEN)], called


def test_the_prepared_bytes_show_a_slot_for_each_personal_field() -> None:
    prepared = render().prepared
    for slot in ("to", "date", "message-id", "unsubscribe"):
        assert prepared.count(f"${{{slot}}}".encode()) == 1
    for field in ("address", "unsubscribe", "manage"):
        assert prepared.count(f"${{text:{field}}}".encode()) == 1
        assert prepared.count(f"${{html:{field}}}".encode()) == 1


def normalised(raw: bytes, to: Recipient) -> bytes:
    """The message with soft line breaks removed and this recipient's fields masked."""
    flat = raw.replace(b"=\r\n", b"")
    for value in (
        f'To: "{to.name}" <{to.address}>',
        to.unsubscribe_url,
        to.manage_url,
        to.unsubscribe_url.replace("=", "=3D"),
        to.manage_url.replace("=", "=3D"),
        to.address,
    ):
        flat = flat.replace(value.encode(), b"@PERSONAL@")
    return flat


def test_two_recipients_copies_differ_only_in_the_personal_fields() -> None:
    variant = render()
    first, second = recipient("desk@example.com", "Desk"), recipient("ajans@haber.com.tr", "Ajans")
    a, b = send(variant, first), send(variant, second)
    assert a != b
    assert normalised(a, first) == normalised(b, second)
    assert normalised(a, first).count(b"@PERSONAL@") == 8


def test_a_thousand_recipients_get_a_thousand_distinct_copies_with_their_own_tokens() -> None:
    variant = render()
    people = [recipient(f"reader{n}@example.com", f"Reader {n}") for n in range(1000)]
    copies = [send(variant, person, f"d7.r{n}") for n, person in enumerate(people)]
    assert len(set(copies)) == 1000
    for person, raw in zip(people, copies, strict=True):
        message = parse(raw)
        url = str(message["List-Unsubscribe"]).split(",")[0].strip("<> ")
        claims = tokens.verify(url.rpartition("/")[2], [SECRET], "unsubscribe", SENT)
        assert claims.address == person.address == message["To"].addresses[0].addr_spec
        text, page = parts(raw)
        assert person.unsubscribe_url in text and person.unsubscribe_url in hrefs(page)


def test_personal_values_never_break_a_line_limit_even_when_long() -> None:
    long_url = f"{BASE}/unsubscribe/" + "A" * 800
    to = replace(recipient(), unsubscribe_url=long_url, manage_url=long_url + "=")
    raw = send(render(), to)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    text, page = parts(raw)
    assert f"\n{long_url}\n" in text and f"\n{long_url}=\n" in text
    assert long_url in hrefs(page)


def test_signed_recipient_links_carry_tokens_for_this_address_list_and_purpose() -> None:
    to = signed_recipient(
        make_config(), SECRET, "desk@example.com", "Desk", "weekly", issued=PERIOD
    )
    assert to == recipient("desk@example.com", "Desk")  # the same links as the golden copy
    for url, path, purpose in (
        (to.unsubscribe_url, "unsubscribe", "unsubscribe"),
        (to.manage_url, "preferences", "manage"),
    ):
        head, _, token = url.rpartition("/")
        assert head == f"{BASE}/{path}"
        claims = tokens.verify(token, [SECRET], purpose, datetime(2100, 1, 1, tzinfo=UTC))
        assert (claims.address, claims.list_slug, claims.expires) == (
            "desk@example.com",
            "weekly",
            None,
        )


def test_a_naive_period_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render(sample(period=datetime(2026, 11, 30, 8, 0)))


# --- many copies: Copies makes each copy and its DATA form from prepared pieces ----------------


def dotted() -> Variant:
    """A digest whose lines start with dots here and there, in both parts."""
    content = sample(
        sections=(
            Section(
                "dots",
                "Dots",
                (
                    release(".net", ".NET migration tools", summary=".Hidden? .No: shown."),
                    release("ellipsis", "...and more", summary="Lines\n.start\n..with dots"),
                ),
            ),
        )
    )
    return render(content)


_VARIANTS = [render(), dotted()]


def test_copies_are_the_personalised_bytes_and_their_data_form() -> None:
    for variant in _VARIANTS:
        copies = Copies(variant, SENT)
        for n, person in enumerate([recipient(), recipient(".dot.first@example.com", "")]):
            data, wire = copies.both(person, f"d7.r{n}")
            assert (
                data
                == variant.personalise(person, f"d7.r{n}", SENT)
                == copies.message(person, f"d7.r{n}")
            )
            assert wire == message_data(data)
    assert b"\r\n.." in Copies(_VARIANTS[1], SENT).both(recipient(), "x")[1]  # it did stuff


_LOCAL = st.text("abcXYZ019.!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=64)
_DOMAIN = st.text("abc019.-", min_size=1, max_size=40)
_TAIL = st.one_of(
    st.text("ABCxyz019_-", max_size=120),  # a token: the prepared prefix is used
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=60),
)


@settings(max_examples=300, deadline=None)
@given(
    local=_LOCAL,
    domain=_DOMAIN,
    name=st.text(max_size=80),
    unsubscribe=_TAIL,
    manage=_TAIL,
    prefix=st.sampled_from([f"{BASE}/unsubscribe/", f"{BASE}/a&b=c/", "http://x.org/.../"]),
)
def test_the_data_form_is_exact_for_any_recipient(
    local: str, domain: str, name: str, unsubscribe: str, manage: str, prefix: str
) -> None:
    """Addresses that start with a dot or wrap at one, names that are folded or encoded, links
    with and without a token: the DATA form is always message_data of the copy."""
    person = Recipient(f"{local}@{domain}", name, prefix + unsubscribe, prefix + manage)
    for variant in _VARIANTS:
        copies = Copies(variant, SENT)
        try:
            data, wire = copies.both(person, "d7.r42")
        except ValueError:
            with pytest.raises(ValueError):
                variant.personalise(person, "d7.r42", SENT)
            continue
        assert data == variant.personalise(person, "d7.r42", SENT)
        assert wire == message_data(data)


def test_a_variant_not_made_of_crlf_lines_gets_its_data_form_the_slow_way() -> None:
    variant = render()
    pieces = (variant.pieces[0], b"bare\nline\n.dot", *variant.pieces[2:])
    odd = replace(variant, pieces=pieces)
    data, wire = Copies(odd, SENT).both(recipient(), "d7.r42")
    assert b"bare\nline" in data and wire == message_data(data)
