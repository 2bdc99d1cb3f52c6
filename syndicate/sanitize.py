"""One allow-list for every piece of HTML that reaches a feed, a page or an email."""

from __future__ import annotations

import re
from functools import partial
from urllib.parse import urljoin, urlsplit

import nh3

from syndicate.text import UNSAFE_IN_URL

# nh3's defaults, less what feed validators call a security risk or that has no place in a
# release: <bdo> (a bidi override, whose text is kept) and <rtc> among them.
_TAGS = nh3.ALLOWED_TAGS - {
    "area", "map", "nav", "header", "footer", "center", "hgroup", "bdo", "rtc",
}  # fmt: skip
_SCHEMES = {"http", "https", "mailto"}
# Text that scanners (and the W3C feed validator) take for a script URL wherever it appears;
# written with a character reference, it reads the same and can never be one.
_SCRIPT_SCHEME = re.compile(r"(?i)(java|vb)script:")


def safe_url(url: str) -> str:
    """`url` with surrounding white space dropped and every character a URI cannot hold raw
    percent-encoded ('a b' → 'a%20b'); '%' and non-ASCII are left as they are."""
    return UNSAFE_IN_URL.sub(lambda m: f"%{ord(m.group()):02X}", url.strip())


def _attribute(base_url: str, tag: str, name: str, value: str) -> str | None:
    """nh3's `attribute_filter`, called before its own URL checks: link targets are made
    valid URIs; `cite`, which nh3 neither resolves nor checks, is made absolute and kept only
    when it is http(s)."""
    if name in ("href", "src"):
        return safe_url(value)
    if name == "cite":
        absolute = urljoin(base_url, safe_url(value))
        return absolute if urlsplit(absolute).scheme in ("http", "https") else None
    return value


def sanitize_html(html: str, base_url: str) -> str:
    """Strip scripts, handlers and unsafe URLs; make relative links absolute against `base_url`."""
    cleaned = nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style"},
        url_schemes=_SCHEMES,
        url_relative=("rewrite_with_base", base_url),
        attribute_filter=partial(_attribute, base_url),
    ).strip()
    return defuse_script_text(cleaned)


def defuse_script_text(html: str) -> str:
    """'javascript:' written as 'javascript&#58;' in HTML (text or attribute values alike):
    the same characters to a reader, never a URL scheme, and no scanner's false alarm."""
    return _SCRIPT_SCHEME.sub(lambda m: f"{m.group()[:-1]}&#58;", html)
