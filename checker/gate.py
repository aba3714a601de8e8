"""The gate: a pure decision from findings, problems and a threshold to a verdict and exit code."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

from checker.model import FailOn, Finding, Problem, Severity

PASSED, FAILED, INCOMPLETE = 0, 1, 3
Verdict = Literal["PASSED", "FAILED", "INCOMPLETE"]


@dataclasses.dataclass(frozen=True)
class Decision:
    """The gate's verdict, the exit code that carries it, why, and the findings that blocked."""

    exit_code: int
    verdict: Verdict
    reason: str
    blocking: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        return self.exit_code == PASSED


def decide(findings: Sequence[Finding], problems: Sequence[Problem], fail_on: FailOn) -> Decision:
    """Fail closed on problems (3); fail (1) on an open finding at or above `fail_on`; else pass (0)."""
    threshold = None if fail_on == "never" else Severity(fail_on)
    blocking = tuple(
        f for f in findings
        if f.is_open and threshold is not None and f.severity.rank >= threshold.rank
    )
    if problems:
        return Decision(INCOMPLETE, "INCOMPLETE",
                        f"{len(problems)} thing(s) could not be checked, so the gate fails closed", blocking)
    if blocking:
        return Decision(FAILED, "FAILED", f"{len(blocking)} open finding(s) at or above {fail_on}", blocking)
    why = "fail_on is never" if threshold is None else f"no open finding at or above {fail_on}"
    return Decision(PASSED, "PASSED", why, blocking)
