"""An offline stand-in for the W3C Feed Validation Service.

`check_rss`, `check_atom` and `check_json` return every violation, as "where: what", of the rules
that service applies to syndicate's feeds (errors and warnings alike), plus what RSS 2.0,
RFC 4287 (Atom), RFC 4151 (tag URIs), RFC 5005 (archives) and JSON Feed 1.1 require. A valid
document gives `[]`, so tests assert `check_rss(body) == []` and read the violations on failure.

Not covered: checks that need the network or the clock (self link matching the fetched URL,
dates in the future), and HTML well-formedness beyond what an HTML parser reports.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

ATOM = "http://www.w3.org/2005/Atom"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
DC = "http://purl.org/dc/elements/1.1/"
FH = "http://purl.org/syndication/history/1.0"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"

# RFC 4151 as the validator reads it: lowercase authority, a year (-month(-day)), ASCII specific.
TAG_URI = re.compile(
    r"^tag:([a-z0-9\-._]+?@)?[a-z0-9.\-]+?,\d{4}(-\d{2}(-\d{2})?)?:"
    r"[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,]*(#[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,]*)?$"
)
# RFC 2822 as RSS 2.0 wants it (four-digit year), with a numeric zone or GMT/UT.
RFC822 = re.compile(
    r"^(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?\d{1,2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d(:\d\d)? "
    r"([+-]\d{4}|GMT|UT)$"
)
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
MEDIA_TYPE = re.compile(r"^[^\s()<>,;:\\\"/\[\]?=]+/[^\s()<>,;:\\\"/\[\]?=]+$")
LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
# The validator calls dates before 1990 implausible.
PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)

# Atom link relations the validator knows (anything else must be an absolute URI).
LINK_RELATIONS = frozenset(
    {
        "alternate", "current", "describedby", "edit", "edit-media", "enclosure", "first", "hub",
        "last", "license", "next", "next-archive", "payment", "prev-archive", "previous",
        "related", "replies", "search", "self", "service", "up", "via",
    }
)  # fmt: skip
FEED_HISTORY = frozenset({"current", "first", "last", "next", "next-archive", "prev-archive"})


# HTML the validator accepts in content without a "security risk" warning.
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


SAFE_ELEMENTS = _words(
    """a abbr acronym address area article aside audio b bdi big blockquote br button canvas
    caption center cite code col colgroup command data datagrid datalist dd del details dfn
    dialog dir div dl dt em eventsource fieldset figcaption figure footer font form header h1
    h2 h3 h4 h5 h6 hgroup hr i img input ins keygen kbd label legend li m main map mark menu
    meter multicol nav nextid ol output optgroup option p picture pre progress q rp rt ruby s
    samp section select small sound source spacer span strike strong sub summary sup table
    tbody td template textarea time tfoot th thead tr track tt u ul var video noscript
    wbr"""
)
SAFE_ATTRIBUTES = _words(
    """abbr accept accept-charset accesskey action align allow allowfullscreen alt as autoplay
    autocapitalize autocomplete autofocus axis background balance bgcolor border bordercolor
    cellpadding cellspacing ch char charoff choff charset checked cite class clear color cols
    colspan compact contenteditable coords crossorigin data datetime decoding default delay
    dir dirname disabled download draggable enctype end face for form frame headers height
    hidden high href hreflang hspace icon id inputmode is ismap itemid itemprop itemref
    itemscope itemtype kind label lang loading list longdesc loop low max maxlength media
    method min minlength multiple muted name nohref nonce noshade nowrap open optimum pattern
    ping placeholder playsinline poster preload prompt radiogroup readonly referrerpolicy rel
    rev reversed rows rowspan rules scope selected shape size sizes span spellcheck src srclang
    srcset start step summary tabindex target template title translate type usemap valign
    value volume vspace width wrap xml:lang xmlns"""
)
URL_ATTRIBUTES = frozenset({"href", "src", "cite", "poster", "longdesc", "action", "background"})
# An HTML end tag in plain text: the validator's "should not contain HTML".
END_TAG = re.compile(r"</([A-Za-z][A-Za-z0-9]*)>")
# '&' and '<' escaped with entity names in plain text: the validator wants hex references.
NAMED_ESCAPE = re.compile(rb"&(amp|lt);")


# --- shared -------------------------------------------------------------------------------------


def parse_xml(body: bytes) -> tuple[etree._Element | None, list[str]]:
    """Well-formed XML, parsed without entity expansion or network access."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        return None, [f"document: not well-formed XML: {exc}"]
    problems = []
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        problems.append("document: must not declare a DOCTYPE or entities")
    if not body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>") and not body.startswith(
        b'<?xml version="1.0" encoding="UTF-8"?>'
    ):
        problems.append("document: must start with an XML 1.0 declaration naming UTF-8")
    return root, problems


def is_absolute(url: str | None) -> bool:
    """An absolute http(s) URL with a host, and no characters a URI cannot hold raw."""
    if not url or url != url.strip() or any(c in url for c in ' <>"{}|\\^`'):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def rfc822_problem(value: str | None) -> str | None:
    if not value:
        return "is missing"
    if not RFC822.match(value):
        return f"{value!r} is not an RFC 822 date with a four-digit year and a numeric zone or GMT"
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return f"{value!r} is not a real date"
    if moment.tzinfo is None:
        return f"{value!r} has no time zone"
    if "," in value and moment.strftime("%a") != value[:3]:
        return f"{value!r} names the wrong day of the week"
    if moment < PLAUSIBLE:
        return f"{value!r} is implausibly old"
    return None


def rfc3339_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "is missing"
    if not RFC3339.match(value):
        return f"{value!r} is not an RFC 3339 date-time with a time zone"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"{value!r} is not a real date"
    if moment < PLAUSIBLE:
        return f"{value!r} is implausibly old"
    return None


def tag_uri_problem(value: str | None) -> str | None:
    if not value:
        return "is missing"
    if not TAG_URI.match(value):
        return f"{value!r} is not a tag: URI (RFC 4151: tag:domain,YYYY:specific)"
    return None


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def html_problems(where: str, markup: str) -> list[str]:
    """Escaped HTML (as decoded from the feed): nothing that runs, every link absolute."""
    problems = []
    if re.search(r"<script", markup, re.I):
        problems.append(f"{where}: contains a <script")
    if re.search(r"javascript:", markup, re.I):
        problems.append(f"{where}: contains javascript:")
    parser = _Html()
    parser.feed(markup)
    parser.close()
    for tag, attrs in parser.tags:
        if tag not in SAFE_ELEMENTS:
            problems.append(f"{where}: <{tag}> is a security risk")
        for name, value in attrs:
            if name.startswith("on"):
                problems.append(f"{where}: <{tag} {name}=…> is an event handler")
            elif name == "style":
                problems.append(f"{where}: <{tag} style=…> may be dangerous")
            elif name not in SAFE_ATTRIBUTES and not name.startswith("data-"):
                problems.append(f"{where}: <{tag} {name}=…> is a security risk")
            if name in URL_ATTRIBUTES and value is not None:
                url = value.strip()
                if not url.startswith("mailto:") and not is_absolute(url):
                    problems.append(f"{where}: <{tag} {name}={url!r}> is not an absolute URL")
    return problems


def plain_text_problems(where: str, text: str | None, *, required: bool = True) -> list[str]:
    """Text that readers must not take for HTML."""
    if not text or not text.strip():
        return [f"{where}: is missing or blank"] if required else []
    end_tag = END_TAG.search(text)
    if end_tag:
        return [f"{where}: contains HTML ({end_tag.group()!r})"]
    return []


def raw_escape_problems(body: bytes, tags: Iterable[str]) -> list[str]:
    """'&' and '<' in the given plain-text elements must be written &#x26; and &#x3C; in the
    bytes, not &amp; and &lt;: the validator warns otherwise."""
    problems = []
    for tag in tags:
        pattern = re.compile(rb"<" + re.escape(tag.encode()) + rb"(?:\s[^>]*)?>(.*?)</", re.S)
        for match in pattern.finditer(body):
            found = NAMED_ESCAPE.search(match.group(1))
            if found:
                problems.append(
                    f"<{tag}>: writes {found.group().decode()} instead of a hex reference"
                )
    return problems


def _archive_problems(where: str, rels: list[str], is_archive: bool) -> list[str]:
    problems = []
    if is_archive:
        if "current" not in rels:
            problems.append(f"{where}: an archive (fh:archive) needs a rel=current link")
        if "prev-archive" not in rels and "next-archive" not in rels:
            problems.append(f"{where}: an archive needs a prev-archive or next-archive link")
    for rel, count in Counter(rels).items():
        if rel in FEED_HISTORY and count > 1:
            problems.append(f"{where}: {count} rel={rel} links")
    return problems


def _link_problems(where: str, links: list[dict[str, str]]) -> list[str]:
    problems = []
    for link in links:
        rel, href = link.get("rel", "alternate"), link.get("href")
        if rel not in LINK_RELATIONS and not is_absolute(rel):
            problems.append(f"{where}: unregistered link relation {rel!r}")
        if not is_absolute(href):
            problems.append(f"{where}: link rel={rel} href {href!r} is not absolute")
        if "type" in link and not MEDIA_TYPE.match(link["type"]):
            problems.append(f"{where}: link rel={rel} type {link['type']!r} is not a media type")
        if rel == "self" and link.get("type") not in (
            "application/atom+xml",
            "application/rss+xml",
        ):
            problems.append(f"{where}: the self link needs an Atom or RSS media type")
    alternates = Counter(
        (link.get("type"), link.get("hreflang"))
        for link in links
        if link.get("rel", "alternate") == "alternate"
    )
    for (media, lang), count in alternates.items():
        if count > 1:
            problems.append(f"{where}: {count} alternate links with type={media} hreflang={lang}")
    return problems


# --- RSS 2.0 ------------------------------------------------------------------------------------


def check_rss(body: bytes) -> list[str]:
    root, problems = parse_xml(body)
    if root is None:
        return problems
    if root.tag != "rss" or root.get("version") != "2.0":
        return [*problems, "rss: the root must be <rss version='2.0'>"]
    channels = root.findall("channel")
    if len(channels) != 1:
        return [*problems, f"rss: {len(channels)} <channel> elements, expected 1"]
    channel = channels[0]
    problems += raw_escape_problems(body, ["title", "category", "dc:creator", "author"])
    for name in ("title", "description"):
        problems += plain_text_problems(f"channel/{name}", channel.findtext(name))
    link = channel.findtext("link")
    if not is_absolute(link):
        problems.append(f"channel/link: {link!r} is not an absolute URL")
    links = [dict(e.attrib) for e in channel.iterfind(f"{{{ATOM}}}link")]
    problems += _link_problems("channel/atom:link", links)
    selves = [lk for lk in links if lk.get("rel") == "self"]
    if len(selves) != 1:
        problems.append(f"channel: {len(selves)} atom:link rel=self, expected 1")
    elif link is not None and selves[0].get("href") == link:
        problems.append("channel/link: points at the feed itself, not its HTML page")
    problems += _archive_problems(
        "channel",
        [lk.get("rel", "alternate") for lk in links],
        channel.find(f"{{{FH}}}archive") is not None,
    )
    language = channel.findtext("language")
    if language is not None and not LANGUAGE.match(language):
        problems.append(f"channel/language: {language!r} is not a language code")
    for name in ("lastBuildDate", "pubDate"):
        if channel.find(name) is not None:
            problem = rfc822_problem(channel.findtext(name))
            if problem:
                problems.append(f"channel/{name}: {problem}")
    for name in ("title", "link", "description", "language", "lastBuildDate", "generator"):
        if len(channel.findall(name)) > 1:
            problems.append(f"channel: more than one <{name}>")
    guids: Counter[str] = Counter()
    for number, item in enumerate(channel.iterfind("item"), 1):
        problems += _rss_item(f"item {number}", item, guids)
    problems += [f"guid {g!r}: used by {n} items" for g, n in guids.items() if n > 1]
    return problems


def _rss_item(where: str, item: etree._Element, guids: Counter[str]) -> list[str]:
    problems = plain_text_problems(f"{where}/title", item.findtext("title"))
    for category in item.iterfind("category"):
        problems += plain_text_problems(f"{where}/category", category.text)
    link = item.findtext("link")
    if not is_absolute(link):
        problems.append(f"{where}/link: {link!r} is not an absolute URL")
    guid = item.find("guid")
    if guid is None or not (guid.text or "").strip():
        problems.append(f"{where}: has no guid")
    else:
        value = guid.text or ""
        guids[value] += 1
        permalink = guid.get("isPermaLink", "true")
        if permalink not in ("true", "false"):
            problems.append(f"{where}/guid: isPermaLink must be 'true' or 'false'")
        if permalink == "true" and not is_absolute(value):
            problems.append(f"{where}/guid: {value!r} is not a URL, so isPermaLink must be false")
    problem = rfc822_problem(item.findtext("pubDate"))
    if problem:
        problems.append(f"{where}/pubDate: {problem}")
    for name in ("title", "link", "description", "guid", "pubDate", f"{{{CONTENT}}}encoded"):
        if len(item.findall(name)) > 1:
            problems.append(f"{where}: more than one <{name}>")
    enclosures = item.findall("enclosure")
    if len(enclosures) > 1:
        problems.append(f"{where}: {len(enclosures)} enclosures; RSS allows one")
    for enclosure in enclosures:
        if not is_absolute(enclosure.get("url")):
            problems.append(f"{where}/enclosure: url {enclosure.get('url')!r} is not absolute")
        if not (enclosure.get("length") or "").isdigit():
            problems.append(f"{where}/enclosure: length {enclosure.get('length')!r} is not a size")
        if not MEDIA_TYPE.match(enclosure.get("type") or ""):
            problems.append(
                f"{where}/enclosure: type {enclosure.get('type')!r} is not a media type"
            )
    children = [child.tag for child in item]
    encoded = f"{{{CONTENT}}}encoded"
    if encoded in children and (
        "description" not in children or children.index("description") > children.index(encoded)
    ):
        problems.append(f"{where}: <description> must come before <content:encoded>")
    if item.find("author") is not None and item.find(f"{{{DC}}}creator") is not None:
        problems.append(f"{where}: both <author> and <dc:creator>")
    language = item.findtext(f"{{{DC}}}language")
    if language is not None and not LANGUAGE.match(language):
        problems.append(f"{where}/dc:language: {language!r} is not a language code")
    for name, label in (("description", "description"), (encoded, "content:encoded")):
        markup = item.findtext(name)
        if markup is not None:
            problems += html_problems(f"{where}/{label}", markup)
    atom_links = [dict(e.attrib) for e in item.iterfind(f"{{{ATOM}}}link")]
    problems += _link_problems(f"{where}/atom:link", atom_links)
    return problems


# --- Atom 1.0 -----------------------------------------------------------------------------------


def _atom(name: str) -> str:
    return f"{{{ATOM}}}{name}"


def check_atom(body: bytes) -> list[str]:
    root, problems = parse_xml(body)
    if root is None:
        return problems
    if root.tag != _atom("feed"):
        return [*problems, "feed: the root must be an Atom <feed>"]
    problems += raw_escape_problems(body, ["title", "summary", "subtitle", "rights", "name"])
    feed_id = root.findtext(_atom("id"))
    if not feed_id or not (is_absolute(feed_id) or TAG_URI.match(feed_id)):
        problems.append(f"feed/id: {feed_id!r} is not an absolute URI")
    problems += _text_construct("feed/title", root.find(_atom("title")))
    for name in ("subtitle", "rights"):
        if root.find(_atom(name)) is not None:
            problems += _text_construct(f"feed/{name}", root.find(_atom(name)))
    problem = rfc3339_problem(root.findtext(_atom("updated")))
    if problem:
        problems.append(f"feed/updated: {problem}")
    for name in ("id", "title", "subtitle", "updated", "rights", "icon", "logo", "generator"):
        if len(root.findall(_atom(name))) > 1:
            problems.append(f"feed: more than one <{name}>")
    for name in ("icon", "logo"):
        if root.find(_atom(name)) is not None and not is_absolute(root.findtext(_atom(name))):
            problems.append(f"feed/{name}: is not an absolute URL")
    links = [dict(e.attrib) for e in root.iterfind(_atom("link"))]
    problems += _link_problems("feed/link", links)
    rels = [lk.get("rel", "alternate") for lk in links]
    if rels.count("self") != 1:
        problems.append(f"feed: {rels.count('self')} link rel=self, expected 1")
    problems += _archive_problems("feed", rels, root.find(f"{{{FH}}}archive") is not None)
    feed_author = _authors_problems("feed", root)
    has_feed_author = root.find(_atom("author")) is not None
    problems += feed_author
    ids: Counter[str] = Counter()
    updated: Counter[str] = Counter()
    for number, entry in enumerate(root.iterfind(_atom("entry")), 1):
        problems += _atom_entry(f"entry {number}", entry, has_feed_author, ids, updated)
    problems += [f"entry id {i!r}: used by {n} entries" for i, n in ids.items() if n > 1]
    problems += [f"updated {u!r}: shared by {n} entries" for u, n in updated.items() if n > 1]
    return problems


def _text_construct(where: str, element: etree._Element | None) -> list[str]:
    if element is None:
        return [f"{where}: is missing"]
    kind = element.get("type", "text")
    if kind not in ("text", "html", "xhtml"):
        return [f"{where}: type {kind!r} is not text, html or xhtml"]
    if kind == "html":
        return html_problems(where, element.text or "")
    return plain_text_problems(where, element.text)


def _authors_problems(where: str, element: etree._Element) -> list[str]:
    problems = []
    for author in element.iterfind(_atom("author")):
        problems += plain_text_problems(f"{where}/author/name", author.findtext(_atom("name")))
        uri = author.findtext(_atom("uri"))
        if uri is not None and not is_absolute(uri):
            problems.append(f"{where}/author/uri: {uri!r} is not absolute")
    return problems


def _atom_entry(
    where: str,
    entry: etree._Element,
    has_feed_author: bool,
    ids: Counter[str],
    updated: Counter[str],
) -> list[str]:
    problems = []
    entry_id = entry.findtext(_atom("id"))
    problem = tag_uri_problem(entry_id)
    if problem:
        problems.append(f"{where}/id: {problem}")
    if entry_id:
        ids[entry_id] += 1
    problems += _text_construct(f"{where}/title", entry.find(_atom("title")))
    problem = rfc3339_problem(entry.findtext(_atom("updated")))
    if problem:
        problems.append(f"{where}/updated: {problem}")
    else:
        updated[entry.findtext(_atom("updated")) or ""] += 1
    if entry.find(_atom("published")) is not None:
        problem = rfc3339_problem(entry.findtext(_atom("published")))
        if problem:
            problems.append(f"{where}/published: {problem}")
    for name in ("id", "title", "updated", "published", "summary", "content", "rights"):
        if len(entry.findall(_atom(name))) > 1:
            problems.append(f"{where}: more than one <{name}>")
    if entry.find(_atom("author")) is None and not has_feed_author:
        problems.append(f"{where}: no author, and none on the feed")
    problems += _authors_problems(where, entry)
    links = [dict(e.attrib) for e in entry.iterfind(_atom("link"))]
    problems += _link_problems(f"{where}/link", links)
    rels = [lk.get("rel", "alternate") for lk in links]
    if "alternate" not in rels:
        problems.append(f"{where}: no alternate link")
    for rel in set(rels) & FEED_HISTORY:
        problems.append(f"{where}: feed-history relation {rel!r} on an entry")
    for link in links:
        if link.get("rel") == "enclosure":
            if not (link.get("length") or "").isdigit():
                problems.append(f"{where}/enclosure: length {link.get('length')!r} is not a size")
            if "type" not in link:
                problems.append(f"{where}/enclosure: has no type")
    content = entry.find(_atom("content"))
    summary = entry.find(_atom("summary"))
    if content is not None:
        if content.get("src") is not None:
            problems.append(f"{where}/content: out-of-line content")
        problems += _text_construct(f"{where}/content", content)
        if summary is None:
            problems.append(f"{where}: content without a summary")
    if summary is not None:
        problems += _text_construct(f"{where}/summary", summary)
    elif content is None:
        problems.append(f"{where}: neither summary nor content")
    for category in entry.iterfind(_atom("category")):
        if not category.get("term"):
            problems.append(f"{where}/category: has no term")
        scheme = category.get("scheme")
        if scheme is not None and not is_absolute(scheme):
            problems.append(f"{where}/category: scheme {scheme!r} is not absolute")
        problems += plain_text_problems(
            f"{where}/category/@label", category.get("label"), required=False
        )
    return problems


# --- JSON Feed 1.1 ------------------------------------------------------------------------------

_JSON_FEED_KEYS = frozenset(
    {
        "version", "title", "home_page_url", "feed_url", "description", "user_comment",
        "next_url", "icon", "favicon", "authors", "author", "language", "expired", "hubs",
        "items",
    }
)  # fmt: skip
_JSON_ITEM_KEYS = frozenset(
    {
        "id", "url", "external_url", "title", "content_html", "content_text", "summary",
        "image", "banner_image", "date_published", "date_modified", "authors", "author",
        "tags", "language", "attachments",
    }
)  # fmt: skip


def check_json(body: bytes) -> list[str]:
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"document: not UTF-8 JSON: {exc}"]
    if not isinstance(document, dict):
        return ["document: not a JSON object"]
    problems = list(_unknown_keys("feed", document, _JSON_FEED_KEYS))
    if document.get("version") != JSON_FEED_VERSION:
        problems.append(f"feed/version: {document.get('version')!r} is not {JSON_FEED_VERSION}")
    if not isinstance(document.get("title"), str) or not document["title"].strip():
        problems.append("feed/title: is missing or blank")
    if not is_absolute(document.get("feed_url")):
        problems.append(f"feed/feed_url: {document.get('feed_url')!r} is not absolute")
    for key in ("home_page_url", "next_url", "icon", "favicon"):
        if key in document and not is_absolute(document[key]):
            problems.append(f"feed/{key}: {document[key]!r} is not absolute")
    if "language" in document and not LANGUAGE.match(str(document["language"])):
        problems.append(f"feed/language: {document['language']!r} is not a language tag")
    if "expired" in document and not isinstance(document["expired"], bool):
        problems.append("feed/expired: is not a boolean")
    problems += _json_authors("feed", document)
    hubs = document.get("hubs", [])
    if not isinstance(hubs, list) or not all(
        isinstance(h, dict) and isinstance(h.get("type"), str) and is_absolute(h.get("url"))
        for h in hubs
    ):
        problems.append("feed/hubs: must be a list of {type, url} with absolute URLs")
    items = document.get("items")
    if not isinstance(items, list):
        return [*problems, "feed/items: is missing or not a list"]
    ids: Counter[str] = Counter()
    for number, item in enumerate(items, 1):
        problems += _json_item(f"item {number}", item, ids)
    problems += [f"item id {i!r}: used by {n} items" for i, n in ids.items() if n > 1]
    return problems


def _unknown_keys(where: str, obj: dict[str, Any], known: frozenset[str]) -> Iterator[str]:
    for key in obj:
        if key not in known and not key.startswith("_"):
            yield f"{where}: unknown key {key!r} (extensions start with '_')"


def _json_authors(where: str, obj: dict[str, Any]) -> list[str]:
    authors = obj.get("authors", [])
    if not isinstance(authors, list):
        return [f"{where}/authors: is not a list"]
    problems = []
    for author in authors:
        if not isinstance(author, dict) or not any(k in author for k in ("name", "url", "avatar")):
            problems.append(f"{where}/authors: an author needs a name, url or avatar")
        elif "url" in author and not is_absolute(author["url"]):
            problems.append(f"{where}/authors: url {author['url']!r} is not absolute")
    return problems


def _json_item(where: str, item: Any, ids: Counter[str]) -> list[str]:
    if not isinstance(item, dict):
        return [f"{where}: is not an object"]
    problems = list(_unknown_keys(where, item, _JSON_ITEM_KEYS))
    item_id = item.get("id")
    if not isinstance(item_id, str) or not item_id:
        problems.append(f"{where}/id: is missing or not a string")
    else:
        ids[item_id] += 1
    if not is_absolute(item.get("url")):
        problems.append(f"{where}/url: {item.get('url')!r} is not absolute")
    for key in ("date_published", "date_modified"):
        if key == "date_published" or key in item:
            problem = rfc3339_problem(item.get(key))
            if problem:
                problems.append(f"{where}/{key}: {problem}")
    html, text = item.get("content_html"), item.get("content_text")
    if not isinstance(html, str) and not isinstance(text, str):
        problems.append(f"{where}: needs content_html or content_text")
    if isinstance(html, str):
        problems += html_problems(f"{where}/content_html", html)
    for key in ("title", "summary", "content_text"):
        if key in item and not isinstance(item[key], str):
            problems.append(f"{where}/{key}: is not a string")
    tags = item.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        problems.append(f"{where}/tags: must be a list of strings")
    if "language" in item and not LANGUAGE.match(str(item["language"])):
        problems.append(f"{where}/language: {item['language']!r} is not a language tag")
    problems += _json_authors(where, item)
    for attachment in item.get("attachments", []):
        if not isinstance(attachment, dict):
            problems.append(f"{where}/attachments: an attachment is not an object")
            continue
        if not is_absolute(attachment.get("url")):
            problems.append(f"{where}/attachments: url {attachment.get('url')!r} is not absolute")
        if not MEDIA_TYPE.match(str(attachment.get("mime_type", ""))):
            problems.append(f"{where}/attachments: mime_type is missing or not a media type")
        size = attachment.get("size_in_bytes", 0)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            problems.append(f"{where}/attachments: size_in_bytes {size!r} is not a size")
    return problems
