"""The HTML allow-list: what reaches a feed, a page or an email."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from syndicate.sanitize import sanitize_html

BASE = "https://press.example.org/news/releases/iom-eu-return/"


class _Collector(HTMLParser):
    """Every tag and attribute, so tests need not depend on nh3's exact serialisation."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend((tag, name, value) for name, value in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector


def attr(html: str, tag: str, name: str) -> list[str | None]:
    return [value for t, n, value in parse(html).attrs if t == tag and n == name]


def text(html: str) -> str:
    return "".join(parse(html).text)


# --- scripts and styles --------------------------------------------------------------------


def test_script_is_removed_with_its_content() -> None:
    html = sanitize_html("<p>Before</p><script>alert('x')</script><p>After</p>", BASE)
    assert "script" not in parse(html).tags
    assert "alert" not in html
    assert text(html) == "BeforeAfter"


def test_style_is_removed_with_its_content() -> None:
    html = sanitize_html("<style>body { display: none }</style><p>Shown</p>", BASE)
    assert "style" not in parse(html).tags
    assert "display" not in html
    assert text(html) == "Shown"


def test_script_inside_a_paragraph_is_removed() -> None:
    html = sanitize_html("<p>One <script>steal()</script>two</p>", BASE)
    assert html == "<p>One two</p>"


def test_style_attribute_is_removed() -> None:
    html = sanitize_html('<p style="position:fixed">Text</p>', BASE)
    assert html == "<p>Text</p>"


@pytest.mark.parametrize("tag", ["iframe", "object", "embed", "form", "input", "button"])
def test_active_elements_are_removed(tag: str) -> None:
    html = sanitize_html(f'<p>Keep</p><{tag} src="https://evil.example/"></{tag}>', BASE)
    assert tag not in parse(html).tags
    assert "evil" not in html


# --- event handlers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        '<p onclick="steal()">Text</p>',
        '<a href="https://example.org/" onmouseover="steal()">Text</a>',
        '<img src="https://example.org/a.png" onerror="steal()" alt="">',
        '<p ONLOAD="steal()">Text</p>',
    ],
)
def test_event_handlers_are_removed(source: str) -> None:
    html = sanitize_html(source, BASE)
    assert not [name for _, name, _ in parse(html).attrs if name.startswith("on")]
    assert "steal" not in html


# --- unsafe URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java&#x09;script:alert(1)",
        "&#106;avascript:alert(1)",
        "vbscript:msgbox(1)",
    ],
)
def test_script_urls_are_dropped_from_links(url: str) -> None:
    html = sanitize_html(f'<a href="{url}">Click</a>', BASE)
    assert attr(html, "a", "href") == []
    assert text(html) == "Click"


@pytest.mark.parametrize(
    "source",
    [
        '<a href="data:text/html;base64,PHNjcmlwdD4=">Open</a>',
        '<img src="data:image/svg+xml;base64,PHN2Zz4=" alt="x">',
    ],
)
def test_data_urls_are_dropped(source: str) -> None:
    html = sanitize_html(source, BASE)
    assert "data:" not in html


def test_javascript_image_source_is_dropped() -> None:
    html = sanitize_html('<img src="javascript:alert(1)" alt="x">', BASE)
    assert attr(html, "img", "src") == []


def test_mailto_link_is_kept() -> None:
    html = sanitize_html('<a href="mailto:press@example.org">Write</a>', BASE)
    assert attr(html, "a", "href") == ["mailto:press@example.org"]


# --- relative URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("href", "absolute"),
    [
        ("report.pdf", f"{BASE}report.pdf"),
        ("/news/", "https://press.example.org/news/"),
        ("../other/", "https://press.example.org/news/releases/other/"),
        ("?page=2", f"{BASE}?page=2"),
        ("#contacts", f"{BASE}#contacts"),
        ("//cdn.example.net/file.pdf", "https://cdn.example.net/file.pdf"),
    ],
)
def test_relative_link_is_made_absolute_against_the_base(href: str, absolute: str) -> None:
    html = sanitize_html(f'<a href="{href}">Link</a>', BASE)
    assert attr(html, "a", "href") == [absolute]


def test_relative_image_source_is_made_absolute_against_the_base() -> None:
    html = sanitize_html('<img src="photos/camp.jpg" alt="Camp">', BASE)
    assert attr(html, "img", "src") == [f"{BASE}photos/camp.jpg"]


def test_absolute_link_is_kept() -> None:
    html = sanitize_html('<a href="https://www.iom.int/news">IOM</a>', BASE)
    assert attr(html, "a", "href") == ["https://www.iom.int/news"]


# --- safe markup is kept -------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "<p>Paragraph</p>",
        "<p><em>emphasis</em> and <strong>strong</strong></p>",
        "<ul><li>one</li><li>two</li></ul>",
        "<ol><li>first</li></ol>",
        "<blockquote><p>Quoted</p></blockquote>",
        "<h2>Heading</h2>",
        "<p>Line<br>break</p>",
    ],
)
def test_safe_markup_is_kept_as_is(source: str) -> None:
    assert sanitize_html(source, BASE) == source


def test_table_is_kept() -> None:
    html = sanitize_html("<table><tr><th>Year</th></tr><tr><td>2026</td></tr></table>", BASE)
    assert [t for t in parse(html).tags if t in ("table", "tr", "th", "td")] == [
        "table",
        "tr",
        "th",
        "tr",
        "td",
    ]
    assert text(html) == "Year2026"


def test_link_keeps_its_address_and_title() -> None:
    html = sanitize_html('<a href="https://example.org/r" title="Report">Report</a>', BASE)
    assert attr(html, "a", "href") == ["https://example.org/r"]
    assert attr(html, "a", "title") == ["Report"]
    assert text(html) == "Report"


def test_image_keeps_its_source_and_alt_text() -> None:
    html = sanitize_html('<img src="https://example.org/a.jpg" alt="Volunteers">', BASE)
    assert attr(html, "img", "src") == ["https://example.org/a.jpg"]
    assert attr(html, "img", "alt") == ["Volunteers"]


def test_text_is_escaped_not_interpreted() -> None:
    html = sanitize_html("<p>1 &lt; 2 &amp; &lt;script&gt;</p>", BASE)
    assert html == "<p>1 &lt; 2 &amp; &lt;script&gt;</p>"


def test_unknown_tags_are_dropped_but_their_text_kept() -> None:
    html = sanitize_html("<p><blink>Important</blink> news</p>", BASE)
    assert html == "<p>Important news</p>"


def test_surrounding_white_space_is_trimmed() -> None:
    assert sanitize_html("\n  <p>Text</p>\n\n", BASE) == "<p>Text</p>"
