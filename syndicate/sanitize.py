"""One allow-list for every piece of HTML that reaches a feed, a page or an email."""

from __future__ import annotations

import nh3

_TAGS = nh3.ALLOWED_TAGS - {"area", "map", "nav", "header", "footer", "center", "hgroup"}
_SCHEMES = {"http", "https", "mailto"}


def sanitize_html(html: str, base_url: str) -> str:
    """Strip scripts, handlers and unsafe URLs; make relative links absolute against `base_url`."""
    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style"},
        url_schemes=_SCHEMES,
        url_relative=("rewrite_with_base", base_url),
    ).strip()
