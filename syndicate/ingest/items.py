"""What every source kind produces: raw items to build releases from, and problems."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Site:
    """The parts of the configuration a release needs to be built."""

    base_url: str
    language: str
    tz: ZoneInfo
    now: datetime


@dataclass(frozen=True, slots=True)
class RawItem:
    """One record as a source found it: field names as in the model, values untrusted."""

    where: str
    line: int | None
    fields: Mapping[str, Any]
    field_lines: Mapping[str, int] = field(default_factory=dict)
    default_id: str | None = None
    ref: str | None = None
    date_required: bool = True

    def locate(self, field_name: str | None = None) -> int | None:
        """The line of a field ('attachments[0].url' is found at 'attachments'), else the item's."""
        if field_name is not None:
            top = re.split(r"[.\[]", field_name, maxsplit=1)[0]
            return self.field_lines.get(top, self.line)
        return self.line


@dataclass(frozen=True, slots=True)
class Problem:
    """A rejected item or a warning: `where:line: id: reason`."""

    where: str
    line: int | None
    id: str | None
    reason: str

    def __str__(self) -> str:
        place = f"{self.where}:{self.line}" if self.line is not None else self.where
        return f"{place}: {self.id}: {self.reason}" if self.id else f"{place}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "line": self.line, "id": self.id, "reason": self.reason}
