"""An HTML listing page read with CSS selectors: tests/data/listing.html is a saved page made
from the seed listing (nine releases, one of them without a title, plus a promo box)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from syndicate.config import HtmlSource
from syndicate.errors import ContentError, SourceError
from syndicate.ingest.items import Problem, RawItem, Site
from syndicate.ingest.listing import read_listing, split_dateline
from syndicate.ingest.record import build_release
from syndicate.model import Kind
from tests.conftest import DATA, NOW, ROOT

LISTING = DATA / "listing.html"
SELECTORS: dict[str, Any] = {
    "item": "ul.releases > li.release",
    "title": "h3",
    "link": "a@href",
    "summary": "p.summary",
    "date": "time@datetime",
    "author": "p.byline",
    "base_url": "https://www.example.org",
}
VITORINO = 2  # the op-ed without a title or link, third on the page


def source(**overrides: Any) -> HtmlSource:
    options = {**SELECTORS, "datelines": ["Geneva"], **overrides}
    return HtmlSource(type="html", path=LISTING, **options)


def read(html: str | None = None, **overrides: Any) -> list[RawItem]:
    text = LISTING.read_text(encoding="utf-8") if html is None else html
    entries = list(read_listing(text, source(**overrides), "listing.html"))
    assert all(isinstance(e, RawItem) for e in entries)
    return [e for e in entries if isinstance(e, RawItem)]


def field(items: list[RawItem], name: str) -> list[Any]:
    return [i.fields.get(name) for i in items]


# --- the saved listing ------------------------------------------------------------------------


def test_every_release_on_the_page_is_read() -> None:
    assert len(read()) == 10


def test_the_promo_box_outside_the_release_list_is_not_read() -> None:
    assert "Subscribe to our newsletter" not in field(read(), "title")


def test_items_carry_their_line_in_the_file() -> None:
    lines = LISTING.read_text(encoding="utf-8").splitlines()
    starts = [n for n, text in enumerate(lines, start=1) if text.strip() == '<li class="release">']
    assert [i.line for i in read()] == starts


def test_the_untitled_op_ed_is_rejected_for_its_missing_title(site: Site) -> None:
    items = read()
    assert items[VITORINO].fields.get("title") is None
    with pytest.raises(ContentError) as info:
        build_release(items[VITORINO], site)
    assert info.value.field == "title"


def test_every_titled_item_builds_into_a_release(site: Site) -> None:
    items = [i for n, i in enumerate(read()) if n != VITORINO]
    assert len([build_release(i, site) for i in items]) == 9


def test_datelines_are_split_from_the_summaries() -> None:
    assert field(read(), "dateline") == [
        "Ankara",
        "Antalya",
        None,
        "Ankara",
        "Istanbul",  # "ISTANBUL –"
        "Gaziantep",
        "Vienna",  # em dash
        "Geneva",  # no dash: known from `datelines`
        "Ankara",
        None,
    ]


def test_an_undashed_dateline_is_only_split_when_it_is_configured() -> None:
    items = read(datelines=[])
    assert items[7].fields.get("dateline") is None
    assert items[7].fields["summary"].startswith("Geneva The promotion")


def test_summaries_no_longer_start_with_the_dateline() -> None:
    items = read()
    for item in items:
        summary, dateline = item.fields["summary"], item.fields.get("dateline")
        if dateline:
            assert not summary.lower().startswith(dateline.lower())
            assert summary[0] not in "–—- "
    assert items[0].fields["summary"].startswith("As the world’s largest")
    assert items[4].fields["summary"].startswith("“Opportunities for Lives”")
    assert items[8].fields["summary"].startswith("Istanbul has increasingly")


def test_links_are_made_absolute_against_the_base_url() -> None:
    links = [link for link in field(read(), "url") if link is not None]
    assert len(links) == 9
    assert links[0] == "https://www.example.org/news/iom-eu-help-vulnerable-migrants-return-home"
    assert all(link.startswith("https://www.example.org/news/") for link in links)


def test_ids_are_the_last_path_segment_of_the_link() -> None:
    for item in read():
        link = item.fields.get("url")
        if link is not None:
            assert item.default_id == urlsplit(link).path.rstrip("/").rsplit("/", 1)[-1]


def test_listing_ids_match_the_sample_markdown_files() -> None:
    stems = {p.stem for p in (ROOT / "content" / "releases").glob("*.md")}
    ids = {i.default_id for i in read() if i.default_id is not None}
    assert len(ids) == 9
    assert ids <= stems


def test_items_with_a_time_element_get_its_date(site: Site) -> None:
    items = read()
    built = [build_release(i, site) for i in items[:2]]
    assert [(r.published, defaulted) for r, defaulted in built] == [
        (datetime(2019, 6, 20, 7, 0, tzinfo=UTC), False),
        (datetime(2019, 4, 11, 7, 30, tzinfo=UTC), False),
    ]


def test_items_without_a_date_are_published_at_ingest_time(site: Site) -> None:
    items = [i for n, i in enumerate(read()) if n >= 2 and n != VITORINO]
    built = [build_release(i, site) for i in items]
    assert [(r.published, defaulted) for r, defaulted in built] == [(NOW, True)] * 7


def test_bylines_give_the_author_without_by_and_kind_op_ed() -> None:
    items = read()
    op_eds = [(i.fields["author"], i.fields["kind"]) for i in items if i.fields.get("author")]
    assert op_eds == [
        (
            "António Vitorino, Director General International Organization for Migration (IOM)",
            Kind.OP_ED,
        ),
        ("William Lacy Swing, IOM Director General", Kind.OP_ED),
    ]


def test_items_without_a_byline_are_press_releases() -> None:
    kinds = [i.fields["kind"] for i in read() if not i.fields.get("author")]
    assert kinds == [Kind.PRESS_RELEASE] * 8


# --- small pages ------------------------------------------------------------------------------

PAGE = """\
<html><head>{head}</head><body><ul class="releases">
<li class="release"><h3><a href="{href}">First  release</a></h3>
<p class="summary">Ankara – Text.</p></li>
</ul></body></html>
"""


def test_item_without_a_link_takes_its_id_from_the_title() -> None:
    html = '<ul class="releases"><li class="release"><h3>Türkiye: A New Plan</h3></li></ul>'
    (item,) = read(html)
    assert item.default_id == "turkiye-a-new-plan"
    assert item.fields.get("url") is None


def test_an_arabic_title_without_a_link_gets_a_stable_digest_id() -> None:
    html = '<ul class="releases"><li class="release"><h3>بيان صحفي</h3></li></ul>'
    (first,) = read(html)
    (again,) = read(html)
    assert first.default_id is not None and first.default_id.startswith("r-")
    assert first.default_id == again.default_id


def test_a_percent_encoded_link_segment_is_decoded_before_the_slug() -> None:
    html = PAGE.format(head="", href="/news/t%C3%BCrkiye-plan")
    assert [i.default_id for i in read(html)] == ["turkiye-plan"]


def test_links_that_differ_only_in_their_query_give_distinct_ids() -> None:
    html = PAGE.format(head="", href="/press/release.php?id=7") + PAGE.format(
        head="", href="/press/release.php?id=8"
    )
    assert [i.default_id for i in read(html)] == ["release-php-id-7", "release-php-id-8"]


def test_links_resolve_against_the_page_url_without_a_configured_base() -> None:
    html = PAGE.format(head="", href="2026/first")
    options = {**SELECTORS, "base_url": None}
    src = HtmlSource(type="html", path=LISTING, **options)
    (item,) = read_listing(html, src, "page.html", page_url="https://press.example.org/news/")
    assert isinstance(item, RawItem)
    assert item.fields["url"] == "https://press.example.org/news/2026/first"


def test_a_base_element_in_the_page_is_honoured() -> None:
    html = PAGE.format(head='<base href="https://cdn.example.org/news/">', href="first")
    (item,) = read(html, base_url=None)
    assert item.fields["url"] == "https://cdn.example.org/news/first"


def test_title_text_is_collapsed_to_one_line() -> None:
    (item,) = read(PAGE.format(head="", href="/x"))
    assert item.fields["title"] == "First release"


def unchecked(**overrides: Any) -> HtmlSource:
    """A source the config would refuse (it checks selectors too): the reader checks again."""
    options = {**HtmlSource(type="html", path=LISTING).model_dump(), **SELECTORS, **overrides}
    return HtmlSource.model_construct(**options)


def test_invalid_item_selector_raises_source_error_on_one_line() -> None:
    with pytest.raises(SourceError, match=r"^listing\.html: invalid CSS selector") as info:
        list(read_listing("", unchecked(item="ul.releases > li["), "listing.html"))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("option", ["title", "link", "summary", "date", "author"])
def test_invalid_field_selector_raises_source_error(option: str) -> None:
    with pytest.raises(SourceError, match=r"^listing\.html: invalid CSS selector"):
        list(read_listing("", unchecked(**{option: "p[@x"}), "listing.html"))


@pytest.mark.parametrize("option", ["item", "title", "link", "summary", "date", "author"])
def test_the_config_refuses_an_invalid_selector(option: str) -> None:
    with pytest.raises(ValueError, match="invalid CSS selector"):
        source(**{option: "p[@x"})


def test_a_page_without_items_yields_nothing() -> None:
    entries: list[RawItem | Problem] = list(read_listing("<p>Nothing yet</p>", source(), "x"))
    assert entries == []


# --- split_dateline ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ("Ankara – As the world’s largest host.", ("Ankara", "As the world’s largest host.")),
        ("ISTANBUL – “Opportunities” launched.", ("Istanbul", "“Opportunities” launched.")),
        ("Vienna — While the route is known.", ("Vienna", "While the route is known.")),
        ("Ankara - Text with a hyphen.", ("Ankara", "Text with a hyphen.")),
        ("Ankara–Text without spaces.", ("Ankara", "Text without spaces.")),
        ("Las Palmas – Two words.", ("Las Palmas", "Two words.")),
        ("NEW YORK – Shouted.", ("New York", "Shouted.")),
        ("Şanlıurfa – Turkish letters.", ("Şanlıurfa", "Turkish letters.")),
    ],
)
def test_split_dateline_splits_a_dashed_dateline(
    summary: str, expected: tuple[str | None, str]
) -> None:
    assert split_dateline(summary) == expected


@pytest.mark.parametrize(
    "summary",
    [
        "Turkey hosts over four million migrants.",
        "Turkey hosts millions – a record.",
        "Migration is the great issue of our era.",
        "The world’s workforce has never been more mobile—from the gardener in California.",
        "Ankara-based groups met – and agreed.",
        "Geneva The promotion of safe migration.",
        "",
    ],
)
def test_split_dateline_leaves_a_summary_without_a_dateline_alone(summary: str) -> None:
    assert split_dateline(summary) == (None, summary)


def test_split_dateline_accepts_a_known_undashed_dateline() -> None:
    assert split_dateline("Geneva The promotion.", ["Geneva"]) == ("Geneva", "The promotion.")


def test_a_known_dateline_must_be_a_whole_word() -> None:
    assert split_dateline("Genevan officials met.", ["Geneva"]) == (None, "Genevan officials met.")


def test_the_longest_known_dateline_wins() -> None:
    summary = "New York Officials met."
    assert split_dateline(summary, ["New", "New York"]) == ("New York", "Officials met.")
