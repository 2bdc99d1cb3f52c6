"""The pages behind the links in every digest: unsubscribe (with RFC 8058 one-click), and
preferences (for now: leave this list, or leave every list).

GET shows a page with a button (mail scanners follow links; a GET never unsubscribes).
POST unsubscribes at once, and so does the one-click POST a mail client sends with the body
`List-Unsubscribe=One-Click`. Both are idempotent. The token is the credential: it is signed
for one address and one list, so no cookie or form token is needed, and it is never logged
or sent on as a referrer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from syndicate.config import Config
from syndicate.digest.send import signing_secret
from syndicate.store import Store
from syndicate.store import suppressions as store_suppressions
from syndicate.store.suppressions import EVERY_LIST, Reason
from syndicate.tokens import Claims, TokenError, verify

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "web"
ONE_CLICK = b"List-Unsubscribe=One-Click"
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@cache
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


class MailLinks:
    """`config` is called per request, so a reloaded config (SIGHUP) is used at once."""

    def __init__(
        self, config: Callable[[], Config], store: Store, clock: Callable[[], datetime]
    ) -> None:
        self.current_config, self.store, self.clock = config, store, clock

    @property
    def config(self) -> Config:
        return self.current_config()

    def routes(self) -> list[BaseRoute]:
        methods = ["GET", "HEAD", "POST"]
        return [
            Route("/unsubscribe/{token}", self.unsubscribe, methods=methods),
            Route("/preferences/{token}", self.preferences, methods=methods),
        ]

    def secrets(self) -> list[str]:
        """The current signing secret first, then the old ones still honoured."""
        current = signing_secret(self.config, self.store)
        return [current, *(s.get_secret_value() for s in self.config.mail.old_secrets)]

    def _claims(self, token: str, purpose: str) -> Claims | None:
        try:
            return verify(token, self.secrets(), purpose, self.clock())
        except TokenError:
            return None

    def _broken(self) -> Response:
        return self._page(
            400,
            "This link does not work",
            "It may have been cut short in your mail program, or it is no longer valid. "
            "Use the link in a recent message instead.",
        )

    def _suppress(self, address: str, list_slug: str, source: str) -> None:
        with self.store.begin() as conn:
            store_suppressions.suppress(
                conn, address, list_slug, Reason.UNSUBSCRIBED, source, self.clock()
            )

    async def unsubscribe(self, request: Request) -> Response:
        claims = self._claims(request.path_params["token"], "unsubscribe")
        if claims is None:
            return self._broken()
        title = self._list_title(claims.list_slug)
        if request.method != "POST":
            return self._page(
                200,
                "Unsubscribe?",
                f"Stop sending “{title}” to {claims.address}?",
                action="Unsubscribe",
            )
        body = await request.body()
        source = "one-click" if body.strip() == ONE_CLICK else "unsubscribe page"
        self._suppress(claims.address, claims.list_slug, source)
        return self._page(200, "Unsubscribed", f"{claims.address} will get no more “{title}”.")

    async def preferences(self, request: Request) -> Response:
        """For now: leave this list, or every list. Choosing topics comes with self-service
        subscriptions."""
        claims = self._claims(request.path_params["token"], "manage")
        if claims is None:
            return self._broken()
        title = self._list_title(claims.list_slug)
        if request.method != "POST":
            choices = [("list", f"Stop “{title}”"), ("all", "Stop every list from us")]
            message = f"{claims.address} receives “{title}”."
            return self._page(200, "Your subscription", message, choices=choices)
        choice = parse_qs((await request.body()).decode(errors="replace")).get("leave", [""])[0]
        if choice not in ("list", "all"):
            return self._page(400, "Nothing changed", "Choose one of the buttons.")
        everything = choice == "all"
        self._suppress(
            claims.address, EVERY_LIST if everything else claims.list_slug, "preferences page"
        )
        what = "mail from any of our lists" if everything else f"“{title}”"
        return self._page(200, "Unsubscribed", f"{claims.address} will get no more {what}.")

    def _list_title(self, slug: str) -> str:
        mailing_list = self.config.lists.get(slug)
        return mailing_list.title if mailing_list else slug

    def _page(
        self,
        status: int,
        heading: str,
        message: str,
        action: str | None = None,
        choices: list[tuple[str, str]] | None = None,
    ) -> Response:
        site = self.config.site
        template = _environment().get_template("page.html")
        html = template.render(
            language=site.language,
            site_title=site.title,
            home=f"{site.base_url}/",
            heading=heading,
            message=message,
            action=action,
            choices=choices or [],
        )
        return HTMLResponse(html, status_code=status, headers=HEADERS)
