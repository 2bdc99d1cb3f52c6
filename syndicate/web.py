"""The public site over HTTP: the build's static output, served with the caching feed readers
rely on (strong ETags, 304s, gzip that varies correctly) and nothing they must not see.

Every request looks the path up afresh (and opens the file when it needs its bytes), so a
rebuild (files replaced by rename) is live at once. Only what is derived from a file's bytes
(its hash, its gzip form) is cached, and each cached value is valid only for the exact stat
(inode, mtime, size) it was computed from.

The pure deciders (`parse_path`, `accepts_gzip`, `etag_matches`, `not_modified`) hold the HTTP
rules; `StaticSite` only applies them to files. Files are the hot path (feed readers poll them,
mostly for a 304), so `FilesFirst` hands a request the router would give to the file route
straight to it, past the routing and exception layers that have nothing to do for it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import stat
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote, unquote_to_bytes

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from syndicate.config import Web
from syndicate.errors import SyndicateError
from syndicate.urls import MEDIA_TYPES, NOT_FOUND

ALLOWED_METHODS = ("GET", "HEAD")
GZIP_MIN_SIZE = 1024  # below this, gzip saves less than its header and a round of CPU
INDEX_FILE = "index.html"


@dataclass(frozen=True, slots=True)
class Kind:
    """How a file type is served: its Content-Type, whether gzip helps, whether it is a feed
    (feeds are read cross-origin by web-based readers, so they carry CORS)."""

    content_type: str
    compressible: bool = False
    feed: bool = False


def _text(media_type: str, *, feed: bool = False) -> Kind:
    return Kind(f"{media_type}; charset=utf-8", compressible=True, feed=feed)


# A fixed table rather than `mimetypes`, whose answers depend on the host's /etc/mime.types.
# Every .json the build writes is a JSON Feed.
KINDS: dict[str, Kind] = {
    ".rss": _text(MEDIA_TYPES["rss"], feed=True),
    ".atom": _text(MEDIA_TYPES["atom"], feed=True),
    ".json": _text(MEDIA_TYPES["json"], feed=True),
    ".opml": _text("text/x-opml", feed=True),
    ".xml": _text("application/xml"),
    ".html": _text("text/html"),
    ".css": _text("text/css"),
    ".js": _text("text/javascript"),
    ".txt": _text("text/plain"),
    ".svg": Kind("image/svg+xml", compressible=True),
    ".png": Kind("image/png"),
    ".jpg": Kind("image/jpeg"),
    ".jpeg": Kind("image/jpeg"),
    ".gif": Kind("image/gif"),
    ".webp": Kind("image/webp"),
    ".ico": Kind("image/x-icon"),
    ".pdf": Kind("application/pdf"),
    ".woff2": Kind("font/woff2"),
}
UNKNOWN = Kind("application/octet-stream")


def kind_of(name: str) -> Kind:
    """By the suffix of the last path segment, as `PurePosixPath(name).suffix` reads it (a
    leading or trailing dot is no suffix), without building a path object per request."""
    base = name.rstrip("/").rpartition("/")[2]
    dot = base.rfind(".")
    suffix = base[dot:] if 0 < dot < len(base) - 1 else ""
    return KINDS.get(suffix.lower(), UNKNOWN)


# Deciders: pure functions of request values.

_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f/\\]")


@lru_cache(maxsize=4096)  # pure, and asked for the same few feed paths over and over
def parse_path(raw_path: bytes) -> tuple[str, ...] | None:
    """The segments of a request path, or None when it must not reach the file system.

    Works on the raw, still percent-encoded path, so an encoded slash stays inside its segment
    (and is refused) instead of becoming a separator. Refused: anything not starting with '/',
    empty segments ('//' would make an absolute path), a segment starting with '.' ('..', '.',
    hidden files such as the build's .manifest.json and temp files), backslashes, control
    characters including NUL, and bytes that are not UTF-8. A trailing slash gives a final ''
    segment: the folder's index.html.
    """
    if not raw_path.startswith(b"/"):
        return None
    raw_segments = raw_path[1:].split(b"/")
    last = len(raw_segments) - 1
    segments: list[str] = []
    for position, raw in enumerate(raw_segments):
        if not raw:
            if position != last:
                return None
            segments.append("")
            continue
        try:
            segment = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return None
        if segment.startswith(".") or _FORBIDDEN.search(segment):
            return None
        segments.append(segment)
    return tuple(segments)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether the client accepts gzip (RFC 9110 §12.5.3): listed, or covered by '*', with a
    q-value above zero. An unreadable q-value counts as zero: identity is always safe."""
    weights: dict[str, float] = {}
    for item in (accept_encoding or "").split(","):
        coding, *params = item.split(";")
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0
        weights[coding.strip().lower()] = weight
    for coding in ("gzip", "x-gzip", "*"):
        if coding in weights:
            return weights[coding] > 0
    return False


_ENTITY_TAG = re.compile(r'(?:W/)?"([^"]*)"')


def etag_matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match against our (strong) `etag`: '*' matches any current file, otherwise any
    listed tag with the same opaque value, weak or not (the weak comparison, RFC 9110 §13.1.2)."""
    if if_none_match.strip() == "*":
        return True
    return etag.strip('"') in _ENTITY_TAG.findall(if_none_match)


def not_modified(
    if_none_match: str | None, if_modified_since: str | None, etag: str, mtime: float
) -> bool:
    """Whether a GET or HEAD is answered 304 (RFC 9110 §13.2.2): If-None-Match decides when
    present; If-Modified-Since only without it, and an invalid date is ignored."""
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return int(mtime) <= since.timestamp()  # Last-Modified has whole seconds


@lru_cache(maxsize=4096)
def http_date(mtime: float) -> str:
    """Last-Modified for a file's mtime (a file keeps its mtime until rebuilt: worth caching)."""
    return formatdate(mtime, usegmt=True)


_CONDITIONAL = (b"accept-encoding", b"if-none-match", b"if-modified-since")


def conditional_headers(scope: Scope) -> tuple[str | None, str | None, str | None]:
    """Accept-Encoding, If-None-Match and If-Modified-Since: the first value of each, as
    Starlette's `request.headers.get` gives it, read in one pass over the ASGI scope."""
    found: dict[bytes, str] = {}
    for key, value in scope["headers"]:
        if key in _CONDITIONAL and key not in found:
            found[key] = value.decode("latin-1")
    return (
        found.get(b"accept-encoding"),
        found.get(b"if-none-match"),
        found.get(b"if-modified-since"),
    )


# Caches of values derived from file bytes.

Stamp = tuple[int, int, int]  # inode, mtime_ns, size: a rename or a rewrite changes it
V = TypeVar("V")


def stamp_of(st: os.stat_result) -> Stamp:
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class StampedCache(Generic[V]):
    """Per file path, one value valid only for the stamp it was computed at; least recently
    used paths are dropped once the summed `cost` of values exceeds `budget`. One entry per
    path, so superseded versions of a file do not pile up. Used from the event loop only."""

    def __init__(self, budget: int, cost: Callable[[V], int]) -> None:
        self.budget = budget
        self.cost = cost
        self.total = 0
        self.entries: OrderedDict[str, tuple[Stamp, V]] = OrderedDict()

    def get(self, path: str, stamp: Stamp) -> V | None:
        entry = self.entries.get(path)
        if entry is None or entry[0] != stamp:
            return None
        self.entries.move_to_end(path)
        return entry[1]

    def put(self, path: str, stamp: Stamp, value: V) -> None:
        cost = self.cost(value)
        old = self.entries.pop(path, None)
        if old is not None:
            self.total -= self.cost(old[1])
        if cost > self.budget:
            return
        self.entries[path] = (stamp, value)
        self.total += cost
        while self.total > self.budget:
            _, (_, dropped) = self.entries.popitem(last=False)
            self.total -= self.cost(dropped)


# The applier: files to responses.

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)  # the resolved path must not become a symlink meanwhile
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO in the folder must not hang the server
    | getattr(os, "O_CLOEXEC", 0)
)


def _inside(root: Path, real: Path) -> bool:
    """Whether a resolved path is a visible file under the resolved root: symlinks may point
    elsewhere inside the output, never outside it nor at a hidden file."""
    if not real.is_relative_to(root) or real == root:
        return False
    return not any(part.startswith(".") for part in real.relative_to(root).parts)


def _read(fd: int, size: int = 0) -> bytes:
    """The file's bytes, to the end (it may have grown since `size`, its fstat size, was
    taken). Each read asks for a little more than `size`, not a fixed large buffer: Python
    allocates the whole requested buffer for every read, a costly mmap when it is large."""
    chunks = []
    while chunk := os.read(fd, max(size + 1, 1 << 16)):
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _Prepared(Response):
    """A response whose header list the caller has built already (lower-case latin-1 bytes,
    Content-Length included where due), as Starlette's Response would build it from a dict;
    for the file path, which answers most requests."""

    def __init__(self, status: int, raw_headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        self.raw_headers = raw_headers


_VARY = (b"vary", b"Accept-Encoding")
_CORS = (
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"ETag"),  # for conditional GET from JS
)
_GZIP = (b"content-encoding", b"gzip")
_NOSNIFF = (b"x-content-type-options", b"nosniff")


def _respond(request: Request, status: int, headers: dict[str, str], body: bytes) -> Response:
    """HEAD gets the GET headers, Content-Length included, and no body."""
    headers["x-content-type-options"] = "nosniff"
    if request.method == "HEAD":
        if status != 304:
            headers["content-length"] = str(len(body))
        body = b""
    return Response(body, status_code=status, headers=headers)


def _plain(
    request: Request, status: int, text: str, *, cache_control: str = "no-store", **extra: str
) -> Response:
    headers = {"content-type": "text/plain; charset=utf-8", "cache-control": cache_control}
    return _respond(request, status, headers | extra, text.encode())


class StaticSite:
    """Serves `output_dir` (the build's output) read-only; see the module docstring."""

    def __init__(self, output_dir: Path, *, max_age: int = 300) -> None:
        self.output_dir = output_dir
        self.root = str(output_dir).rstrip("/")  # "" for "/": paths are built as root + "/…"
        self.cache_control = f"public, max-age={max_age}"
        self.cache_control_raw = self.cache_control.encode("latin-1")
        self.etags: StampedCache[str] = StampedCache(65_536, lambda _: 1)
        self.gzipped: StampedCache[bytes] = StampedCache(32 << 20, len)

    def _find(self, names: Sequence[str]) -> tuple[str, os.stat_result] | None:
        """The path and lstat of `names` (segments checked by `parse_path`) under the output
        folder, or None: outside (through a symlink), hidden or missing. Nothing about the
        folder is remembered between requests, so swapping it (or a symlink to it) takes
        effect at once. A 304 needs no more than this; the file is opened only for its bytes
        (`_read_regular`).

        The common case, no symlink below the output folder, costs one lstat per folder and
        one for the file. The output folder's own path is left to the kernel to follow. A path
        with a symlink below the output folder is resolved in full, and taken only if it
        stays inside (`_find_resolved`)."""
        path = self.root
        try:
            for name in names[:-1]:
                path = f"{path}/{name}"
                if stat.S_ISLNK(os.lstat(path).st_mode):
                    return self._find_resolved(names)
            path = f"{path}/{names[-1]}"
            st = os.lstat(path)
        except (OSError, ValueError):
            return None
        if stat.S_ISLNK(st.st_mode):
            return self._find_resolved(names)
        return path, st

    def _find_resolved(self, names: Sequence[str]) -> tuple[str, os.stat_result] | None:
        """`_find` for a path with a symlink below the output folder: resolved in full (the
        folder too), and taken only if the target is a visible file inside the folder."""
        try:
            root = self.output_dir.resolve()
            real = root.joinpath(*names).resolve()
            if not _inside(root, real):
                return None
            return str(real), os.lstat(real)
        except (OSError, ValueError, RuntimeError):  # RuntimeError: a symlink loop
            return None

    @staticmethod
    def _read_regular(path: str) -> tuple[os.stat_result, bytes] | None:
        """A regular file's stat and bytes, opened afresh and never through a symlink (one
        swapped in since `_find` is refused), or None."""
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except (OSError, ValueError):
            return None
        try:
            st = os.fstat(fd)
            return (st, _read(fd, st.st_size)) if stat.S_ISREG(st.st_mode) else None
        finally:
            os.close(fd)

    async def health(self, request: Request) -> Response:
        return _plain(request, 200, "ok")

    async def file(self, request: Request) -> Response:
        return self.answer(request.scope)

    def answer(self, scope: Scope) -> Response:
        """The response to a GET or HEAD of a file, from the ASGI scope alone."""
        raw_path = scope.get("raw_path") or quote(scope["path"]).encode()
        segments = parse_path(raw_path)
        if segments is None:
            return self.not_found(Request(scope))
        is_folder = segments[-1] == ""
        names = [*segments[:-1], INDEX_FILE] if is_folder else list(segments)
        found = self._find(names)
        if found is None:
            return self.not_found(Request(scope))
        real, st = found
        if stat.S_ISREG(st.st_mode):
            return self._file(scope, names[-1], real, st)
        if stat.S_ISDIR(st.st_mode) and Path(real, INDEX_FILE).is_file():
            return self._to_folder(Request(scope), segments)
        return self.not_found(Request(scope))

    def _to_folder(self, request: Request, segments: Sequence[str]) -> Response:
        """A folder named without its slash: 308 keeps the method, and the slash keeps the
        page's relative links right. Built from checked segments, so never off-site."""
        location = "/" + "/".join(quote(segment, safe="") for segment in segments) + "/"
        if query := request.url.query:
            location += f"?{query}"
        headers = {"location": location, "cache-control": self.cache_control}
        return _respond(request, 308, headers, b"")

    def _file(
        self, scope: Scope, name: str, key: str, st: os.stat_result, data: bytes | None = None
    ) -> Response:
        """The file's 200 or 304, from its lstat alone when its ETag is cached and the answer
        is a 304; otherwise with its bytes (`data`, read with the stat `st` they go with). Its
        headers are built as bytes, in the order `_respond` gives them: validators and
        caching, Content-Encoding, Content-Type, Last-Modified, X-Content-Type-Options,
        Content-Length (none on a 304)."""
        kind = kind_of(name)  # as requested: a symlink's target may be named otherwise
        stamp = stamp_of(st)
        etag = self.etags.get(key, stamp)
        if etag is None:
            if data is None:
                return self._read_and_answer(scope, name, key, self._read_regular(key))
            etag = f'"{hashlib.blake2b(data, digest_size=16).hexdigest()}"'
            self.etags.put(key, stamp, etag)
        accept_encoding, if_none_match, if_modified_since = conditional_headers(scope)
        varies = kind.compressible and st.st_size >= GZIP_MIN_SIZE
        use_gzip = varies and accepts_gzip(accept_encoding)
        if use_gzip:  # a different byte sequence needs its own strong validator
            etag = f'{etag[:-1]}-gzip"'
        headers = [(b"etag", etag.encode("latin-1")), (b"cache-control", self.cache_control_raw)]
        if varies:
            headers.append(_VARY)
        if kind.feed:
            headers += _CORS
        if not_modified(if_none_match, if_modified_since, etag, st.st_mtime):
            headers.append(_NOSNIFF)
            return _Prepared(304, headers, b"")
        if data is None:
            read = self._read_regular(key)
            if read is None or stamp_of(read[0]) != stamp:  # gone or replaced since looked up
                return self._read_and_answer(scope, name, key, read)
            data = read[1]
        body = data
        if use_gzip:
            compressed = self.gzipped.get(key, stamp)
            if compressed is None:  # mtime=0: the same input always gives the same bytes
                compressed = gzip.compress(body, compresslevel=6, mtime=0)
                self.gzipped.put(key, stamp, compressed)
            body = compressed
            headers.append(_GZIP)
        headers.append((b"content-type", kind.content_type.encode("latin-1")))
        headers.append((b"last-modified", http_date(st.st_mtime).encode("latin-1")))
        headers.append(_NOSNIFF)
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
        return _Prepared(200, headers, b"" if scope["method"] == "HEAD" else body)

    def _read_and_answer(
        self, scope: Scope, name: str, key: str, read: tuple[os.stat_result, bytes] | None
    ) -> Response:
        """`_file` once more, with the stat and bytes of the file as `_read_regular` found it
        now (it may have been replaced or removed since it was looked up)."""
        if read is None:
            return self.not_found(Request(scope))
        return self._file(scope, name, key, *read)

    def not_found(self, request: Request, exc: Exception | None = None) -> Response:
        """The site's own 404.html when it has one; never cached for long, since a release
        page missing now (under embargo) exists a moment later."""
        found = self._find([NOT_FOUND])
        read = None if found is None else self._read_regular(found[0])
        if read is None:
            return _plain(request, 404, "not found\n", cache_control="no-cache")
        page = read[1]
        headers = {"content-type": KINDS[".html"].content_type, "cache-control": "no-cache"}
        return _respond(request, 404, headers, page)

    def method_not_allowed(self, request: Request, exc: Exception | None = None) -> Response:
        return _plain(request, 405, "method not allowed\n", allow=", ".join(ALLOWED_METHODS))

    def server_error(self, request: Request, exc: Exception) -> Response:
        return _plain(request, 500, "internal server error\n")


class FilesFirst:
    """Middleware: a request that the router would give to the file route goes straight to
    `StaticSite.answer`, as the route would call it; anything else continues down the stack.

    The decision is the router's own: the routes are asked in order, and the first one that
    matches in full takes the request. When every route before the file route is a plain
    `Route`, whose match depends only on the method and the path, the decision is cached per
    method and path. It sits under Starlette's ServerErrorMiddleware, so an exception still
    gets the site's 500; the layers it skips (the exception middleware, the router, the
    endpoint wrapper) have nothing to do for a file, which raises no HTTPException."""

    def __init__(
        self, app: ASGIApp, site: StaticSite, routes: Sequence[BaseRoute], files: BaseRoute
    ) -> None:
        self.app = app
        self.site = site
        self.routes = routes
        self.files = files
        before = routes[: list(routes).index(files)]
        self.cacheable = all(type(route) is Route for route in before)
        self._cached = lru_cache(maxsize=4096)(self._decide)

    def _decide(self, method: str, path: str, root_path: str) -> bool:
        scope = {"type": "http", "method": method, "path": path, "root_path": root_path}
        return self._to_files(scope)

    def _to_files(self, scope: Scope) -> bool:
        for route in self.routes:
            if route.matches(scope)[0] is Match.FULL:
                return route is self.files
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            self._cached(scope["method"], scope["path"], scope.get("root_path", ""))
            if self.cacheable
            else self._to_files(scope)
        ):
            await self.site.answer(scope)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(
    output_dir: Path, *, max_age: int = 300, routes: Sequence[BaseRoute] = ()
) -> Starlette:
    """The public site: `output_dir` as the build wrote it, plus GET /healthz (a route, so no
    file can shadow it) and `routes` (the mail links). `max_age` is config `web.max_age`."""
    site = StaticSite(output_dir, max_age=max_age)
    methods = list(ALLOWED_METHODS)
    files = Route("/{path:path}", site.file, methods=methods)
    all_routes = [Route("/healthz", site.health, methods=methods), *routes, files]
    return Starlette(
        routes=all_routes,
        middleware=[Middleware(FilesFirst, site=site, routes=all_routes, files=files)],
        # Starlette's own 404 (a target no route takes, such as '*') and 405, and any bug,
        # still get our bodies and headers.
        exception_handlers={
            404: site.not_found,
            405: site.method_not_allowed,
            Exception: site.server_error,
        },
    )


def server_config(app: ASGIApp, settings: Web, **overrides: Any) -> uvicorn.Config:
    """How both `syndicate serve` and `syndicate run` run uvicorn.

    HTTP is parsed by httptools (C) rather than h11 (pure Python), on the standard asyncio
    loop: uvloop, which uvicorn would pick if it were installed, served as many requests
    but with several times the p99 latency under load (benchmarks/serve.py). The access log
    (`web.access_log`) is about half the CPU of a 304. X-Forwarded-For is believed only from
    `web.trusted_proxies`: anyone can send it, and the subscribe form limits per client."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": "httptools",
        "loop": "asyncio",
        "access_log": settings.access_log,
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies) or None,
        "lifespan": "off",
    }
    return uvicorn.Config(app, **{**options, **overrides})


def serve(
    output_dir: Path, settings: Web, max_age: int = 300, routes: Sequence[BaseRoute] = ()
) -> None:
    """Run the site until interrupted (blocks)."""
    if not output_dir.is_dir():
        raise SyndicateError(f"{output_dir}: no such folder; run `syndicate build` first")
    app = create_app(output_dir, max_age=max_age, routes=routes)
    uvicorn.Server(server_config(app, settings)).run()
