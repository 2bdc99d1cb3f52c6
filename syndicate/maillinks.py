"""The pages behind the links in every digest: unsubscribe (with RFC 8058 one-click), and
preferences (choose topics, leave this list, or leave every list).

GET shows a page with a button (mail scanners follow links; a GET never changes anything).
POST acts at once, and so does the one-click POST a mail client sends with the body
`List-Unsubscribe=One-Click`. Both are idempotent. The token is the credential: it is signed
for one address and one list, so no cookie or form token is needed, and it is never logged
or sent on as a referrer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from syndicate import selfservice
from syndicate.config import Config
from syndicate.selfservice import FormError
from syndicate.store import Store
from syndicate.store import suppressions as store_suppressions
from syndicate.store.suppressions import EVERY_LIST, Reason
from syndicate.subscribeform import SubscribeForm
from syndicate.subscriptions import allowed_topics
from syndicate.tokens import Claims
from syndicate.webpages import Pages, read_body

ONE_CLICK = b"List-Unsubscribe=One-Click"
MAX_FORM = 16 * 1024  # bytes: a preferences form is a few hundred


def routes(
    config: Callable[[], Config], store: Store, clock: Callable[[], datetime]
) -> list[BaseRoute]:
    """Every page for readers: the subscribe form and confirm link, and the digests' links."""
    return [
        *SubscribeForm(config, store, clock).routes(),
        *MailLinks(config, store, clock).routes(),
    ]


class MailLinks(Pages):
    def routes(self) -> list[BaseRoute]:
        methods = ["GET", "HEAD", "POST"]
        return [
            Route("/unsubscribe/{token}", self.unsubscribe, methods=methods),
            Route("/preferences/{token}", self.preferences, methods=methods),
        ]

    def _suppress(self, address: str, list_slug: str, source: str) -> None:
        with self.store.begin() as conn:
            store_suppressions.suppress(
                conn, address, list_slug, Reason.UNSUBSCRIBED, source, self.clock()
            )

    async def unsubscribe(self, request: Request) -> Response:
        claims = self.claims(request.path_params["token"], "unsubscribe")
        if claims is None:
            return self.broken()
        title = self.list_title(claims.list_slug)
        if request.method != "POST":
            return self.page(
                200,
                "Unsubscribe?",
                f"Stop sending “{title}” to {claims.address}?",
                action="Unsubscribe",
            )
        body = await read_body(request, MAX_FORM)
        if body is None:
            return self.page(413, "Too large", "That request was too large; nothing changed.")
        source = "one-click" if body.strip() == ONE_CLICK else "unsubscribe page"
        self._suppress(claims.address, claims.list_slug, source)
        return self.page(200, "Unsubscribed", f"{claims.address} will get no more “{title}”.")

    async def preferences(self, request: Request) -> Response:
        claims = self.claims(request.path_params["token"], "manage")
        if claims is None:
            return self.broken()
        if request.method != "POST":
            return self._preferences(claims, 200, "")
        body = await read_body(request, MAX_FORM)
        if body is None:
            return self._preferences(claims, 413, "That form was too large; nothing changed.")
        form = parse_qs(body.decode(errors="replace"))
        title = self.list_title(claims.list_slug)
        if "save" in form and claims.list_slug in self.config.lists:
            try:
                selfservice.choose_topics(
                    self.config,
                    self.store,
                    claims.list_slug,
                    claims.address,
                    form.get("topics", []),
                    self.clock(),
                )
            except FormError as exc:
                return self._preferences(claims, 400, str(exc))
            return self._preferences(claims, 200, "Saved: your next digest has these topics.")
        choice = form.get("leave", [""])[0]
        if choice not in ("list", "all"):
            return self._preferences(claims, 400, "Nothing changed: choose one of the buttons.")
        everything = choice == "all"
        self._suppress(
            claims.address, EVERY_LIST if everything else claims.list_slug, "preferences page"
        )
        what = "mail from any of our lists" if everything else f"“{title}”"
        return self.page(200, "Unsubscribed", f"{claims.address} will get no more {what}.")

    def _preferences(self, claims: Claims, status: int, note: str) -> Response:
        slug = claims.list_slug
        title = self.list_title(slug)
        mailing_list = self.config.lists.get(slug)
        topics: list[tuple[str, str, bool]] = []
        if mailing_list is not None:
            allowed = allowed_topics(self.config, mailing_list)
            mine = selfservice.current_topics(self.config, self.store, slug, claims.address)
            topics = self.topic_boxes(allowed, set(mine or allowed))
        choices = [("list", f"Stop “{title}”"), ("all", "Stop every list from us")]
        message = note or f"{claims.address} receives “{title}”."
        return self.page(status, "Your subscription", message, topics=topics, choices=choices)
