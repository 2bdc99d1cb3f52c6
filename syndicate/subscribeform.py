"""The subscribe form (GET/POST /subscribe) and the confirm link (GET /confirm/{token}).

CSRF: the form carries a token signed for a random nonce that also sits in a SameSite=Strict,
HttpOnly cookie; a POST needs both to match (and a foreign Origin is refused outright), so
another site cannot make a visitor's browser subscribe someone. Abuse: at most one email per
address an hour (in the store, so it holds across processes) and at most POSTS_PER_WINDOW
requests per client address per WINDOW (in memory, per process)."""

from __future__ import annotations

import secrets
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from syndicate import confirmation, selfservice, tokens
from syndicate.config import Config
from syndicate.mailer import Mailer
from syndicate.selfservice import FormError
from syndicate.store import Store
from syndicate.subscriptions import allowed_topics
from syndicate.webpages import Pages, read_body

COOKIE = "syndicate_csrf"
FORM_FOR = timedelta(hours=2)
FORM_SCOPE = "subscribe"  # the list slug slot of a form token
WINDOW = timedelta(minutes=10)
POSTS_PER_WINDOW = 20
MAX_FORM = 16 * 1024


class SubscribeForm(Pages):
    def __init__(
        self, config: Callable[[], Config], store: Store, clock: Callable[[], datetime]
    ) -> None:
        super().__init__(config, store, clock)
        self.recent: defaultdict[str, deque[datetime]] = defaultdict(deque)  # client → POSTs

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/subscribe", self.subscribe, methods=["GET", "HEAD", "POST"]),
            Route("/confirm/{token}", self.confirm, methods=["GET", "HEAD"]),
        ]

    async def subscribe(self, request: Request) -> Response:
        if not any(lst.self_service for lst in self.config.lists.values()):
            return self.page(404, "No lists", "There is no list to subscribe to here.")
        if request.method != "POST":
            query = request.query_params
            return self._form(
                request, 200, {"list": [query.get("list", "")], "topics": [query.get("topic", "")]}
            )
        if self._too_many(request):
            return self.page(
                429,
                "Too many requests",
                "Too many subscribe requests came from your network; try again in a few minutes.",
                headers={"Retry-After": str(int(WINDOW.total_seconds()))},
            )
        body = await read_body(request, MAX_FORM)
        if body is None:
            return self._form(request, 413, error="That form was too large.")
        form = parse_qs(body.decode(errors="replace"))
        if not self._same_origin(request) or not self._csrf_ok(request, form):
            return self._form(
                request, 403, form, error="This form had expired; please send it again."
            )
        try:
            wanted = selfservice.read_form(self.config, form)
        except FormError as exc:
            return self._form(request, 400, form, error=str(exc))
        now = self.clock()
        notice = selfservice.request(self.store, self.config, wanted, now)
        if notice is not None:
            data = confirmation.message(self.config, self.secrets()[0], notice, now)
            mailer = Mailer(self.config.smtp)
            if not await selfservice.send(self.config, self.store, notice, data, now, mailer):
                return self._form(
                    request,
                    503,
                    form,
                    error="We could not send the email just now; please try again later.",
                )
        title = self.list_title(wanted.list_slug)
        return self.page(
            200,
            "Check your inbox",
            f"If {wanted.email} is a working address, a message with a link to confirm "
            f"“{title}” is on its way. The link works for "
            f"{confirmation.CONFIRM_FOR.days} days. Nothing arrived? Look in your spam folder; "
            "you can ask again in an hour.",
        )

    async def confirm(self, request: Request) -> Response:
        claims = self.claims(request.path_params["token"], "confirm")
        if claims is None:
            return self.broken()
        title = self.list_title(claims.list_slug)
        if request.method == "GET" and not selfservice.confirm(
            self.config, self.store, claims, self.clock()
        ):
            return self.broken()
        return self.page(
            200,
            "Subscription confirmed",
            f"{claims.address} will receive “{title}”. Every message has a link to change "
            "your topics or unsubscribe.",
        )

    def _form(
        self,
        request: Request,
        status: int,
        filled: dict[str, list[str]] | None = None,
        error: str = "",
    ) -> Response:
        """The form as `filled` (parsed from a query or a body), with a fresh CSRF token (and
        cookie, unless the browser has one)."""
        config = self.config
        filled = filled or {}
        chosen_list = (filled.get("list") or [""])[0]
        public = {slug: lst for slug, lst in config.lists.items() if lst.self_service}
        lists = [(slug, lst.title) for slug, lst in public.items()]
        offered = sorted(
            {t for lst in public.values() for t in allowed_topics(config, lst)},
            key=list(config.topics).index,
        )
        nonce = request.cookies.get(COOKIE, "")
        if not (20 <= len(nonce) <= 64 and nonce.isascii() and nonce.isalnum()):
            nonce = secrets.token_hex(16)
        now = self.clock()
        csrf = tokens.sign(
            self.secrets()[0], "form", nonce, FORM_SCOPE, issued=now, expires=now + FORM_FOR
        )
        site = urlsplit(config.site.base_url)  # https there, though a proxy speaks http here
        https = request.url.scheme == "https" or (
            site.scheme == "https" and request.url.hostname == site.hostname
        )
        secure = "; Secure" if https else ""
        response = self.page(
            status,
            "Subscribe by email",
            "",
            template="subscribe.html",
            lists=lists,
            chosen_list=chosen_list if chosen_list in public else "",
            topics=self.topic_boxes(offered, set(filled.get("topics", []))),
            email=(filled.get("email") or [""])[0][:320],
            error=error,
            csrf=csrf,
        )
        # No token in this URL; and under the other pages' no-referrer policy a browser
        # would post the form with `Origin: null`, which _same_origin refuses.
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Set-Cookie"] = (
            f"{COOKIE}={nonce}; Path=/; HttpOnly; SameSite=Strict{secure}"
        )
        return response

    def _csrf_ok(self, request: Request, form: dict[str, list[str]]) -> bool:
        nonce = request.cookies.get(COOKIE, "")
        token = (form.get("csrf") or [""])[0]
        claims = self.claims(token, "form")
        return (
            claims is not None
            and bool(nonce)
            and claims.list_slug == FORM_SCOPE
            and secrets.compare_digest(claims.address.encode(), nonce.encode())
        )

    def _same_origin(self, request: Request) -> bool:
        """A browser names the page a POST came from; a foreign one is refused."""
        origin = request.headers.get("origin")
        if origin is None:
            return True  # old browsers, and non-browser clients (which carry no cookie)
        parts = urlsplit(self.config.site.base_url)
        ours = {f"{parts.scheme}://{parts.netloc}", f"{request.url.scheme}://{request.url.netloc}"}
        return origin in ours

    def _too_many(self, request: Request) -> bool:
        client = request.client.host if request.client else ""
        now = self.clock()
        times = self.recent[client]
        while times and times[0] <= now - WINDOW:
            times.popleft()
        if len(times) >= POSTS_PER_WINDOW:
            return True
        times.append(now)
        if len(self.recent) > 10_000:  # forget idle clients; never grow without bound
            for key in [k for k, v in self.recent.items() if not v or v[-1] <= now - WINDOW]:
                del self.recent[key]
        return False
