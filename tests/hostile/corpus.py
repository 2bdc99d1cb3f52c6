"""Hostile releases, as data: each item is a set of release fields (model names, values as a
CMS export would give them) and what ingest must do with it: store it (and render it safely),
or reject it naming the field. `write_*` turn the corpus into each source kind's format."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# An HTML body that tries every way we know to run something.
XSS_BODY = """\
<p>Lead <b onmouseover="alert(1)">paragraph</b> <img src=x onerror="alert(2)"></p>
<script>alert(3)</script><SCRIPT SRC="https://evil.example/x.js"></SCRIPT>
<svg onload="alert(4)"><a xlink:href="javascript:alert(5)">svg</a></svg>
<a href="javascript:alert(6)">js</a> <a href=" JaVaScRiPt:alert(7)">js2</a>
<a href="jav&#x09;ascript:alert(8)">tab</a> <a href="&#106;avascript:alert(9)">ref</a>
<a href="vbscript:msgbox(10)">vb</a> <a href="data:text/html;base64,PHNjcmlwdD4=">data</a>
<iframe src="https://evil.example/"></iframe><object data="x.swf"></object><embed src="x">
<form action="javascript:alert(11)"><button formaction="javascript:alert(12)">b</button></form>
<base href="javascript:alert(13)//"><meta http-equiv="refresh" content="0;url=javascript:alert(14)">
<style>body { background: url("javascript:alert(15)") }</style>
<p style="background:url(javascript:alert(16))">styled</p>
<math><mi xlink:href="javascript:alert(17)">m</mi></math>
<blockquote cite="javascript:alert(18)">quote</blockquote><q cite="a relative note">q</q>
<bdo dir="rtl">bidi override element</bdo> <ruby>漢<rt>kan</rt><rtc>ruby text</rtc></ruby>
<a href="https://press.example.org/a b&quot;c">spaced</a> <img src="photos/a b.jpg" alt="x">
<p>]]&gt; <![CDATA[ <script>alert(19)</script> ]]> &lt;/p&gt;</p>
<noscript><p title="</noscript><img src=x onerror=alert(20)>">n</p></noscript>
"""

# Markdown that tries to link to scripts; markdown-it refuses such links and leaves the text.
MARKDOWN_LINKS = """\
Read [this](javascript:alert(1)) and [that](JaVaScRiPt:alert(2)), <javascript:alert(3)>,
![image](javascript:alert(4)), [ref][r] and [data](data:text/html,<script>alert(5)</script>).

<div onclick="alert(6)">raw <a href="javascript:alert(7)">html</a> <script>alert(8)</script></div>

[r]: javascript:alert(9)
"""

SECRET = "TOP-SECRET-XXE-CANARY"  # beside the project: no external entity may ever read it


@dataclass(frozen=True)
class Hostile:
    """One release: `fields` as a source gives them (`id` added per source kind unless given),
    `rejected` the field the rejection must name (None: it must be stored)."""

    name: str
    fields: dict[str, Any]
    rejected: str | None = None
    kinds: frozenset[str] = field(default=frozenset({"markdown", "json", "csv"}))

    def id_for(self, kind: str) -> str:
        given = self.fields.get("id")
        return str(given) if given is not None else f"{kind}-{self.name}"


def _ok(name: str, **fields: Any) -> Hostile:
    return Hostile(name, {"published": "2026-11-20T10:00:00+03:00", **fields})


def _bad(name: str, field_name: str, *, kinds: Iterable[str] = (), **fields: Any) -> Hostile:
    values = {"title": f"Rejected: {name}", "published": "2026-11-20T10:00:00+03:00", **fields}
    for key in [k for k, v in values.items() if v is None]:
        del values[key]
    chosen = frozenset(kinds) or frozenset({"markdown", "json", "csv"})
    return Hostile(name, values, field_name, chosen)


NO_CSV = ("markdown", "json")  # lone surrogates and NUL cannot be in a UTF-8 CSV file

CORPUS: list[Hostile] = [
    # --- stored, and shown as text wherever they appear ---
    _ok(
        "script-everywhere",
        title="<script>alert('title')<img src=x onerror=alert(2)> & ]]> <!-- x -->",
        summary="<b onmouseover=alert(3)>bold? & <script>alert(4)",
        dateline="<svg onload=alert(5)>",
        author='"O\'Brien" & <ceo@example.org>',
        body_html=XSS_BODY,
        attachments=[
            {"url": "files/a b.pdf", "type": "application/pdf", "length": 12, "title": "<i>x"}
        ],
    ),
    _ok("markdown-links", title="Markdown that links to scripts", body=MARKDOWN_LINKS),
    _ok(
        "arabic",
        title="بيان صحفي: المنظمة الدولية للهجرة \u200fتفتح خطاً ساخناً",
        lang="ar",
        dateline="عمّان",
        author="د. ليلى",
        summary="\u202bنص مضمن\u202c والاتجاه",
        body_html='<p dir="rtl">النص \u202e reversed \u202c end</p>',
    ),
    _ok(
        "turkish",
        title="İstanbul'da GÖÇMEN kaçakçılığına karşı ışıklı Türkiye",
        lang="tr",
        dateline="İzmir",
        topics=["turkiye"],
        body="**Iğdır** ve Şırnak; ı İ i I.",
    ),
    _ok(
        "emoji",
        title="🚀 Launch 👩🏽‍🚀 family 🇹🇷 \u200d\ufe0f",
        body_html="<p>😀 &#x1F600; &#128512; 𝕳𝖊𝖑𝖑𝖔</p>",
    ),
    _ok(
        "bidi",
        title="invoice \u202egnp.exe\u202c and \u2066isolate\u2069 \u200e\u200f",
        summary="\u202dforced\u202c \u061c",
    ),
    _ok(
        "separators",
        title="line\u2028separator\u2029para\x85nel\ttab",
        body_html="<p>a\u2028b\x85c</p>",
    ),
    _ok(
        "cdata",
        title="]]> <![CDATA[ x ]]> ]]&gt;",
        body_html="<p>]]></p><![CDATA[<script>alert(1)</script>]]><p>&lt;![CDATA[ ]]&gt;</p>",
    ),
    _ok(
        "entities",
        title="&lol9; &xxe; &amp; &#1; &#x110000;",
        body_html="<!DOCTYPE x [<!ENTITY a 'b'>]><p>&lol9; &xxe; &#x1F600; &#0; &#xD800;</p>",
    ),
    _ok("megabyte", title="Almost a megabyte", body="word " * 199_000),
    _ok(
        "odd-urls",
        title="Odd URLs",
        url='https://press.example.org/news/a b"<>{}|\\^`',
        attachments=[{"url": 'https://press.example.org/f/a b".pdf', "type": "application/pdf"}],
    ),
    _ok("whitespace", title="  \u00a0 Title \t\n with \r\n breaks  ", summary="\u3000wide\u3000"),
    # --- rejected, naming the field ---
    _bad("ctl-title", "title", title="a\x01b"),
    _bad("ctl-summary", "summary", summary="x\x1bz"),
    _bad("ctl-body", "body", body="x\x0bz"),
    _bad("nul-author", "author", author="a\x00b", kinds=NO_CSV),
    _bad("fffe-dateline", "dateline", dateline="\ufffe"),
    _bad("surrogate-title", "title", title="\ud800x", kinds=NO_CSV),
    _bad("surrogate-body", "body_html", body_html="<p>\udfff</p>", kinds=NO_CSV),
    _bad("charref-control", "body_html", body_html="<p>x&#1;y&#xFFFF;</p>"),
    _bad("too-big", "body", body="x" * 1_000_001),
    _bad("no-title", "title", title=None),
    _bad("blank-title", "title", title="  \u00a0 \t"),
    _bad("end-tag-title", "title", title="Schools </b> reopen"),
    _bad("end-tag-author", "author", author="<b>Press</b>"),
    _bad("date-words", "published", published="yesterday"),
    _bad("date-month-13", "published", published="2026-13-45"),
    _bad("date-underflow", "published", published="0001-01-01T00:00:00+14:00"),
    _bad("date-overflow", "published", published="9999-12-31T23:59:59-14:00"),
    _bad("date-naive-underflow", "published", published="0001-01-01"),
    _bad("date-implausible", "published", published="1901-01-01"),
    _bad("date-number", "published", published=1e20),
    _bad("updated-feb-30", "updated", updated="2026-02-30"),
    _bad("embargo-words", "embargo", embargo="soon"),
    _bad("url-javascript", "url", url="javascript:alert(1)"),
    _bad("url-data", "url", url="data:text/html,<script>alert(1)</script>"),
    _bad("url-vbscript", "url", url=" vbscript:msgbox(1)"),
    _bad(
        "attachment-javascript",
        "attachments[0].url",
        attachments=[{"url": "javascript:alert(1)", "type": "application/pdf"}],
    ),
    _bad("lang-injection", "lang", lang='en"><script>alert(1)</script>'),
    _bad("kind-injection", "kind", kind="<script>"),
    _bad("topic-traversal", "topics", topics=["../etc"]),
    _bad("id-traversal", "id", id="../../etc/passwd"),
    _bad("id-newline", "id", id="a\nb"),
    _bad("id-markup", "id", id="<script>"),
    _bad("two-bodies", "body_html", body="*a*", body_html="<p>a</p>"),
    _bad("unknown-field", "onload", onload="alert(1)"),
    _bad("retracted-maybe", "retracted", retracted="maybe"),
]

SHARED_ID = "shared-across-sources"  # also in the JSON export and the upstream feed


def _yaml_string(value: str) -> str:
    """A YAML double-quoted scalar for any str, lone surrogates and controls included."""
    out = ['"']
    for char in value:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif (
            0x20 <= code <= 0x7E
            or (0xA0 <= code <= 0xD7FF and code != 0xFEFF)
            or (0xE000 <= code <= 0xFFFD or code >= 0x10000)
        ):
            out.append(char)
        else:
            out.append(f"\\u{code:04x}")
    out.append('"')
    return "".join(out)


def _yaml_value(value: Any) -> str:
    if isinstance(value, str):
        return _yaml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def write_markdown(folder: Path) -> dict[str, Hostile]:
    """One file per item (surrogates escaped in YAML, so the file itself is UTF-8), a file
    that is not UTF-8, and a YAML alias bomb; {release id: item}."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for number, item in enumerate(c for c in CORPUS if "markdown" in c.kinds):
        fields = {"id": item.id_for("markdown"), **item.fields}
        body = fields.pop("body", "")
        front = "\n".join(f"{key}: {_yaml_value(value)}" for key, value in fields.items())
        text = f"---\n{front}\n---\n{body}\n"
        path = folder / f"{number:02d}-{item.name}.md"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        made[item.id_for("markdown")] = item
    (folder / "zz-shared.md").write_text(
        f"---\nid: {SHARED_ID}\ntitle: Shared\npublished: 2026-11-21\n---\nFirst owner.\n"
    )
    (folder / "zz-latin1.md").write_bytes(
        "---\ntitle: Café\npublished: 2026-11-21\n---\nÇay.\n".encode("latin-1")
    )
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    levels += [
        f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    (folder / "zz-yaml-bomb.md").write_text(
        "---\n" + "\n".join(levels) + "\ntitle: *i\npublished: 2026-11-21\n---\nBoom.\n"
    )
    return made


MARKDOWN_EXTRA = {  # file → what its rejection says
    "zz-latin1.md": "not valid UTF-8",
    "zz-yaml-bomb.md": "aliases here expand to more than 1,000,000 values",
}


def _export_fields(item: Hostile, kind: str) -> dict[str, Any]:
    return {"id": item.id_for(kind), **item.fields}


def write_json(path: Path) -> dict[str, Hostile]:
    items = [c for c in CORPUS if "json" in c.kinds]
    records = [_export_fields(c, "json") for c in items]
    records.append({"id": SHARED_ID, "title": "Shared again", "published": "2026-11-22"})
    # ensure_ascii: lone surrogates travel as \\udXXX escapes, the file stays UTF-8
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, ensure_ascii=True, indent=1), encoding="utf-8")
    return {c.id_for("json"): c for c in items}


def _cell(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def write_csv(path: Path) -> dict[str, Hostile]:
    items = [c for c in CORPUS if "csv" in c.kinds]
    rows = [_export_fields(c, "csv") for c in items]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) if c in row else "" for c in columns])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue().encode("utf-8"))
    return {c.id_for("csv"): c for c in items}


# --- an HTML listing page: (id, title/link/summary/date markup, rejected field) ------------

LISTING_HEAD = """\
<!DOCTYPE html [
  <!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY xxe SYSTEM "file://{secret}">
]>
<html><head><meta charset="utf-8"><title>&lol3; &xxe;</title>
<script>document.write('<li class="release"><h3>injected</h3></li>')</script></head>
<body onload="alert(0)"><ul class="releases">
"""
LISTING_ITEMS: list[tuple[str, str, str | None]] = [
    (
        "l-script",
        '<h3 onclick="alert(1)"><a href="/news/l-script">&lt;script&gt;alert(1) &lol3; &xxe;'
        '</a></h3><p class="summary">Ankara – <script>alert(2)</script><b onclick=x>b</b> ]]>'
        '</p><time datetime="2026-11-20T10:00:00+03:00">20 Nov</time>',
        None,
    ),
    (
        "l-arabic",
        '<h3><a href="/news/l-arabic">بيان صحفي \u202e عربي</a></h3>'
        '<p class="summary">عمّان – نص</p><time datetime="2026-11-20">x</time>',
        None,
    ),
    (
        "l-turkish-emoji",
        '<h3><a href="/news/l-turkish-emoji">İstanbul ışık 🚀 &#x1F600;</a></h3>'
        '<p class="summary">İzmir – ğüşiöç</p><time datetime="2026-11-20">x</time>',
        None,
    ),
    (
        "alert-1",  # the id comes from the link's last segment
        '<h3><a href="javascript:alert(1)">Script link</a></h3>',
        "url",
    ),
    (
        "l-date",
        '<h3><a href="/news/l-date">Bad date</a></h3><time datetime="2026-13-45">x</time>',
        "published",
    ),
    (
        "l-date-overflow",
        '<h3><a href="/news/l-date-overflow">Overflow</a></h3>'
        '<time datetime="0001-01-01T00:00:00+14:00">x</time>',
        "published",
    ),
    ("l-control", '<h3><a href="/news/l-control">bad \x01 char</a></h3>', "title"),
    ("l-end-tag", '<h3><a href="/news/l-end-tag">&lt;/b&gt; reopen</a></h3>', "title"),
    (
        "l-long-summary",
        '<h3><a href="/news/l-long-summary">Long</a></h3><p class="summary">' + "x" * 6000 + "</p>",
        "summary",
    ),
]


def write_listing(path: Path, secret: Path) -> dict[str, str | None]:
    items = "".join(
        f'<li class="release" onclick="x()">{markup}</li>\n' for _, markup, _ in LISTING_ITEMS
    )
    duplicate = '<li class="release"><h3><a href="/news/l-arabic">Again</a></h3></li>\n'
    html = LISTING_HEAD.format(secret=secret) + items + duplicate + "</ul></body></html>\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return {rid: rejected for rid, _, rejected in LISTING_ITEMS}


# --- upstream feeds, served over HTTP ----------------------------------------------------------

RSS = """\
<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE rss [
  <!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY xxe SYSTEM "file://{secret}">
  <!ENTITY % remote SYSTEM "{dtd}"> %remote;
]>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
<title>Upstream &lol4; &xxe;</title><link>https://upstream.example.org/</link>
<description>Hostile upstream</description>
{items}
</channel></rss>
"""
FEED_ITEMS: list[tuple[str, str, str | None]] = [
    (
        "f-script",
        "<title>&lt;script&gt;alert(1) news &lol4; &xxe;</title>"
        "<link>https://upstream.example.org/f-script</link><guid>f-script</guid>"
        "<pubDate>Fri, 20 Nov 2026 10:00:00 +0300</pubDate>"
        "<description>&lt;p onclick='alert(2)'&gt;Lead&lt;/p&gt;</description>"
        "<content:encoded><![CDATA[<p>Body <script>alert(3)</script>"
        "<a href='javascript:alert(4)'>x</a> ]]]]><![CDATA[> <img src=x onerror=alert(5)>"
        "</p>]]></content:encoded>",
        None,
    ),
    (
        "f-link-javascript",
        "<title>Script link</title><link>javascript:alert(1)</link>"
        "<guid>f-link-javascript</guid><pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate>",
        None,  # the link is dropped: the release gets our own page as its URL
    ),
    (
        "f-rtl",
        "<title>بيان \u202e صحفي 🚀 İstanbul</title><guid>f-rtl</guid>"
        "<link>https://upstream.example.org/f-rtl</link>"
        "<pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate>",
        None,
    ),
    (
        "f-bad-date",
        "<title>Bad date</title><guid>f-bad-date</guid><pubDate>yesterday at noon</pubDate>",
        "published",
    ),
    (
        "f-enclosure",
        "<title>Enclosure</title><guid>f-enclosure</guid>"
        "<pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate>"
        '<enclosure url="javascript:alert(1)" type="application/pdf" length="1"/>',
        "attachments[0].url",
    ),
    (
        "f-big",
        "<title>Too big</title><guid>f-big</guid><pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate>"
        "<content:encoded>" + "x" * 1_000_100 + "</content:encoded>",
        "body_html",
    ),
    (
        "f-end-tag",
        "<title>Schools &lt;/b&gt; reopen</title><guid>f-end-tag</guid>"
        "<pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate>",
        None,  # RSS titles are read as HTML: the tag is stripped
    ),
    (
        "f-script-title",
        "<title>&lt;script&gt;alert(1)&lt;/script&gt;</title><guid>f-script-title</guid>"
        "<pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate>",
        "title",  # not a tag feedparser knows for HTML: plain text with an end tag
    ),
    (
        "f-implausible",
        "<title>Old</title><guid>f-implausible</guid>"
        "<pubDate>Thu, 01 Jan 1970 00:00:00 GMT</pubDate>",
        "published",
    ),
    (
        SHARED_ID,
        f"<title>Shared, third</title><guid>urn:x:{SHARED_ID}</guid>"
        "<pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate>",
        "id",
    ),
]

ATOM = """\
<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Upstream Atom</title><id>urn:x:atom</id>
<updated>2026-11-20T10:00:00Z</updated>
<entry><id>urn:x:a-overflow</id><title>Overflow</title>
<updated>9999-12-31T23:59:59-14:00</updated></entry>
<entry><id>urn:x:a-underflow</id><title>Underflow</title>
<updated>0000-01-01T00:00:00Z</updated></entry>
<entry><id>urn:x:a-fine</id>
<title type="html">&lt;b&gt;Fine&lt;/b&gt; &lt;script&gt;x&lt;/script&gt;</title>
<updated>2026-11-20T10:00:00Z</updated>
<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p onclick="alert(1)">x</p>
<script>alert(2)</script><a href="javascript:alert(3)">y</a></div></content></entry>
</feed>
"""
ATOM_ITEMS: dict[str, str | None] = {
    "a-overflow": "published",
    "a-underflow": "published",
    "a-fine": None,
}


def rss(secret: Path, dtd_url: str) -> bytes:
    """The hostile RSS feed; its DOCTYPE names `secret` and a remote DTD at `dtd_url`, neither
    of which may ever be read."""
    items = "".join(f"<item>{markup}</item>\n" for _, markup, _ in FEED_ITEMS)
    duplicate = "<item><title>Again</title><guid>f-rtl</guid></item>\n"
    return RSS.format(secret=secret, dtd=dtd_url, items=items + duplicate).encode()
