"""Applying documents to the output folder: skip what is unchanged, write atomically,
remove what is no longer published, and never touch files the build did not make."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from syndicate.build import MANIFEST, BuildError, write
from syndicate.manifest import SHARDS, Manifest, group, shard_of
from syndicate.output import Document


class Renders:
    """Documents whose render() calls are counted."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def doc(self, path: str, data: bytes, fingerprint: str | None = None) -> Document:
        def render() -> bytes:
            self.calls.append(path)
            return data

        return Document(path, fingerprint or data.decode(), render)


def test_first_build_writes_every_document(tmp_path: Path) -> None:
    r = Renders()
    report = write(tmp_path, [r.doc("index.html", b"home"), r.doc("feeds/all.rss", b"rss")])
    assert report.written == ["index.html", "feeds/all.rss"]
    assert (tmp_path / "feeds" / "all.rss").read_bytes() == b"rss"
    assert report.summary() == "2 files: 2 written, 0 unchanged, 0 removed"


def test_unchanged_fingerprints_skip_rendering_and_writing(tmp_path: Path) -> None:
    write(tmp_path, [Renders().doc("a.html", b"A")])
    mtime = (tmp_path / "a.html").stat().st_mtime_ns
    r = Renders()
    report = write(tmp_path, [r.doc("a.html", b"A")])
    assert r.calls == []
    assert (report.written, report.unchanged) == ([], 1)
    assert (tmp_path / "a.html").stat().st_mtime_ns == mtime


def test_same_bytes_under_a_new_fingerprint_are_not_rewritten(tmp_path: Path) -> None:
    write(tmp_path, [Renders().doc("a.html", b"A", "v1")])
    os.utime(tmp_path / "a.html", ns=(1, 1))
    r = Renders()
    report = write(tmp_path, [r.doc("a.html", b"A", "v2")])
    assert r.calls == ["a.html"]
    assert report.unchanged == 1
    assert (tmp_path / "a.html").stat().st_mtime_ns == 1


def test_changed_bytes_replace_the_file(tmp_path: Path) -> None:
    write(tmp_path, [Renders().doc("a.html", b"old")])
    report = write(tmp_path, [Renders().doc("a.html", b"new")])
    assert report.written == ["a.html"]
    assert (tmp_path / "a.html").read_bytes() == b"new"


def test_a_document_no_longer_built_is_removed_with_its_empty_folders(tmp_path: Path) -> None:
    write(tmp_path, [Renders().doc("releases/gone/index.html", b"x"), Renders().doc("i", b"i")])
    report = write(tmp_path, [Renders().doc("i", b"i")])
    assert report.removed == ["releases/gone/index.html"]
    assert not (tmp_path / "releases").exists()


def test_files_the_build_did_not_make_are_never_removed(tmp_path: Path) -> None:
    (tmp_path / "robots.txt").write_text("User-agent: *\n")
    write(tmp_path, [Renders().doc("a.html", b"A")])
    write(tmp_path, [])
    assert (tmp_path / "robots.txt").exists()
    assert not (tmp_path / "a.html").exists()


def test_a_deleted_output_file_is_rendered_again(tmp_path: Path) -> None:
    write(tmp_path, [Renders().doc("a.html", b"A")])
    (tmp_path / "a.html").unlink()
    report = write(tmp_path, [Renders().doc("a.html", b"A")])
    assert report.written == ["a.html"]


@pytest.mark.parametrize("damage", ["not json", "[1, 2]", '{"../../etc/passwd": "x"}'])
def test_a_damaged_manifest_means_render_everything_and_remove_nothing_outside(
    tmp_path: Path, damage: str
) -> None:
    write(tmp_path, [Renders().doc("a.html", b"A")])
    (tmp_path / MANIFEST).write_text(damage)
    r = Renders()
    write(tmp_path, [r.doc("a.html", b"A")])
    assert r.calls == ["a.html"] and (tmp_path / "a.html").exists()


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    write(tmp_path, [Renders().doc("feeds/a.rss", b"1"), Renders().doc("feeds/b.rss", b"2")])
    names = sorted(p.name for p in (tmp_path / "feeds").iterdir())
    assert names == ["a.rss", "b.rss"]


def test_an_unwritable_target_is_a_build_error_and_earlier_files_are_complete(
    tmp_path: Path,
) -> None:
    write(tmp_path, [Renders().doc("a.html", b"old")])
    (tmp_path / "feeds").write_text("a file where a folder must go")
    with pytest.raises(BuildError, match="cannot write"):
        write(tmp_path, [Renders().doc("a.html", b"new"), Renders().doc("feeds/x.rss", b"x")])
    assert (tmp_path / "a.html").read_bytes() == b"new"


# --- the manifest -------------------------------------------------------------------------------


def test_the_manifest_keeps_each_files_fingerprint_and_note_in_shards(tmp_path: Path) -> None:
    r = Renders()
    doc = r.doc("releases/a/index.html", b"A", "fp-a")
    noted = Document(doc.path, doc.fingerprint, doc.render, "where a appeared")
    write(tmp_path, [noted, r.doc("feeds/x.rss", b"X", "fp-x")])
    root = json.loads((tmp_path / MANIFEST).read_text())
    assert root == {"files": 2, "format": 2}
    manifest = Manifest(tmp_path)
    assert manifest.trusted and manifest.files == 2
    assert manifest.get("releases/a/index.html") == ("fp-a", "where a appeared")
    assert manifest.get("feeds/x.rss") == ("fp-x", "")
    assert manifest.get("feeds/y.rss") is None
    assert len(list((tmp_path / SHARDS).glob("*.json"))) == 2


def test_documents_about_one_topic_or_release_share_a_shard() -> None:
    assert group("feeds/opinion.rss") == group("feeds/tr/archive/opinion/3.json") == "opinion"
    assert group("topics/opinion/archive/2/index.html") == "opinion"
    assert group("releases/r1/index.html") == "r1"
    assert group("index.html") == group("sitemaps/releases-3.xml") == group("a") == ""
    assert shard_of("feeds/all.atom") == shard_of("topics/all/index.html")


def test_an_unfinished_manifest_means_render_everything_but_remove_what_it_named(
    tmp_path: Path,
) -> None:
    write(tmp_path, [Renders().doc("a.html", b"A"), Renders().doc("releases/b/index.html", b"B")])
    (tmp_path / MANIFEST).unlink()  # a build stopped while it rewrote the shards
    r = Renders()
    report = write(tmp_path, [r.doc("a.html", b"A")])
    assert r.calls == ["a.html"]
    assert report.removed == ["releases/b/index.html"]
    assert not (tmp_path / "releases").exists()
    assert Manifest(tmp_path).trusted


def test_the_manifest_of_an_earlier_version_still_names_what_to_remove(tmp_path: Path) -> None:
    write(tmp_path, [Renders().doc("a.html", b"A"), Renders().doc("gone.html", b"G")])
    (tmp_path / MANIFEST).write_text('{"a.html": "A", "gone.html": "G"}')
    for shard in (tmp_path / SHARDS).iterdir():
        shard.unlink()
    r = Renders()
    report = write(tmp_path, [r.doc("a.html", b"A")])
    assert r.calls == ["a.html"] and report.removed == ["gone.html"]
