"""Unit tests of the gate, `checker.gate.decide`: findings, problems and a threshold in; verdict,
exit code, reason and the blocking findings out. No scan, no files."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checker.gate import FAILED, INCOMPLETE, PASSED, Decision, decide
from checker.model import (
    FAIL_ON_CHOICES,
    BaselineState,
    FailOn,
    Finding,
    Location,
    Problem,
    Severity,
    Suppression,
    SuppressionKind,
)

SEVERITIES = tuple(Severity)  # most severe first
THRESHOLDS: tuple[FailOn, ...] = ("critical", "high", "medium", "low", "info")


def finding(severity: Severity, n: int = 1, *, suppressed: SuppressionKind | None = None,
            baseline: BaselineState = "") -> Finding:
    """A finding of `severity` at line `n`; suppressed ('inSource' or 'external') and/or in a baseline state."""
    suppression = Suppression(suppressed, "accepted") if suppressed else None
    return Finding(f"R-{severity.value}", severity, f"message {n}", Location("a.yaml", n, n), f"res{n}",
                   suppression=suppression, baseline_state=baseline)


def one_of_each() -> list[Finding]:
    return [finding(sev, i) for i, sev in enumerate(SEVERITIES, start=1)]


def test_the_thresholds_are_the_severities_and_never() -> None:
    assert (*THRESHOLDS, "never") == FAIL_ON_CHOICES
    assert (PASSED, FAILED, INCOMPLETE) == (0, 1, 3)


@pytest.mark.parametrize("fail_on", THRESHOLDS)
def test_each_threshold_blocks_open_findings_at_or_above_it(fail_on: FailOn) -> None:
    findings = one_of_each()
    decision = decide(findings, [], fail_on)
    expected = tuple(f for f in findings if f.severity.rank >= Severity(fail_on).rank)
    assert decision == Decision(FAILED, "FAILED", f"{len(expected)} open finding(s) at or above {fail_on}",
                                expected)
    assert not decision.passed


def test_never_passes_whatever_is_found() -> None:
    decision = decide(one_of_each(), [], "never")
    assert decision == Decision(PASSED, "PASSED", "fail_on is never", ())
    assert decision.passed


@pytest.mark.parametrize("fail_on", THRESHOLDS)
def test_nothing_found_passes(fail_on: FailOn) -> None:
    assert decide([], [], fail_on) == Decision(PASSED, "PASSED", f"no open finding at or above {fail_on}", ())


@pytest.mark.parametrize("at", range(len(THRESHOLDS)))
def test_a_finding_exactly_at_the_threshold_blocks_and_one_below_does_not(at: int) -> None:
    fail_on = THRESHOLDS[at]
    exactly = finding(Severity(fail_on))
    assert decide([exactly], [], fail_on).blocking == (exactly,)
    if at + 1 < len(SEVERITIES):
        below = finding(SEVERITIES[at + 1])
        assert decide([below], [], fail_on) == Decision(
            PASSED, "PASSED", f"no open finding at or above {fail_on}", ())


def test_problems_dominate_with_exit_3_even_with_blocking_findings() -> None:
    findings = one_of_each()
    problems = [Problem("cannot parse", "a.yaml", 3, "discover"), Problem("Checkov timed out", source="checkov")]
    decision = decide(findings, problems, "high")
    assert decision == Decision(INCOMPLETE, "INCOMPLETE",
                                "2 thing(s) could not be checked, so the gate fails closed", tuple(findings[:2]))
    assert not decision.passed


@pytest.mark.parametrize("fail_on", [*THRESHOLDS, "never"])
def test_one_problem_fails_closed_at_every_threshold(fail_on: FailOn) -> None:
    decision = decide([], [Problem("could not read")], fail_on)
    assert (decision.exit_code, decision.verdict, decision.blocking) == (INCOMPLETE, "INCOMPLETE", ())
    assert decision.reason == "1 thing(s) could not be checked, so the gate fails closed"


@pytest.mark.parametrize("kind", ["inSource", "external"])
def test_suppressed_findings_never_block(kind: SuppressionKind) -> None:
    decision = decide([finding(Severity.CRITICAL, suppressed=kind)], [], "info")
    assert decision == Decision(PASSED, "PASSED", "no open finding at or above info", ())


def test_findings_unchanged_since_the_baseline_never_block_and_new_ones_do() -> None:
    unchanged, new = finding(Severity.CRITICAL, 1, baseline="unchanged"), finding(Severity.HIGH, 2, baseline="new")
    assert decide([unchanged], [], "info").exit_code == PASSED
    decision = decide([unchanged, new], [], "high")
    assert decision == Decision(FAILED, "FAILED", "1 open finding(s) at or above high", (new,))


def test_a_suppressed_finding_new_since_the_baseline_does_not_block() -> None:
    assert decide([finding(Severity.CRITICAL, suppressed="external", baseline="new")], [], "info").passed


def test_blocking_keeps_the_order_of_the_findings_given() -> None:
    findings = [finding(Severity.LOW, 1), finding(Severity.CRITICAL, 2), finding(Severity.INFO, 3),
                finding(Severity.HIGH, 4), finding(Severity.CRITICAL, 5, suppressed="inSource"),
                finding(Severity.MEDIUM, 6)]
    assert decide(findings, [], "medium").blocking == (findings[1], findings[3], findings[5])
    assert decide(list(reversed(findings)), [], "medium").blocking == (findings[5], findings[3], findings[1])


def test_an_unknown_threshold_is_an_error_never_a_pass() -> None:
    with pytest.raises(ValueError):
        decide([], [], "severe")  # type: ignore[arg-type]


_findings = st.lists(st.builds(
    lambda severity, line, suppressed, baseline: finding(severity, line, suppressed=suppressed, baseline=baseline),
    st.sampled_from(SEVERITIES), st.integers(1, 50), st.sampled_from([None, "inSource", "external"]),
    st.sampled_from(["", "new", "unchanged"])), max_size=12)


@given(findings=_findings, problems=st.integers(0, 3), fail_on=st.sampled_from([*THRESHOLDS, "never"]))
def test_decision_properties(findings: list[Finding], problems: int, fail_on: FailOn) -> None:
    """Exit 3 exactly when something could not be checked; blocking is exactly the open findings
    at or above the threshold, in order; exit 1 exactly when it is non-empty and nothing failed."""
    decision = decide(findings, [Problem(f"p{i}") for i in range(problems)], fail_on)
    assert (decision.exit_code == INCOMPLETE) == (problems > 0)
    threshold = None if fail_on == "never" else Severity(fail_on).rank
    assert decision.blocking == tuple(f for f in findings
                                      if f.is_open and threshold is not None and f.severity.rank >= threshold)
    assert all(f.suppression is None and f.baseline_state != "unchanged" for f in decision.blocking)
    assert (decision.exit_code == FAILED) == (not problems and bool(decision.blocking))
    assert decision.passed == (decision.exit_code == PASSED) == (not problems and not decision.blocking)
    assert decision.verdict == {PASSED: "PASSED", FAILED: "FAILED", INCOMPLETE: "INCOMPLETE"}[decision.exit_code]
