"""The build's record of the files it made: for each, the fingerprint of its inputs and a note
for the next incremental build (syndicate.output.Document).

It is kept in hidden files of the output folder, a pure function of the documents it records:
`.manifest.json` holds the format and the number of files, `.manifest/XX.json` the entries,
sharded by what they are about (a topic, a release, the rest of the site) so that an
incremental build reads and writes only the few shards its documents fall in. The root file
is removed while shards are rewritten: a build that stops half-way leaves no root, and the
next build then renders every document again (and still removes what the shards name).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from syndicate.files import make_durable, sync_folder, write_if_changed

ROOT = ".manifest.json"
SHARDS = ".manifest"
FORMAT = 2

Entry = tuple[str, str]  # (fingerprint, note)


def group(path: str) -> str:
    """What a path is about: the topic of a feed or topic page, the release of a release
    page, '' for the rest of the site. The documents one change touches share few groups."""
    parts = path.split("/")
    if len(parts) > 2 and parts[0] in ("releases", "topics"):
        return parts[1]
    if parts[0] == "feeds" and len(parts) > 1:
        rest = parts[1:]
        if len(rest) > 1 and rest[0] != "archive":  # feeds/{lang}/…
            rest = rest[1:]
        if rest[0] == "archive" and len(rest) > 1:
            return rest[1]
        return rest[0].rsplit(".", 1)[0]
    return ""


def shard_of(path: str) -> str:
    return f"{zlib.crc32(group(path).encode()) & 0xFF:02x}"


def removable(path: object) -> bool:
    """Whether a path read from a manifest may be removed: inside the output folder. The
    manifest is checked where it matters, before a file is removed."""
    return (
        isinstance(path, str)
        and bool(path)
        and not path.startswith("/")
        and ".." not in path.split("/")
        and "\0" not in path
    )


class Manifest:
    """The manifest of one output folder, its shards read on demand. `trusted`: the last build
    finished, so its fingerprints and notes vouch for the files."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir
        self.trusted = False
        self.files = 0
        self.legacy: dict[str, Entry] = {}
        self._shards: dict[str, dict[str, Entry]] = {}
        self._written: list[Path] = []
        try:
            data = json.loads((output_dir / ROOT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("format") == FORMAT:
            files = data.get("files")
            if isinstance(files, int) and files >= 0:
                self.trusted, self.files = True, files
        elif isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
            # The single file of syndicate before 0.2: what it names was made by a build.
            self.legacy = {k: (v, "") for k, v in data.items()}

    def _shard(self, name: str) -> dict[str, Entry]:
        found = self._shards.get(name)
        if found is None:
            found = self._shards[name] = _read_shard(self.output_dir / SHARDS / f"{name}.json")
        return found

    def get(self, path: str) -> Entry | None:
        return self._shard(shard_of(path)).get(path)

    def everything(self) -> dict[str, Entry]:
        """Every entry of every shard on disk (and of a legacy manifest)."""
        entries = dict(self.legacy)
        for name in sorted(self._names()):
            entries.update(self._shard(name))
        return entries

    def replace(self, entries: Mapping[str, Entry]) -> None:
        """Make the manifest exactly `entries` (a full build)."""
        shards: dict[str, dict[str, Entry]] = {}
        for path, entry in entries.items():
            shards.setdefault(shard_of(path), {})[path] = entry
        existing = set(self._names())
        self._begin()
        for name, shard in sorted(shards.items()):
            self._write_shard(name, shard)
        for name in sorted(existing - set(shards)):
            (self.output_dir / SHARDS / f"{name}.json").unlink(missing_ok=True)
        self._finish(len(entries))

    def update(self, changes: Mapping[str, Entry | None]) -> None:
        """Set or (None) drop entries, keeping the rest (an incremental build)."""
        touched: dict[str, dict[str, Entry]] = {}
        files = self.files
        for path, entry in changes.items():
            name = shard_of(path)
            shard = touched.setdefault(name, dict(self._shard(name)))
            known = path in shard
            if entry is None:
                if known:
                    del shard[path]
                    files -= 1
            else:
                files += not known
                shard[path] = entry
        self._begin()
        for name, shard in sorted(touched.items()):
            if shard:
                self._write_shard(name, shard)
            else:
                (self.output_dir / SHARDS / f"{name}.json").unlink(missing_ok=True)
        self._finish(files)

    def _names(self) -> Iterable[str]:
        try:
            return [p.stem for p in (self.output_dir / SHARDS).glob("*.json")]
        except OSError:
            return []

    def _begin(self) -> None:
        """No root while shards change: a build stopped now is seen as unfinished."""
        (self.output_dir / ROOT).unlink(missing_ok=True)
        sync_folder(self.output_dir)

    def _write_shard(self, name: str, shard: Mapping[str, Entry]) -> None:
        data = {path: (fp if not note else [fp, note]) for path, (fp, note) in shard.items()}
        text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        path = self.output_dir / SHARDS / f"{name}.json"
        if write_if_changed(path, (text + "\n").encode(), fsync=False):
            self._written.append(path)
        self._shards[name] = dict(shard)

    def _finish(self, files: int) -> None:
        """The shards on disk first, then the root that vouches for them."""
        make_durable(self._written)
        self._written.clear()
        root = json.dumps({"files": files, "format": FORMAT}, sort_keys=True)
        write_if_changed(self.output_dir / ROOT, (root + "\n").encode())
        sync_folder(self.output_dir)
        self.trusted, self.files = True, files


def _read_shard(path: Path) -> dict[str, Entry]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    entries: dict[str, Entry] = {}
    for key, value in data.items():
        if isinstance(value, str):
            entries[key] = (value, "")
        elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
            entries[key] = (value[0], value[1])
    return entries
