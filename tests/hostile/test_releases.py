"""Hostile releases through every source kind (Markdown, JSON and CSV exports, an HTML
listing, upstream RSS and Atom fetched over real HTTP): what is invalid is reported and
skipped, naming the field; what is stored comes out of every feed well-formed, valid and safe,
and no script reaches a page or an email."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from syndicate.build import build
from syndicate.config import Config, load_config
from syndicate.digest import preview
from syndicate.digest.compile import Plan
from syndicate.ingest import Report, ingest
from syndicate.ingest.items import Problem
from syndicate.ingest.upsert import Outcome
from syndicate.model import Release
from syndicate.store import Store
from syndicate.store import releases as store_releases
from syndicate.text import html_to_text
from tests.conftest import BASE_CONFIG, NOW
from tests.figures import report
from tests.hostile import corpus
from tests.hostile.safety import header_hazards, html_hazards, output_problems, parse_message
from tests.localhttp import Request, serve

pytestmark = pytest.mark.hostile

SOURCES = """\
  - {type: json, path: ../exports/releases.json}
  - {type: json, path: ../exports/latin1.json}
  - {type: csv, path: ../exports/releases.csv}
  - {type: csv, path: ../exports/utf16.csv}
  - type: html
    path: ../exports/listing.html
    item: li.release
    title: h3
    link: a@href
    summary: p.summary
    date: time@datetime
    base_url: https://upstream.example.org/
  - {type: feed, url: "%(url)s/rss"}
  - {type: feed, url: "%(url)s/atom"}
"""
LISTS = """\
mail: {secret: hostile-secret}
lists:
  weekly:
    title: "Weekly <script>alert(1)</script> & co"
    schedule: "0 8 * * mon"
    subject: "{{ list.title }}: {{ releases|length }} new <b>"
"""


@dataclass(frozen=True)
class Expected:
    """One release ingest must store (`field` None) or reject naming `field`."""

    kind: str  # where the rejection is reported: a path or URL fragment
    id: str
    field: str | None


@dataclass
class Run:
    config: Config
    store: Store
    report: Report
    expected: list[Expected]
    requests: list[Request]
    secret: Path


def _names(problem: Problem, field: str) -> bool:
    """Whether a rejection names `field` (a duplicate names the id)."""
    if field == "id" and problem.reason.startswith("duplicate id"):
        return True
    return problem.reason.startswith(f"{field}:")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The corpus in every source kind, ingested once for the module (SQLite)."""
    tmp_path = tmp_path_factory.mktemp("hostile")
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text(corpus.SECRET)
    exports = project / "exports"
    expected: list[Expected] = []
    for rid, item in corpus.write_markdown(project / "content").items():
        expected.append(Expected("content/", rid, item.rejected))
    expected.append(Expected("content/", corpus.SHARED_ID, None))
    for rid, item in corpus.write_json(exports / "releases.json").items():
        expected.append(Expected("releases.json", rid, item.rejected))
    expected.append(Expected("releases.json", corpus.SHARED_ID, "id"))
    for rid, item in corpus.write_csv(exports / "releases.csv").items():
        expected.append(Expected("releases.csv", rid, item.rejected))
    (exports / "latin1.json").write_bytes('[{"title": "Café"}]'.encode("latin-1"))
    (exports / "utf16.csv").write_bytes("id,title\nx,Çay\n".encode("utf-16"))
    for rid, field in corpus.write_listing(exports / "listing.html", secret).items():
        expected.append(Expected("listing.html", rid, field))
    expected.append(Expected("listing.html", "l-arabic", "id"))  # the listing's duplicate

    def respond(request: Request) -> tuple[int, dict[str, str], bytes]:
        if request.path == "/rss":
            return 200, {"Content-Type": "application/rss+xml"}, rss
        if request.path == "/atom":
            return 200, {"Content-Type": "application/atom+xml"}, corpus.ATOM.encode()
        return 404, {}, b"no"

    with serve(respond) as server:
        rss = corpus.rss(secret, f"{server.url}/evil.dtd")
        for rid, _, field in corpus.FEED_ITEMS:
            expected.append(Expected("/rss", rid, field))
        expected.append(Expected("/rss", "f-rtl", "id"))
        for rid, field in corpus.ATOM_ITEMS.items():
            expected.append(Expected("/atom", rid, field))
        text = BASE_CONFIG.replace(
            "    path: ../content\n", "    path: ../content\n" + SOURCES % {"url": server.url}
        )
        (project / "config" / "syndicate.yaml").write_text(text + LISTS)
        config = load_config(project / "config" / "syndicate.yaml", environ={})
        with Store.open(config.database.url) as store:
            result = ingest(config, store, NOW)
            yield Run(config, store, result, expected, server.requests, secret)


def _stored(store: Store) -> dict[str, Release]:
    with store.connect() as conn:
        return {r.id: r for r in store_releases.iter_all(conn)}


def test_every_invalid_release_is_reported_naming_its_field_and_the_rest_stored(run: Run) -> None:
    stored = _stored(run.store)
    rejected = list(run.report.rejected)
    missing = []
    for want in run.expected:
        if want.field is None:
            if want.id not in stored:
                reasons = [str(p) for p in rejected if p.id == want.id]
                missing.append(f"{want.kind} {want.id}: not stored ({reasons})")
            continue
        found = [
            p
            for p in rejected
            if want.kind in p.where and p.id == want.id and _names(p, want.field)
        ]
        if not found:
            reasons = [str(p) for p in rejected if p.id == want.id]
            missing.append(f"{want.kind} {want.id}: not rejected for {want.field} ({reasons})")
        for problem in found[:1]:
            rejected.remove(problem)
    # What remains are the rejections of whole files, each reported once with its reason.
    leftovers = sorted(str(p) for p in rejected)
    assert missing == [], "\n".join([*missing, *leftovers])
    assert len(leftovers) == 4, leftovers
    for name, reason in corpus.MARKDOWN_EXTRA.items():
        assert any(f"/{name}:" in p and reason in p for p in leftovers), (name, leftovers)
    assert any("latin1.json:1: not valid UTF-8" in p for p in leftovers)
    assert any("utf16.csv:1: not valid UTF-8" in p for p in leftovers)
    accepted = {w.id for w in run.expected if w.field is None}
    assert set(stored) == accepted
    assert run.report.counts[Outcome.NEW] == len(accepted)
    report(
        "hostile-releases",
        f"{len(run.expected) + 4} hostile items from Markdown, JSON, CSV, an HTML listing and "
        "RSS and Atom over HTTP: "
        f"{len(run.expected) - len(accepted) + 4} rejected naming the field or file, "
        f"{len(accepted)} stored",
    )


def test_no_external_entity_or_remote_dtd_is_ever_fetched(run: Run) -> None:
    assert sorted({r.path for r in run.requests}) == ["/atom", "/rss"]
    dumped = json.dumps([r.to_dict() for r in _stored(run.store).values()], ensure_ascii=False)
    assert corpus.SECRET not in dumped
    assert "lollollol" not in dumped  # no entity was expanded


def test_every_feed_is_well_formed_valid_and_safe_and_no_page_runs_a_script(run: Run) -> None:
    built = build(run.config, run.store, NOW)
    assert built.written
    output = run.config.site.output_dir
    problems, feeds, pages = output_problems(output)
    assert problems == {}, "\n".join(f"{k}: {p}" for k, found in problems.items() for p in found)
    leaked = [p for p in output.rglob("*") if p.is_file() and corpus.SECRET in p.read_text()]
    assert leaked == []
    report("hostile-releases", f"{feeds} feeds and {pages} pages: 0 invalid, 0 unsafe")


def test_a_digest_of_every_stored_release_runs_no_script_and_keeps_its_headers(run: Run) -> None:
    releases = tuple(r for r in _stored(run.store).values() if r.is_public(NOW))
    assert len(releases) >= 10
    message = preview.message(run.config, "weekly", Plan(releases, ()), NOW)
    assert header_hazards(message.eml) == []
    assert html_hazards(message.html.decode()) == []
    parsed = parse_message(message.eml)
    assert parsed["Subject"].startswith("Weekly <script>alert(1)</script> & co: ")
    text = parsed.get_body(("plain",))
    assert text is not None
    assert re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", text.get_content()) is None
    shown = html_to_text(message.html.decode())
    missing = [r.id for r in releases if r.title not in shown]
    assert missing == []  # every release is in it, its title as text
    report("hostile-releases", f"a digest of {len(releases)} hostile releases: 0 unsafe")
