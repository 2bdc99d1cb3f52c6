"""build_release: the one place where a raw record's fields are checked and normalised."""

from __future__ import annotations

import email.utils
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from bs4 import BeautifulSoup

from syndicate.errors import ContentError
from syndicate.ingest.items import RawItem, Site
from syndicate.ingest.record import build_release
from syndicate.model import Attachment, Kind, Release
from tests.conftest import NOW

RELEASE_URL = "https://press.example.org/news/releases/x/"


def item(*, date_required: bool = True, **fields: Any) -> RawItem:
    """A valid record with id 'x'; a field given as None is left out."""
    base: dict[str, Any] = {"id": "x", "title": "T", "published": "2026-11-26T09:00:00+03:00"}
    base.update(fields)
    return RawItem("export.json", 7, base, date_required=date_required)


def build(site: Site, **fields: Any) -> Release:
    release, _ = build_release(item(**fields), site)
    return release


def rejection(site: Site, **fields: Any) -> ContentError:
    with pytest.raises(ContentError) as info:
        build_release(item(**fields), site)
    return info.value


# --- rejections: each names its field ---------------------------------------------------------


@pytest.mark.parametrize("title", [None, "", "   ", "\n\t"])
def test_missing_or_blank_title_is_rejected(site: Site, title: str | None) -> None:
    error = rejection(site, title=title)
    assert error.field == "title"
    assert str(error).startswith("title: ")


@pytest.mark.parametrize("field", ["published", "updated", "embargo"])
def test_unparseable_date_is_rejected_with_an_iso_hint(site: Site, field: str) -> None:
    error = rejection(site, **{field: "next Tuesday"})
    assert error.field == field
    assert "'next Tuesday'" in str(error)
    assert "ISO 8601" in str(error)


def test_a_date_of_the_wrong_type_is_rejected(site: Site) -> None:
    assert rejection(site, published=["2026-11-26"]).field == "published"


def test_missing_date_is_rejected_when_the_source_requires_one(site: Site) -> None:
    error = rejection(site, published=None)
    assert error.field == "published"
    assert "published:" in str(error)


def test_xml_illegal_control_character_in_title_is_rejected(site: Site) -> None:
    error = rejection(site, title="Vertical\x0btab")
    assert error.field == "title"
    assert "U+000B" in str(error)


def test_lone_surrogate_in_summary_is_rejected(site: Site) -> None:
    error = rejection(site, summary="broken \ud800 text")
    assert error.field == "summary"
    assert "U+D800" in str(error)


def test_control_character_in_body_is_rejected(site: Site) -> None:
    assert rejection(site, body="Bell\x07").field == "body"


@pytest.mark.parametrize(
    ("field", "value"),
    [("body_html", "<p>x&#1;y</p>"), ("body", "<div>x&#x1;y</div>"), ("body_html", "a&#11;b")],
)
def test_control_character_written_as_a_character_reference_is_rejected(
    site: Site, field: str, value: str
) -> None:
    assert rejection(site, **{field: value}).field == field


def test_body_over_one_megabyte_is_rejected(site: Site) -> None:
    error = rejection(site, body="a" * 1_000_001)
    assert error.field == "body"
    assert "1,000,000" in str(error)


def test_body_limit_counts_utf8_bytes_not_characters(site: Site) -> None:
    # 500,001 characters, 1,000,002 bytes.
    assert rejection(site, body="é" * 500_001).field == "body"


def test_body_of_exactly_one_megabyte_is_accepted(site: Site) -> None:
    release = build(site, body="a" * 1_000_000)
    assert len(release.body_html) > 1_000_000


def test_body_and_body_html_together_are_rejected(site: Site) -> None:
    assert rejection(site, body="*a*", body_html="<p>a</p>").field == "body_html"


def test_unknown_field_is_rejected_with_a_suggestion(site: Site) -> None:
    error = rejection(site, titel="Typo")
    assert error.field == "titel"
    assert "did you mean 'title'?" in str(error)


def test_unknown_field_without_a_close_match_has_no_suggestion(site: Site) -> None:
    error = rejection(site, colour="blue")
    assert error.field == "colour"
    assert "did you mean" not in str(error)


def test_unknown_kind_is_rejected_listing_the_choices(site: Site) -> None:
    error = rejection(site, kind="opinion")
    assert error.field == "kind"
    for kind in Kind:
        assert kind.value in str(error)


@pytest.mark.parametrize("lang", ["english!", "e", "en_GB", "toolongtag"])
def test_language_that_is_not_a_bcp47_tag_is_rejected(site: Site, lang: str) -> None:
    assert rejection(site, lang=lang).field == "lang"


@pytest.mark.parametrize("release_id", ["Hello World", "a/b", "-leading", "UPPER", "ü"])
def test_id_that_is_not_a_slug_is_rejected(site: Site, release_id: str) -> None:
    assert rejection(site, id=release_id).field == "id"


def test_id_rejection_suggests_a_slug(site: Site) -> None:
    assert "'hello-world'" in str(rejection(site, id="Hello World"))


def test_record_without_any_id_is_rejected(site: Site) -> None:
    assert rejection(site, id=None).field == "id"


@pytest.mark.parametrize("url", ["ftp://example.org/x", "javascript:alert(1)", "mailto:a@b.org"])
def test_url_that_is_not_http_is_rejected(site: Site, url: str) -> None:
    error = rejection(site, url=url)
    assert error.field == "url"
    assert "http(s)" in str(error)


def test_attachments_that_are_not_a_list_are_rejected(site: Site) -> None:
    error = rejection(site, attachments={"url": "a.pdf", "type": "application/pdf"})
    assert error.field == "attachments"


def test_attachment_that_is_not_a_mapping_is_rejected(site: Site) -> None:
    assert rejection(site, attachments=["a.pdf"]).field == "attachments[0]"


def test_attachment_without_url_is_rejected(site: Site) -> None:
    error = rejection(site, attachments=[{"type": "application/pdf", "length": 10}])
    assert error.field == "attachments[0].url"


@pytest.mark.parametrize("media_type", ["pdf", "application/", "text/html; charset=utf-8", None])
def test_attachment_with_a_bad_media_type_is_rejected(site: Site, media_type: str | None) -> None:
    error = rejection(site, attachments=[{"url": "a.pdf", "type": media_type}])
    assert error.field == "attachments[0].type"


@pytest.mark.parametrize("length", [-1, "-1", "big", "1.5", 2.0, True])
def test_attachment_with_a_negative_or_non_numeric_length_is_rejected(
    site: Site, length: object
) -> None:
    error = rejection(
        site, attachments=[{"url": "a.pdf", "type": "application/pdf", "length": length}]
    )
    assert error.field == "attachments[0].length"


def test_second_attachment_is_named_by_its_index(site: Site) -> None:
    good = {"url": "a.pdf", "type": "application/pdf"}
    bad = {"url": "b.pdf", "type": "application/pdf", "length": "lots"}
    assert rejection(site, attachments=[good, bad]).field == "attachments[1].length"


def test_attachment_with_an_unknown_key_is_rejected(site: Site) -> None:
    error = rejection(site, attachments=[{"url": "a.pdf", "type": "application/pdf", "size": 1}])
    assert error.field == "attachments[0]"
    assert "size" in str(error)


@pytest.mark.parametrize("field", ["title", "summary", "author", "dateline"])
def test_text_field_given_a_mapping_is_rejected(site: Site, field: str) -> None:
    assert rejection(site, **{field: {"nested": "value"}}).field == field


@pytest.mark.parametrize("topics", ["Human Trafficking", ["ok", "not ok"], {"a": 1}])
def test_topics_that_are_not_slugs_are_rejected(site: Site, topics: object) -> None:
    assert rejection(site, topics=topics).field == "topics"


def test_retracted_that_is_not_a_yes_or_no_is_rejected(site: Site) -> None:
    assert rejection(site, retracted="maybe").field == "retracted"


# --- dates ------------------------------------------------------------------------------------


def test_naive_datetime_is_read_in_the_site_timezone_and_stored_as_utc(site: Site) -> None:
    published = build(site, published=datetime(2026, 11, 26, 12, 0)).published
    assert published == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    assert published.utcoffset() == timedelta(0)


def test_naive_iso_text_is_read_in_the_site_timezone(site: Site) -> None:
    published = build(site, published="2026-11-26T12:00").published
    assert published == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    assert published.utcoffset() == timedelta(0)


def test_bare_date_is_midnight_in_the_site_timezone(site: Site) -> None:
    published = build(site, published=date(2026, 11, 26)).published
    assert published == datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
    assert published.utcoffset() == timedelta(0)


def test_bare_date_text_is_midnight_in_the_site_timezone(site: Site) -> None:
    assert build(site, published="2026-11-26").published == datetime(2026, 11, 25, 21, tzinfo=UTC)


def test_iso_text_with_an_offset_keeps_the_instant(site: Site) -> None:
    published = build(site, published="2026-11-26T12:00:00+01:00").published
    assert published == datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    assert published.utcoffset() == timedelta(0)


def test_iso_text_with_z_is_utc(site: Site) -> None:
    published = build(site, published="2026-11-26T09:30:00Z").published
    assert published == datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def test_aware_datetime_is_converted_to_utc(site: Site) -> None:
    moment = datetime(2026, 11, 26, 12, 0, tzinfo=site.tz)
    published = build(site, published=moment).published
    assert published == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    assert published.utcoffset() == timedelta(0)


def test_rfc822_date_is_read(site: Site) -> None:
    published = build(site, published="Thu, 26 Nov 2026 12:00:00 +0300").published
    assert published == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_rfc822_date_in_gmt_is_utc(site: Site) -> None:
    published = build(site, published="Thu, 26 Nov 2026 09:00:00 GMT").published
    assert published == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_rfc822_date_in_minus_0000_is_utc(site: Site) -> None:
    # RFC 5322: '-0000' is UTC; email.utils.formatdate() writes it by default.
    text = email.utils.formatdate(datetime(2026, 11, 26, 9, 0, tzinfo=UTC).timestamp())
    assert text.endswith("-0000")
    assert build(site, published=text).published == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_updated_and_embargo_are_read_like_published(site: Site) -> None:
    release = build(site, updated="2026-11-27T12:00", embargo="2026-11-28")
    assert release.updated == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert release.embargo == datetime(2026, 11, 27, 21, 0, tzinfo=UTC)


def test_undated_item_from_a_source_without_dates_is_published_now(site: Site) -> None:
    release, defaulted = build_release(item(published=None, date_required=False), site)
    assert release.published == NOW
    assert defaulted is True


def test_dated_item_is_not_marked_as_defaulted(site: Site) -> None:
    _, defaulted = build_release(item(date_required=False), site)
    assert defaulted is False


# --- defaults ---------------------------------------------------------------------------------


def test_default_url_is_under_the_site_base_url(site: Site) -> None:
    assert build(site, id="hello-2026").url == "https://press.example.org/news/releases/hello-2026/"


def test_id_comes_from_the_source_default_when_not_given(site: Site) -> None:
    raw = RawItem("a.md", 1, {"title": "T", "published": "2026-11-26"}, default_id="from-stem")
    release, _ = build_release(raw, site)
    assert release.id == "from-stem"
    assert release.url.endswith("/releases/from-stem/")


def test_explicit_id_wins_over_the_source_default(site: Site) -> None:
    raw = RawItem("a.md", 1, {"id": "given", "title": "T", "published": "2026-11-26"}, {}, "stem")
    assert build_release(raw, site)[0].id == "given"


def test_explicit_absolute_url_is_kept(site: Site) -> None:
    assert build(site, url="https://www.example.org/a/b").url == "https://www.example.org/a/b"


def test_language_and_kind_default_from_the_site(site: Site) -> None:
    release = build(site)
    assert release.lang == site.language
    assert release.kind is Kind.PRESS_RELEASE


def test_title_is_collapsed_to_one_line(site: Site) -> None:
    assert build(site, title="  Two\n   lines\t here ").title == "Two lines here"


def test_default_summary_is_the_first_paragraph_when_short(site: Site) -> None:
    summary = build(site, body="A *short* first paragraph.\n\nA second one.").summary
    assert summary == "A short first paragraph."


def test_default_summary_is_cut_at_a_word_boundary_near_300_characters(site: Site) -> None:
    words = [f"word{n:03d}" for n in range(60)]  # 7 letters each: 479 characters with spaces
    first = " ".join(words)
    summary = build(site, body=f"{first}\n\nSecond paragraph.").summary
    assert summary.endswith("…")
    kept = summary.removesuffix("…")
    assert 250 <= len(kept) <= 300
    assert first.startswith(kept)
    assert first[len(kept)] == " "  # the cut falls between two words
    assert kept.split() == words[: len(kept.split())]
    assert "Second" not in summary


def test_explicit_summary_is_kept(site: Site) -> None:
    assert build(site, summary="Given.", body="Body paragraph.").summary == "Given."


def test_release_without_body_or_summary_has_an_empty_summary(site: Site) -> None:
    release = build(site)
    assert release.summary == ""
    assert release.body_html == ""


# --- body -------------------------------------------------------------------------------------


def test_markdown_body_is_rendered_to_html(site: Site) -> None:
    html = build(site, body="Some **bold** text.\n\n- one\n- two").body_html
    assert "<strong>bold</strong>" in html
    assert "<li>one</li>" in html


def test_script_elements_are_removed_with_their_content(site: Site) -> None:
    html = build(site, body="Before\n\n<script>alert('x')</script>\n\nAfter").body_html
    assert "<script" not in html
    assert "alert" not in html
    assert "After" in html


def attributes(html: str) -> list[tuple[str, str]]:
    """Every (attribute, value) pair on every element of `html`."""
    soup = BeautifulSoup(html, "html.parser")
    return [(name, str(value)) for tag in soup.find_all(True) for name, value in tag.attrs.items()]


def test_event_handler_attributes_are_removed(site: Site) -> None:
    body = '<p onclick="steal()" onmouseover="x()">Hi <img src="a.png" onerror="y()"></p>'
    html = build(site, body=body).body_html
    assert "Hi" in html
    assert [name for name, _ in attributes(html) if name.startswith("on")] == []
    assert "steal" not in html


def test_markdown_javascript_link_is_not_a_link(site: Site) -> None:
    html = build(site, body="[click](javascript:alert(1))").body_html
    assert [name for name, _ in attributes(html) if name in ("href", "src")] == []


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "jav&#x09;ascript:alert(1)",
        "data:text/html,hello",
        "vbscript:msgbox(1)",
    ],
)
def test_unsafe_link_targets_are_removed(site: Site, href: str) -> None:
    html = build(site, body=f'<p><a href="{href}">link</a></p>').body_html
    assert "link" in html
    assert [name for name, _ in attributes(html) if name == "href"] == []


def test_relative_links_are_made_absolute_against_the_release_url(site: Site) -> None:
    html = build(site, body="See [the report](docs/report.pdf).").body_html
    assert f'href="{RELEASE_URL}docs/report.pdf"' in html


def test_root_relative_images_are_made_absolute_against_the_release_host(site: Site) -> None:
    html = build(site, body="![Chart](/media/chart.png)").body_html
    assert 'src="https://press.example.org/media/chart.png"' in html


def test_relative_links_follow_an_explicit_release_url(site: Site) -> None:
    html = build(site, url="https://www.example.org/news/a/", body="[x](b.pdf)").body_html
    assert 'href="https://www.example.org/news/a/b.pdf"' in html


def test_absolute_links_are_kept(site: Site) -> None:
    html = build(site, body="[IOM](https://www.iom.int/news)").body_html
    assert 'href="https://www.iom.int/news"' in html


def test_body_html_is_sanitised_and_not_rendered_as_markdown(site: Site) -> None:
    html = build(site, body_html='<p>*as is* <a href="x.html" onclick="y()">x</a></p>').body_html
    assert "*as is*" in html
    assert f'href="{RELEASE_URL}x.html"' in html
    assert "onclick" not in html


# --- lists and flags --------------------------------------------------------------------------


def test_topics_may_be_a_list(site: Site) -> None:
    assert build(site, topics=["trafficking", "syria-response"]).topics == (
        "trafficking",
        "syria-response",
    )


def test_topics_may_be_a_comma_separated_string(site: Site) -> None:
    assert build(site, topics="trafficking, syria-response").topics == (
        "trafficking",
        "syria-response",
    )


def test_repeated_topics_are_kept_once(site: Site) -> None:
    assert build(site, topics="events,events, data").topics == ("events", "data")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("yes", True), ("no", False), ("Yes", True), ("NO", False)],
)
def test_retracted_may_be_a_bool_or_yes_no(site: Site, value: object, expected: bool) -> None:
    assert build(site, retracted=value).retracted is expected


def test_retracted_defaults_to_false(site: Site) -> None:
    assert build(site).retracted is False


def test_attachments_are_read_with_absolute_urls(site: Site) -> None:
    release = build(
        site,
        attachments=[
            {"url": "report.pdf", "type": "application/pdf", "length": "2048", "title": "Report"},
            {"url": "https://cdn.example.org/p.jpg", "media_type": "image/jpeg", "length": 10},
        ],
    )
    assert release.attachments == (
        Attachment(f"{RELEASE_URL}report.pdf", "application/pdf", 2048, "Report"),
        Attachment("https://cdn.example.org/p.jpg", "image/jpeg", 10, ""),
    )


def test_attachment_length_defaults_to_zero(site: Site) -> None:
    release = build(site, attachments=[{"url": "a.pdf", "type": "application/pdf"}])
    assert release.attachments[0].length == 0


def test_op_ed_keeps_kind_author_and_dateline(site: Site) -> None:
    release = build(site, kind="op-ed", author="António Vitorino", dateline="Geneva")
    assert (release.kind, release.author, release.dateline) == (
        Kind.OP_ED,
        "António Vitorino",
        "Geneva",
    )
