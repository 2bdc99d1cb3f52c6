"""The public site over HTTP: the build's static output, served with the caching feed readers
rely on (strong ETags, 304s, gzip that varies correctly) and nothing they must not see.

Every request opens the file afresh, so a rebuild (files replaced by rename) is live at once.
Only what is derived from a file's bytes (its hash, its gzip form) is cached, and each cached
value is valid only for the exact stat (inode, mtime, size) it was computed from.

The pure deciders (`parse_path`, `accepts_gzip`, `etag_matches`, `not_modified`) hold the HTTP
rules; `StaticSite` only applies them to files.
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
from pathlib import Path, PurePosixPath
from typing import Generic, TypeVar
from urllib.parse import quote, unquote_to_bytes

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

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
    return KINDS.get(PurePosixPath(name).suffix.lower(), UNKNOWN)


# Deciders: pure functions of request values.

_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f/\\]")


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


def _read(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


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
        self.cache_control = f"public, max-age={max_age}"
        self.etags: StampedCache[str] = StampedCache(65_536, lambda _: 1)
        self.gzipped: StampedCache[bytes] = StampedCache(32 << 20, len)

    def _open(self, names: Sequence[str]) -> tuple[Path, int] | None:
        """The resolved path and an open descriptor of `names` under the output folder, or
        None: outside (through a symlink), hidden, missing or unreadable. The root is
        resolved per request, so swapping the folder (or a symlink to it) takes effect."""
        try:
            root = self.output_dir.resolve()
            real = root.joinpath(*names).resolve()
            if not _inside(root, real):
                return None
            return real, os.open(real, _OPEN_FLAGS)
        except (OSError, ValueError, RuntimeError):  # RuntimeError: a symlink loop
            return None

    async def health(self, request: Request) -> Response:
        return _plain(request, 200, "ok")

    async def file(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path") or quote(request.scope["path"]).encode()
        segments = parse_path(raw_path)
        if segments is None:
            return self.not_found(request)
        is_folder = segments[-1] == ""
        names = [*segments[:-1], INDEX_FILE] if is_folder else list(segments)
        opened = self._open(names)
        if opened is None:
            return self.not_found(request)
        real, fd = opened
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                return self._file(request, names[-1], real, fd, st)
            if stat.S_ISDIR(st.st_mode) and (real / INDEX_FILE).is_file():
                return self._to_folder(request, segments)
            return self.not_found(request)
        finally:
            os.close(fd)

    def _to_folder(self, request: Request, segments: Sequence[str]) -> Response:
        """A folder named without its slash: 308 keeps the method, and the slash keeps the
        page's relative links right. Built from checked segments, so never off-site."""
        location = "/" + "/".join(quote(segment, safe="") for segment in segments) + "/"
        if query := request.url.query:
            location += f"?{query}"
        headers = {"location": location, "cache-control": self.cache_control}
        return _respond(request, 308, headers, b"")

    def _file(
        self, request: Request, name: str, real: Path, fd: int, st: os.stat_result
    ) -> Response:
        kind = kind_of(name)  # as requested: a symlink's target may be named otherwise
        stamp, key = stamp_of(st), str(real)
        data: bytes | None = None
        etag = self.etags.get(key, stamp)
        if etag is None:
            data = _read(fd)
            etag = f'"{hashlib.blake2b(data, digest_size=16).hexdigest()}"'
            self.etags.put(key, stamp, etag)
        varies = kind.compressible and st.st_size >= GZIP_MIN_SIZE
        use_gzip = varies and accepts_gzip(request.headers.get("accept-encoding"))
        if use_gzip:  # a different byte sequence needs its own strong validator
            etag = f'{etag[:-1]}-gzip"'
        headers = {"etag": etag, "cache-control": self.cache_control}
        if varies:
            headers["vary"] = "Accept-Encoding"
        if kind.feed:
            headers["access-control-allow-origin"] = "*"
            headers["access-control-expose-headers"] = "ETag"  # for conditional GET from JS
        conditions = request.headers.get("if-none-match"), request.headers.get("if-modified-since")
        if not_modified(*conditions, etag, st.st_mtime):
            return _respond(request, 304, headers, b"")
        body = _read(fd) if data is None else data
        if use_gzip:
            compressed = self.gzipped.get(key, stamp)
            if compressed is None:  # mtime=0: the same input always gives the same bytes
                compressed = gzip.compress(body, compresslevel=6, mtime=0)
                self.gzipped.put(key, stamp, compressed)
            body = compressed
            headers["content-encoding"] = "gzip"
        headers["content-type"] = kind.content_type
        headers["last-modified"] = formatdate(st.st_mtime, usegmt=True)
        return _respond(request, 200, headers, body)

    def not_found(self, request: Request, exc: Exception | None = None) -> Response:
        """The site's own 404.html when it has one; never cached for long, since a release
        page missing now (under embargo) exists a moment later."""
        opened = self._open([NOT_FOUND])
        if opened is None:
            return _plain(request, 404, "not found\n", cache_control="no-cache")
        _, fd = opened
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return _plain(request, 404, "not found\n", cache_control="no-cache")
            page = _read(fd)
        finally:
            os.close(fd)
        headers = {"content-type": KINDS[".html"].content_type, "cache-control": "no-cache"}
        return _respond(request, 404, headers, page)

    def method_not_allowed(self, request: Request, exc: Exception | None = None) -> Response:
        return _plain(request, 405, "method not allowed\n", allow=", ".join(ALLOWED_METHODS))

    def server_error(self, request: Request, exc: Exception) -> Response:
        return _plain(request, 500, "internal server error\n")


def create_app(
    output_dir: Path, *, max_age: int = 300, routes: Sequence[BaseRoute] = ()
) -> Starlette:
    """The public site: `output_dir` as the build wrote it, plus GET /healthz (a route, so no
    file can shadow it) and `routes` (the mail links). `max_age` is config `web.max_age`."""
    site = StaticSite(output_dir, max_age=max_age)
    methods = list(ALLOWED_METHODS)
    return Starlette(
        routes=[
            Route("/healthz", site.health, methods=methods),
            *routes,
            Route("/{path:path}", site.file, methods=methods),
        ],
        # Starlette's own 404 (a target no route takes, such as '*') and 405, and any bug,
        # still get our bodies and headers.
        exception_handlers={
            404: site.not_found,
            405: site.method_not_allowed,
            Exception: site.server_error,
        },
    )


def serve(
    output_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_age: int = 300,
    routes: Sequence[BaseRoute] = (),
) -> None:
    """Run the site until interrupted (blocks). Access log on. Proxy headers off: nothing here
    builds URLs from the request's scheme or host, and behind a reverse proxy it is the
    proxy's log that knows the client's address."""
    if not output_dir.is_dir():
        raise SyndicateError(f"{output_dir}: no such folder; run `syndicate build` first")
    app = create_app(output_dir, max_age=max_age, routes=routes)
    uvicorn.run(app, host=host, port=port, access_log=True, proxy_headers=False)
