"""Output faults: the disk under the output folder is full, or the folder is read-only, when
a build has something new to write. The site being served stays whole (every file the web app
served before is still served, byte for byte, and parses, before, during and after the failing
build); the build stops with one line naming the file and the cause; and once the fault is
gone the next build completes the site (it equals a clean build of the same store).

The faults are real, made by the kernel, with whichever mechanism works here:
- disk full: a small tmpfs mounted on the output folder and filled up (needs the right to
  mount, as root in CI); and, anywhere, RLIMIT_FSIZE=0 on the build process (SIGXFSZ ignored,
  so a write fails with EFBIG, "File too large").
- read-only: that tmpfs remounted read-only (EROFS); and, anywhere, the folders chmod a-w with
  a build process that cannot override permissions (as root: CAP_DAC_OVERRIDE and CAP_FOWNER
  dropped from its bounding set before it execs).
The tmpfs variants are skipped, with the reason, where mounting is not allowed; the other two
always run and cover the same two faults.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import feedparser
import httpx
import pytest
import sqlalchemy as sa
from lxml import etree, html

from syndicate import feeds, pages
from syndicate.build import BuildError, build, is_current_feed, write
from syndicate.config import Config
from syndicate.ingest import ingest
from syndicate.output import snapshot
from syndicate.store import Store
from syndicate.urls import absolute
from syndicate.web import create_app
from tests.conftest import BASE_CONFIG, NOW, WriteConfig, outside_environ, write_release
from tests.figures import report
from tests.localhttp import serve as serve_hub
from tests.webserver import running

pytestmark = pytest.mark.faults

PAGE = 4096
TOPICS = ["trafficking", "turkiye", "ankara", "opinion"]

# Runs `python -m syndicate ARGS` after limiting itself: argv[1] is RLIMIT_FSIZE in bytes
# ("" for none), argv[2] "1" to drop the capabilities that let root write a read-only folder.
# The limits pass through exec; for root, the new program's capabilities are its bounding set.
LIMITED = """
import ctypes, os, resource, signal, sys
fsize, drop, args = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
if fsize:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(fsize), int(fsize)))
if drop:
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 3):  # CAP_DAC_OVERRIDE, CAP_FOWNER
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
os.execv(sys.executable, [sys.executable, "-m", "syndicate", *args])
"""


def can_mount() -> str | None:
    """None when a tmpfs can be mounted here, else why not."""
    if not shutil.which("mount"):
        return "no mount command"
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"syndicate-mount-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            return f"cannot mount a tmpfs here: {done.stderr.strip()}"
        subprocess.run(["umount", str(probe)], check=True)
        return None
    finally:
        probe.rmdir()


MOUNT_PROBLEM = can_mount()
needs_mount = pytest.mark.skipif(
    MOUNT_PROBLEM is not None,
    reason=f"{MOUNT_PROBLEM}; the unprivileged variant of the same fault still runs",
)


@dataclass
class Tmpfs:
    """A tmpfs mounted on `where` for the length of a test."""

    where: Path
    size: int = 4 << 20

    def __post_init__(self) -> None:
        self.where.mkdir(parents=True, exist_ok=True)
        mount("-t", "tmpfs", "-o", f"size={self.size},mode=0755", "tmpfs", str(self.where))

    def fill(self, leave: int = 0) -> None:
        """Fill the file system up, but for `leave` pages, with a hidden file (the web app
        never serves it, the build never touches it)."""
        stats = os.statvfs(self.where)
        size = (stats.f_bavail - leave) * stats.f_bsize
        with (self.where / ".filler").open("wb") as filler:
            filler.write(b"\0" * size)
        assert os.statvfs(self.where).f_bavail == leave

    def unfill(self) -> None:
        (self.where / ".filler").unlink()

    def remount(self, mode: str) -> None:
        mount("-o", f"remount,{mode}", str(self.where))

    def unmount(self) -> None:
        # Lazy: detached even if something still holds a file open (a failing test's client).
        subprocess.run(["umount", "--lazy", str(self.where)], check=True, capture_output=True)


def mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# The site and how to look at it.


def add_releases(project: Path, names: list[str]) -> None:
    for n, name in enumerate(names):
        topic = TOPICS[n % len(TOPICS)]
        kind = "op-ed" if topic == "opinion" else "press-release"
        dateline = "Ankara" if topic == "ankara" else "Geneva"
        keyword = {"trafficking": "trafficking", "turkiye": "Türkiye"}.get(topic, "migration")
        write_release(
            project / "content",
            f"{name}.md",
            f"""\
            title: {name.title()} on {keyword}
            published: 2026-11-{10 + n % 15:02}T10:00:00+03:00
            dateline: {dateline}
            kind: {kind}
            """,
            f"A paragraph about {keyword} in release {name}, long enough to be a summary.\n\n"
            + "More body text. " * 40,
        )


def served_paths(output: Path) -> list[str]:
    """Every file a reader can fetch: hidden files (the manifest, temp files) are refused."""
    return sorted(
        "/" + p.relative_to(output).as_posix()
        for p in output.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(output).parts)
    )


def tree(output: Path) -> dict[str, bytes]:
    """Every file in the folder, hidden ones included, with its bytes."""
    return {
        p.relative_to(output).as_posix(): p.read_bytes() for p in output.rglob("*") if p.is_file()
    }


def parses(path: str, body: bytes) -> None:
    """Raise unless `body` is a whole document of its kind."""
    suffix = Path(path).suffix
    if suffix in (".rss", ".atom"):
        etree.fromstring(body)
        assert not feedparser.parse(body).bozo, path
    elif suffix in (".opml", ".xml"):
        etree.fromstring(body)
    elif suffix == ".json":
        json.loads(body)
    elif suffix == ".html":
        assert body.rstrip().endswith(b"</html>"), path
        html.document_fromstring(body)
    else:
        body.decode("utf-8")


def fetch_all(client: httpx.Client, paths: list[str]) -> dict[str, bytes]:
    got = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        parses(path, response.content)
        got[path] = response.content
    return got


@dataclass
class Watcher:
    """Fetches every served file over and over, in a thread, and notes any response that is
    not the file's bytes from before (a missing, partial or changed file)."""

    base_url: str
    expected: dict[str, bytes]
    requests: list[tuple[float, float]] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            while not self.stop.is_set():
                for path, body in self.expected.items():
                    started = time.monotonic()
                    response = client.get(path)
                    self.requests.append((started, time.monotonic()))
                    if response.status_code != 200 or response.content != body:
                        size = len(response.content)
                        self.wrong.append(f"{path}: {response.status_code}, {size} bytes")
                time.sleep(0.02)  # a sweep every 20 ms leaves the build process its CPU

    def __enter__(self) -> Watcher:
        self.thread.start()
        while not self.requests:  # serving before the build starts
            time.sleep(0.001)
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(10)

    def during(self, start: float, end: float) -> int:
        return sum(1 for s, e in self.requests if s >= start and e <= end)


# The faults.


@dataclass
class Fault:
    name: str
    category: str  # the figure's category
    causes: tuple[str, ...]  # what the error line must say
    mounted: bool  # the output folder is a tmpfs of its own
    fsize: int | None = None  # RLIMIT_FSIZE of the build process

    @property
    def drop_caps(self) -> bool:
        """Root writes into a read-only folder unless it loses these capabilities."""
        return self.name == "chmod-a-w" and os.geteuid() == 0


FAULTS = [
    Fault("tmpfs-full", "disk-full", ("No space left on device",), mounted=True),
    Fault("fsize-limit", "disk-full", ("File too large",), mounted=False, fsize=0),
    Fault("tmpfs-read-only", "read-only", ("Read-only file system",), mounted=True),
    Fault("chmod-a-w", "read-only", ("Permission denied",), mounted=False),
]


def inject(fault: Fault, output: Path, fs: Tmpfs | None) -> None:
    if fault.name == "tmpfs-full":
        assert fs is not None
        fs.fill()
    elif fault.name == "tmpfs-read-only":
        assert fs is not None
        fs.remount("ro")
    elif fault.name == "chmod-a-w":
        for folder in [output, *(p for p in output.rglob("*") if p.is_dir())]:
            folder.chmod(0o555)


def remove(fault: Fault, output: Path, fs: Tmpfs | None) -> None:
    if fault.name == "tmpfs-full":
        assert fs is not None
        fs.unfill()
    elif fault.name == "tmpfs-read-only":
        assert fs is not None
        fs.remount("rw")
    elif fault.name == "chmod-a-w":
        for folder in [output, *(p for p in output.rglob("*") if p.is_dir())]:
            folder.chmod(0o755)


def failing_build(fault: Fault, project: Path) -> str:
    """`syndicate build` as the admin (or cron) runs it, with the fault in place; its stderr.
    The build process is limited as the fault needs (a file size limit, no capabilities)."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            LIMITED,
            "" if fault.fsize is None else str(fault.fsize),
            "1" if fault.drop_caps else "0",
            "--now",
            NOW.isoformat(),
            "build",
        ],
        cwd=project,
        env=outside_environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done
    assert done.stdout == "", done.stdout
    return done.stderr


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    """The project's SQLite store (these faults are in the output folder, not the store)."""
    with Store.open(config.database.url) as opened:
        yield opened


def new_paths(config: Config, store: Store) -> set[str]:
    """Every file a build of the store's current state writes."""
    snap = snapshot(config, store, NOW)
    return {doc.path for doc in [*feeds.documents(snap), *pages.documents(snap)]}


FIRST = [f"first-{n:02}" for n in range(12)]
NEW = [f"new-{n:02}" for n in range(4)]


@pytest.mark.parametrize(
    "fault",
    [pytest.param(f, id=f.name, marks=[needs_mount] if f.mounted else []) for f in FAULTS],
)
def test_a_build_that_cannot_write_leaves_the_served_site_whole_and_the_next_completes_it(
    project: Path, config: Config, store: Store, fault: Fault
) -> None:
    output = config.site.output_dir
    fs = Tmpfs(output) if fault.mounted else None
    try:
        add_releases(project, FIRST)
        ingest(config, store, NOW)
        build(config, store, NOW)
        paths = served_paths(output)
        with running(create_app(output)) as base, httpx.Client(base_url=base) as client:
            before = fetch_all(client, paths)
            assert before == {p: (output / p[1:]).read_bytes() for p in paths}

            add_releases(project, [*FIRST, *NEW])  # four more, in every topic
            ingest(config, store, NOW)
            inject(fault, output, fs)
            try:
                # A connection held open here keeps the database's WAL index (-shm) in place:
                # a build process limited to zero-byte files could not create it.
                with store.connect() as held, Watcher(base, before) as watcher:
                    held.execute(sa.text("SELECT 1"))
                    started = time.monotonic()
                    error = failing_build(fault, project)
                    ended = time.monotonic()
                    time.sleep(0.05)  # and a moment after it
            finally:
                remove(fault, output, fs)

            # During: every response was the file as before. After: the same, on disk too.
            assert watcher.wrong == []
            assert fetch_all(client, paths) == before
            assert served_paths(output) == paths
            assert [p for p in tree(output) if Path(p).name.startswith(".") and ".tmp" in p] == []

            # One line: the file it could not write (not a temp file), and the cause.
            lines = error.splitlines()
            assert len(lines) == 1, error
            named, rest = lines[0].removeprefix(f"error: cannot write {output}/").split(": ", 1)
            cause = rest.split(";")[0]
            assert lines[0].startswith(f"error: cannot write {output}/{named}: "), lines[0]
            assert named in new_paths(config, store), lines[0]
            assert cause in fault.causes, lines[0]

            # The fault is gone: the next build completes the site, as a clean build makes it.
            after = build(config, store, NOW)
            assert {f"releases/{n}/index.html" for n in NEW} <= set(after.written)
            reference = project / "reference"
            snap = snapshot(config, store, NOW)
            write(reference, [*feeds.documents(snap), *pages.documents(snap)])
            assert tree(output) == tree(reference)
            now_served = served_paths(output)
            fetch_all(client, now_served)
    finally:
        if fs is not None:
            fs.unmount()
    report(
        fault.category,
        f"{fault.name}: build stopped at {named} ({cause}), {len(paths)} served files "
        f"intact and parsing over {len(watcher.requests)} requests "
        f"({watcher.during(started, ended)} during the build); next build complete "
        f"({len(after.written)} written, = a clean build)",
    )


def pages_of(data: bytes | None) -> int:
    return 0 if data is None else -(-len(data) // PAGE)


def test_a_disk_that_fills_up_mid_build_leaves_every_file_old_or_new_and_announces_them(
    project: Path, store: Store, write_config: WriteConfig
) -> None:
    """The disk fills up after the build has replaced some files (the current 'all' feeds):
    each file is then its old bytes or its new bytes, never torn; the next build finishes the
    rest; and the WebSub hub hears of every current feed that changed, those the failed build
    published included (the next build finds their bytes unchanged)."""
    if MOUNT_PROBLEM is not None:
        pytest.skip(f"{MOUNT_PROBLEM}; needs a small file system to fill")
    with serve_hub(lambda _request: (204, {}, b"")) as hub:
        config = write_config(BASE_CONFIG + f"feeds:\n  websub_hubs: ['{hub.url}/hub']\n")
        output = config.site.output_dir
        fs = Tmpfs(output)
        try:
            add_releases(project, FIRST)
            ingest(config, store, NOW)
            build(config, store, NOW)
            before = tree(output)
            hub.requests.clear()

            add_releases(project, [*FIRST, *NEW])
            ingest(config, store, NOW)
            snap = snapshot(config, store, NOW)
            new = {
                doc.path: doc.render() for doc in [*feeds.documents(snap), *pages.documents(snap)]
            }
            changed = [path for path, data in new.items() if before.get(path) != data]
            # Room for the first three replacements (feeds/all.*; the old file's pages come
            # back once the new one is renamed over it), not for the whole build.
            first = changed[:3]
            assert first == ["feeds/all.rss", "feeds/all.atom", "feeds/all.json"]
            room, freed = 0, 0
            for path in first:
                room = max(room, pages_of(new[path]) - freed)
                freed += pages_of(before.get(path)) - pages_of(new[path])
            growth = sum(pages_of(new[p]) - pages_of(before.get(p)) for p in changed)
            assert growth > room, "the build would fit: add releases"
            fs.fill(leave=room)
            try:
                with pytest.raises(BuildError, match="No space left on device") as caught:
                    build(config, store, NOW)
            finally:
                fs.unfill()
            stopped_at = str(caught.value).split(": ")[0].removeprefix(f"cannot write {output}/")

            # Each file whole: old or new bytes (or not there yet), and it parses.
            now_there = tree(output)
            replaced = [p for p in changed if p in now_there and now_there[p] == new[p]]
            assert set(first) <= set(replaced) and len(replaced) < len(changed)
            for path, data in now_there.items():
                if path == ".manifest.json":
                    continue
                assert data in (before.get(path), new.get(path)), path
                parses(path, data)
            assert set(now_there) <= set(before) | set(new)

            after = build(config, store, NOW)
            assert not set(replaced) & set(after.written)  # found unchanged: not announced
            reference = project / "reference"
            write(reference, [*feeds.documents(snap), *pages.documents(snap)])
            assert tree(output) == tree(reference)
        finally:
            fs.unmount()
        announced = {parse_qs(r.body.decode())["hub.url"][0] for r in hub.requests}
    feeds_changed = {absolute(config.site.base_url, p) for p in changed if is_current_feed(p)}
    assert feeds_changed <= announced, sorted(feeds_changed - announced)
    report(
        "disk-full",
        f"disk filled mid-build ({len(replaced)} of {len(changed)} files replaced, stopped "
        f"at {stopped_at}): every file old or new, none torn; next build complete; all "
        f"{len(feeds_changed)} changed feeds announced to the hub",
    )
