"""What the readers' pages share: the current config, the signing secrets, token checks and
one plain HTML page template (templates/web/). Pages are never cached, never send a referrer
(their URLs carry tokens), and work without JavaScript."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from syndicate.config import Config
from syndicate.digest.send import signing_secret
from syndicate.store import Store
from syndicate.tokens import Claims, TokenError, verify

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "web"
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request's body, or None when it is longer than `limit` bytes: a declared length
    over the limit is refused before anything is read, and a body sent without one is read
    no further than the limit (never the gigabyte a client may try to send)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


@cache
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


class Pages:
    """`config` is called per request, so a reloaded config (SIGHUP) is used at once."""

    def __init__(
        self, config: Callable[[], Config], store: Store, clock: Callable[[], datetime]
    ) -> None:
        self.current_config, self.store, self.clock = config, store, clock

    @property
    def config(self) -> Config:
        return self.current_config()

    def secrets(self) -> list[str]:
        """The current signing secret first, then the old ones still honoured."""
        current = signing_secret(self.config, self.store)
        return [current, *(s.get_secret_value() for s in self.config.mail.old_secrets)]

    def claims(self, token: str, purpose: str) -> Claims | None:
        try:
            return verify(token, self.secrets(), purpose, self.clock())
        except TokenError:
            return None

    def broken(self) -> Response:
        return self.page(
            400,
            "This link does not work",
            "It may have been cut short in your mail program, or it is no longer valid. "
            "Use the link in a recent message instead.",
        )

    def list_title(self, slug: str) -> str:
        mailing_list = self.config.lists.get(slug)
        return mailing_list.title if mailing_list else slug

    def topic_boxes(self, allowed: list[str], checked: set[str]) -> list[tuple[str, str, bool]]:
        """(slug, title, checked) for each topic a form offers."""
        topics = self.config.topics
        return [(t, topics[t].title if t in topics else t, t in checked) for t in allowed]

    def page(
        self,
        status: int,
        heading: str,
        message: str = "",
        *,
        template: str = "page.html",
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        site = self.config.site
        html = (
            _environment()
            .get_template(template)
            .render(
                language=site.language,
                site_title=site.title,
                home=f"{site.base_url}/",
                heading=heading,
                message=message,
                **context,
            )
        )
        return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})
