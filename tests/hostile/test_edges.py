"""One hostile value at a time, at the edge of the module it broke: each test is the smallest
statement of a bug the hostile corpus found (a crash, an invalid feed, a script surviving),
fixed in that module."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
import pytest

from syndicate import feeds
from syndicate.config import Config
from syndicate.digest.render import render_variant
from syndicate.errors import ConfigError, ContentError
from syndicate.ingest.exports import read_csv
from syndicate.ingest.feed import parse_feed
from syndicate.ingest.items import Problem, RawItem, Site
from syndicate.ingest.record import build_release, parse_when
from syndicate.model import Release
from syndicate.output import Snapshot
from syndicate.sanitize import sanitize_html
from syndicate.yamlfile import YamlSyntaxError, parse_yaml, shown
from tests.conftest import NOW
from tests.digest.test_render import make_config, sample
from tests.feedcheck import check_atom, check_json, check_rss
from tests.hostile.safety import header_hazards, html_hazards

pytestmark = pytest.mark.hostile

SITE = Site("https://press.example.org/news", "en", ZoneInfo("Europe/Istanbul"), NOW)
BASE = "https://press.example.org/news/releases/x/"


def rejection(**fields: Any) -> ContentError:
    with pytest.raises(ContentError) as caught:
        build_release(RawItem("x.json", 1, {"title": "T", **fields}, default_id="x"), SITE)
    return caught.value


def built(**fields: Any) -> Release:
    values = {"title": "T", "published": "2026-11-20", **fields}
    return build_release(RawItem("x.json", 1, values, default_id="x"), SITE)[0]


# --- ingest/record.py -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01"]
)
def test_a_date_with_no_utc_instant_is_rejected_not_a_crash(value: str) -> None:
    assert rejection(published=value).field == "published"
    with pytest.raises(ContentError, match="out of range"):
        parse_when(value, ZoneInfo("Europe/Istanbul"))  # --now and --since read dates so too


@pytest.mark.parametrize("field", ["published", "updated", "embargo"])
def test_a_date_before_1990_is_rejected_naming_the_field(field: str) -> None:
    error = rejection(**{"published": "2026-11-20", field: "1989-12-31T23:59:59Z"})
    assert error.field == field
    assert "before 1990" in str(error)


@pytest.mark.parametrize("field", ["title", "author", "dateline"])
def test_a_plain_text_field_holding_an_end_tag_is_rejected(field: str) -> None:
    error = rejection(published="2026-11-20", **{field: "Schools </b> reopen"})
    assert error.field == field
    assert "'</b>'" in str(error)


def test_markup_without_an_end_tag_stays_text() -> None:
    assert built(title="<script>alert(1) & co").title == "<script>alert(1) & co"


def test_urls_are_percent_encoded_where_a_uri_cannot_hold_the_character() -> None:
    release = built(
        url='https://press.example.org/a b"<>{}|\\^`',
        attachments=[{"url": "files/a b.pdf", "type": "application/pdf"}],
    )
    assert release.url == "https://press.example.org/a%20b%22%3C%3E%7B%7D%7C%5C%5E%60"
    assert release.attachments[0].url == "https://press.example.org/files/a%20b.pdf"


# --- ingest/feed.py -------------------------------------------------------------------------------

ATOM_ENTRY = """\
<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:f</id>
<updated>2026-11-20T10:00:00Z</updated>
<entry><id>urn:x:bad</id><title>Bad</title><updated>{date}</updated></entry>
<entry><id>urn:x:good</id><title>Good</title><updated>2026-11-20T10:00:00Z</updated></entry>
</feed>"""


def _feed_outcomes(date: str) -> dict[str, str]:
    out = {}
    for entry in parse_feed(ATOM_ENTRY.format(date=date).encode(), "upstream"):
        assert isinstance(entry, RawItem)
        try:
            out[entry.default_id or ""] = build_release(entry, SITE)[0].id
        except ContentError as exc:
            out[entry.default_id or ""] = str(exc)
    return out


@pytest.mark.parametrize("date", ["9999-12-31T23:59:59-14:00", "0000-01-01T00:00:00Z"])
def test_an_upstream_date_out_of_range_rejects_its_entry_not_the_whole_feed(date: str) -> None:
    outcomes = _feed_outcomes(date)
    assert outcomes["good"] == "good"
    assert outcomes["bad"].startswith("published: ")


def test_an_unreadable_upstream_date_is_rejected_not_taken_for_now() -> None:
    assert _feed_outcomes("yesterday at noon")["bad"].startswith(
        "published: cannot read 'yesterday at noon'"
    )


# --- ingest/exports.py ----------------------------------------------------------------------------


def test_a_csv_body_over_csvs_default_cell_limit_keeps_the_export(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "title", "published", "body"])
    writer.writerow(["long", "Long", "2026-11-20", "word " * 100_000])  # 500 kB
    writer.writerow(["huge", "Huge", "2026-11-20", "x" * 1_000_001])
    writer.writerow(["short", "Short", "2026-11-20", "Text."])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    outcomes = {}
    for item in read_csv(path, "export.csv"):
        assert not isinstance(item, Problem)
        try:
            outcomes[item.fields["id"]] = build_release(item, SITE)[0].id
        except ContentError as exc:
            outcomes[item.fields["id"]] = str(exc.field)
    assert outcomes == {"long": "long", "huge": "body", "short": "short"}


# --- sanitize.py ----------------------------------------------------------------------------------


def test_cite_urls_are_made_absolute_and_script_ones_dropped() -> None:
    html = sanitize_html(
        '<blockquote cite="javascript:alert(1)">a</blockquote><q cite="note b.html">b</q>', BASE
    )
    assert html == f'<blockquote>a</blockquote><q cite="{BASE}note%20b.html">b</q>'


def test_bidi_override_and_ruby_text_container_elements_go_their_text_stays() -> None:
    html = sanitize_html('<bdo dir="rtl">abc</bdo><ruby>x<rtc>y</rtc></ruby>', BASE)
    assert html == "abc<ruby>xy</ruby>"


def test_spaces_and_quotes_in_link_targets_are_percent_encoded() -> None:
    html = sanitize_html('<a href="https://x.example/a b&quot;c">l</a><img src="p q.jpg">', BASE)
    assert 'href="https://x.example/a%20b%22c"' in html
    assert f'src="{BASE}p%20q.jpg"' in html


def test_script_urls_left_as_text_can_never_be_taken_for_one() -> None:
    html = sanitize_html("<p>[x](JavaScript:alert(1)) and vbscript:y</p>", BASE)
    assert html == "<p>[x](JavaScript&#58;alert(1)) and vbscript&#58;y</p>"
    assert html_hazards(html) == []


# --- feeds.py -------------------------------------------------------------------------------------


def _feeds(config: Config, releases: list[Release]) -> dict[str, bytes]:
    snap = Snapshot(config, NOW, releases)
    return {doc.path: doc.render() for doc in feeds.documents(snap) if "/" not in doc.path[6:]}


def _release(n: int, **fields: Any) -> Release:
    values = {
        "id": f"r{n}",
        "title": f"Release {n}",
        "published": datetime(2026, 11, 20, tzinfo=UTC),
        "url": f"https://press.example.org/news/releases/r{n}/",
        "lang": "en",
        "summary": f"Summary {n}.",
        **fields,
    }
    return Release(**values)


def test_entries_published_at_one_instant_still_have_distinct_atom_updated(
    config: Config,
) -> None:
    docs = _feeds(config, [_release(n) for n in range(5)])
    assert check_atom(docs["feeds/all.atom"]) == []
    entries = feedparser.parse(docs["feeds/all.atom"]).entries
    assert sorted(e.updated for e in entries) == [
        "2026-11-20T00:00:00+00:00",
        *(f"2026-11-20T00:00:00.00000{n}+00:00" for n in range(1, 5)),
    ]


def test_a_summary_that_reads_as_html_is_sent_as_escaped_html(config: Config) -> None:
    docs = _feeds(config, [_release(1, summary="Use </b> and javascript: in text")])
    assert check_atom(docs["feeds/all.atom"]) == []
    assert check_rss(docs["feeds/all.rss"]) == []
    assert check_json(docs["feeds/all.json"]) == []


# --- yamlfile.py ----------------------------------------------------------------------------------


def test_deep_nesting_is_a_syntax_error_not_a_recursion_error() -> None:
    with pytest.raises(YamlSyntaxError, match=r"x\.yaml:2: YAML syntax error: nested more"):
        parse_yaml("a: 1\nb: " + "[" * 5000 + "]" * 5000 + "\n", "x.yaml")
    deep = "".join(f"{' ' * n}k{n}:\n" for n in range(3000)) + " " * 3000 + "v\n"
    with pytest.raises(YamlSyntaxError, match="nested more"):
        parse_yaml(deep, "x.yaml")


def test_an_alias_bomb_is_refused_at_once() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    started = time.monotonic()
    with pytest.raises(YamlSyntaxError, match=r"x\.yaml:7: .*expand to more than 1,000,000"):
        parse_yaml("\n".join(lines) + "\n", "x.yaml")
    assert time.monotonic() - started < 2


def test_values_in_messages_are_cut_short_before_they_are_walked() -> None:
    huge: list[Any] = ["x"] * 9
    for _ in range(9):
        huge = [huge] * 9
    assert shown(huge).startswith("[[[[…], […], […], […], …], ")
    assert len(shown(huge)) == len(shown("y" * 10_000)) == 80


# --- digest/render.py -----------------------------------------------------------------------------


def test_a_subject_template_cannot_reach_pythons_internals() -> None:
    with pytest.raises(ConfigError, match="unsafe"):
        render_variant(sample(), make_config(), subject_template="{{ ''.__class__.__mro__[1] }}")


@pytest.mark.parametrize("source", ["{{ 1/0 }}", "{{ 'x' * 10**9 }}", "{{ 2**100000 }}"])
def test_a_subject_that_fails_at_run_time_is_a_config_error(source: str) -> None:
    with pytest.raises(ConfigError, match=r"lists\.weekly\.subject"):
        render_variant(sample(), make_config(), subject_template=source)


def test_a_subject_may_use_the_date_filters() -> None:
    variant = render_variant(sample(), make_config(), subject_template="Digest {{ period|date }}")
    assert variant.subject == "Digest 30 November 2026"


# --- the suite's own checks see what they look for ------------------------------------------------


@pytest.mark.parametrize(
    "markup",
    [
        "<p>x<script>alert(1)</script></p>",
        '<p onclick="x()">x</p>',
        '<a href=" java\tscript:alert(1)">x</a>',
        '<img src="data:text/html,x">',
        '<meta http-equiv="refresh" content="0;url=https://x.example/">',
        '<iframe src="https://x.example/"></iframe>',
        '<p style="background:url(javascript:x)">x</p>',
    ],
)
def test_the_html_check_finds_what_runs(markup: str) -> None:
    assert html_hazards(markup) != []


@pytest.mark.parametrize(
    "head",
    [b"To: a@x.org\nBcc: e@x.org", b"To: a@x.org\rBcc: e@x.org", b"To: a\x00@x.org", b"Bcc e"],
)
def test_the_header_check_finds_a_broken_line(head: bytes) -> None:
    assert header_hazards(head + b"\r\n\r\nbody") != []
