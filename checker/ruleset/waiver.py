"""A ruleset waiver: one rule's findings accepted, where and until when, with who approved it.

Parsed once from the validated YAML (the schema has already required rule, reason, approved_by
and an ISO date for expires), then carried typed from the ruleset to `checker.suppress`, which
marks the findings it covers, and on to every report through `checker.model.Suppression`.
"""
from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Waiver:
    """One entry of `waivers:`. `paths` and `ticket` are None when the ruleset does not give them,
    so the ruleset's digest covers exactly what was written."""

    rule: str
    reason: str
    approved_by: str
    expires: datetime.date
    paths: tuple[str, ...] | None = None  # gitignore-style patterns, relative to the scan root
    ticket: str | None = None
    source: str = ""  # the ruleset file that grants it, as recorded (relative to the repository)
    line: int = 0

    @classmethod
    def parse(cls, entry: Mapping[str, Any], source: str, line: int) -> Waiver:
        """A waiver from its validated YAML mapping and where it was written."""
        paths = entry.get("paths")
        return cls(rule=str(entry["rule"]), reason=str(entry["reason"]), approved_by=str(entry["approved_by"]),
                   expires=datetime.date.fromisoformat(str(entry["expires"])),
                   paths=None if paths is None else tuple(str(p) for p in paths),
                   ticket=None if entry.get("ticket") is None else str(entry["ticket"]), source=source, line=line)

    @property
    def where(self) -> str:
        """`FILE:LINE` of the waiver, as notes and suppressions name it."""
        return f"{self.source}:{self.line}"

    def as_dict(self, located: bool = True) -> dict[str, Any]:
        """The waiver as written, plus (when `located`) the file and line it came from."""
        out: dict[str, Any] = {"rule": self.rule}
        if self.paths is not None:
            out["paths"] = list(self.paths)
        out.update(reason=self.reason, approved_by=self.approved_by, expires=self.expires.isoformat())
        if self.ticket is not None:
            out["ticket"] = self.ticket
        if located:
            out.update(source=self.source, line=self.line)
        return out
