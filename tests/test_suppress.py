"""Unit tests of `checker.suppress.apply`: inline comments and ruleset waivers, on real files in
tmp_path, without a scan. (tests/test_suppress_baseline.py runs the same rules through the CLI.)"""
from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from checker import suppress
from checker.model import Finding, Location, Problem, Severity, Suppression
from checker.ruleset import Waiver

TODAY = datetime.date(2026, 3, 2)
NO_REASON = "`checker:ignore {rule}` has no reason (write `-- why`), so it does not suppress"
NOT_ALLOWED = "inline suppression of {rule} is not allowed by the ruleset; only an approved waiver counts"


def waiver(rule: str, expires: datetime.date | str = "2026-12-31", paths: list[str] | None = None,
           ticket: str | None = None, line: int = 7, reason: str = "accepted until the migration",
           approved_by: str = "security-lead@example.com") -> Waiver:
    """A waiver as the ruleset loader makes it from `waivers:` in rules.yaml at `line` (the one place
    that knows its shape)."""
    if isinstance(expires, str):
        expires = datetime.date.fromisoformat(expires)
    return Waiver(rule=rule, reason=reason, approved_by=approved_by, expires=expires,
                  paths=None if paths is None else tuple(paths), ticket=ticket, source="rules.yaml", line=line)


def finding(rule: str = "ORG-K8S-001", path: str = "pod.yaml", line: int = 2,
            suppression: Suppression | None = None) -> Finding:
    return Finding(rule, Severity.HIGH, "image is not from an approved registry", Location(path, line, line),
                   "Pod/api", suppression=suppression)


def run(root: Path, findings: list[Finding], waivers: list[Waiver] | None = None, allow_inline: bool = True,
        forbid_inline: tuple[str, ...] = (), today: datetime.date = TODAY) -> suppress.Suppressed:
    return suppress.apply(findings, root, waivers or [], allow_inline, forbid_inline, today)


@pytest.fixture
def pod(tmp_path: Path) -> Path:
    """pod.yaml: line 2 carries a comment with a reason, line 4 is below one, line 7 is bare."""
    (tmp_path / "pod.yaml").write_text(
        "kind: Pod\n"
        "image: docker.io/api:1  # checker:ignore ORG-K8S-001 -- vendor image, mirrored in PAY-9\n"
        "# checker:ignore ORG-K8S-001 -- sidecar comes from the vendor's chart\n"
        "image: docker.io/sidecar:1\n"
        "\n"
        "# checker:ignore ORG-K8S-001 -- too far above\n"
        "\n"
        "image: docker.io/other:1\n"
    )
    return tmp_path


# --- inline -------------------------------------------------------------------------------------


def test_a_comment_on_the_line_suppresses_with_its_reason_and_place(pod: Path) -> None:
    out = run(pod, [finding(line=2)])
    assert out.findings == [finding(line=2, suppression=Suppression(
        "inSource", "vendor image, mirrored in PAY-9", "pod.yaml:2"))]
    assert out.notes == []
    assert out.findings[0].suppression is not None and out.findings[0].suppression.properties() == {}


def test_a_comment_on_the_line_above_suppresses(pod: Path) -> None:
    out = run(pod, [finding(line=4)])
    assert out.findings[0].suppression == Suppression("inSource", "sidecar comes from the vendor's chart",
                                                      "pod.yaml:3")


def test_a_comment_two_lines_above_or_below_does_not(pod: Path) -> None:
    out = run(pod, [finding(line=8), finding(line=1)])
    assert [f.suppression for f in out.findings] == [None, None]
    assert out.notes == []


def test_a_comment_for_another_rule_does_not_suppress(pod: Path) -> None:
    out = run(pod, [finding("ORG-K8S-002", line=2)])
    assert out.findings[0].suppression is None
    assert out.notes == []


def test_a_pattern_in_a_comment_does_not_suppress_and_says_so(tmp_path: Path) -> None:
    """Rules are named exactly inline (a pattern would hide rules nobody looked at): the developer
    who wrote `ORG-K8S-*` is told why it did nothing; a pattern matching another rule says nothing."""
    (tmp_path / "pod.yaml").write_text("kind: Pod\nimage: x  # checker:ignore ORG-K8S-* -- vendor image\n")
    out = run(tmp_path, [finding("ORG-K8S-001", line=2), finding("ORG-GHA-001", line=2)])
    assert [f.suppression for f in out.findings] == [None, None]
    note = ("pod.yaml:2: `checker:ignore` names rules exactly, so its pattern does not suppress ORG-K8S-001; "
            "name the rule")
    assert out.notes == [note]


def test_double_slash_comments_in_hcl(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('resource "aws_s3_bucket" "logs" {  // checker:ignore CKV_AWS_18 -- '
                                      "this bucket is the access log\n}\n")
    out = run(tmp_path, [finding("CKV_AWS_18", "main.tf", 1)])
    assert out.findings[0].suppression == Suppression("inSource", "this bucket is the access log", "main.tf:1")


def test_a_comment_without_a_reason_does_not_suppress_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text("kind: Pod\nimage: docker.io/api:1  # checker:ignore ORG-K8S-001\n")
    out = run(tmp_path, [finding(line=2), finding(line=2)])
    assert [f.suppression for f in out.findings] == [None, None]
    assert out.notes == [f"pod.yaml:2: {NO_REASON.format(rule='ORG-K8S-001')}"]  # once for both findings


def test_an_empty_reason_is_no_reason(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text("image: x  # checker:ignore ORG-K8S-001 --   \n")
    out = run(tmp_path, [finding(line=1)])
    assert out.findings[0].suppression is None
    assert out.notes == [f"pod.yaml:1: {NO_REASON.format(rule='ORG-K8S-001')}"]


@pytest.mark.parametrize("ids", ["ORG-K8S-001,CKV_K8S_20", "ORG-K8S-001, CKV_K8S_20", "CKV_K8S_20 ORG-K8S-001"])
def test_one_comment_names_several_rules(tmp_path: Path, ids: str) -> None:
    (tmp_path / "pod.yaml").write_text(f"# checker:ignore {ids} -- both are the vendor's\nimage: x\n")
    out = run(tmp_path, [finding("ORG-K8S-001"), finding("CKV_K8S_20"), finding("ORG-K8S-002")])
    assert [f.suppression for f in out.findings] == [
        Suppression("inSource", "both are the vendor's", "pod.yaml:1"),
        Suppression("inSource", "both are the vendor's", "pod.yaml:1"),
        None,
    ]


def test_a_finding_in_a_file_that_is_not_there_is_left_alone(tmp_path: Path) -> None:
    missing = finding("ORG-REPO-001", ".github/CODEOWNERS", 1)
    assert run(tmp_path, [missing]).findings == [missing]


def test_findings_keep_their_order_and_none_is_dropped(pod: Path) -> None:
    given = [finding(line=8), finding(line=2), finding("ORG-K8S-002", line=4), finding(line=4)]
    out = run(pod, given)
    assert [(f.rule_id, f.location.start_line) for f in out.findings] == [
        (f.rule_id, f.location.start_line) for f in given]
    assert [f.suppression is not None for f in out.findings] == [False, True, False, True]


# --- inline not allowed -------------------------------------------------------------------------


def test_inline_not_allowed_counts_the_finding_and_says_so(pod: Path) -> None:
    out = run(pod, [finding(line=2), finding(line=4)], allow_inline=False)
    assert [f.suppression for f in out.findings] == [None, None]
    assert out.notes == [f"pod.yaml:2: {NOT_ALLOWED.format(rule='ORG-K8S-001')}",
                         f"pod.yaml:3: {NOT_ALLOWED.format(rule='ORG-K8S-001')}"]


def test_forbid_inline_globs_forbid_only_the_rules_they_match(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text("# checker:ignore ORG-K8S-001,CKV_K8S_20 -- vendor chart\nimage: x\n")
    out = run(tmp_path, [finding("ORG-K8S-001"), finding("CKV_K8S_20")], forbid_inline=("ORG-K8S-*",))
    assert [f.suppression for f in out.findings] == [None, Suppression("inSource", "vendor chart", "pod.yaml:1")]
    assert out.notes == [f"pod.yaml:1: {NOT_ALLOWED.format(rule='ORG-K8S-001')}"]


def test_a_checkov_skip_is_kept_where_inline_is_allowed(tmp_path: Path) -> None:
    skipped = finding("CKV_K8S_20", suppression=Suppression("inSource", "reviewed in OPS-1", "checkov:skip"))
    out = run(tmp_path, [skipped])
    assert out.findings == [skipped]
    assert out.notes == []


@pytest.mark.parametrize(("allow_inline", "forbid_inline"), [(False, ()), (True, ("CKV_*",))])
def test_a_checkov_skip_is_stripped_where_inline_is_not_allowed(tmp_path: Path, allow_inline: bool,
                                                               forbid_inline: tuple[str, ...]) -> None:
    skipped = finding("CKV_K8S_20", suppression=Suppression("inSource", "reviewed in OPS-1", "checkov:skip"))
    out = run(tmp_path, [skipped], allow_inline=allow_inline, forbid_inline=forbid_inline)
    assert out.findings == [finding("CKV_K8S_20")]
    assert out.notes == [f"pod.yaml:2: {NOT_ALLOWED.format(rule='CKV_K8S_20')}"]


def test_a_stripped_checkov_skip_may_still_be_waived(tmp_path: Path) -> None:
    skipped = finding("CKV_K8S_20", suppression=Suppression("inSource", "reviewed in OPS-1", "checkov:skip"))
    out = run(tmp_path, [skipped], [waiver("CKV_K8S_20")], allow_inline=False)
    assert out.findings[0].suppression is not None and out.findings[0].suppression.kind == "external"


# --- waivers ------------------------------------------------------------------------------------


def test_a_waiver_makes_exactly_this_suppression(tmp_path: Path) -> None:
    w = waiver("ORG-K8S-001", "2026-06-30", paths=["deploy/**"], ticket="SEC-42", line=12)
    out = run(tmp_path, [finding(path="deploy/pod.yaml")], [w])
    suppression = out.findings[0].suppression
    assert suppression is not None
    assert suppression == Suppression("external", "accepted until the migration", "rules.yaml:12",
                                      approved_by="security-lead@example.com", expires="2026-06-30",
                                      paths=("deploy/**",), ticket="SEC-42")
    assert suppression.properties() == {"approvedBy": "security-lead@example.com", "expires": "2026-06-30",
                                        "paths": ["deploy/**"], "ticket": "SEC-42"}
    assert out.notes == []


def test_a_waiver_without_paths_or_ticket_covers_the_rule_everywhere(tmp_path: Path) -> None:
    out = run(tmp_path, [finding(path="a.yaml"), finding(path="deep/down/b.yaml"), finding("ORG-K8S-002")],
              [waiver("ORG-K8S-001")])
    assert [f.suppression for f in out.findings] == [
        Suppression("external", "accepted until the migration", "rules.yaml:7",
                    approved_by="security-lead@example.com", expires="2026-12-31"),
    ] * 2 + [None]
    assert Suppression("external", "", approved_by="a@example.com", expires="2026-12-31").properties() == {
        "approvedBy": "a@example.com", "expires": "2026-12-31", "paths": []}


@pytest.mark.parametrize(("paths", "path", "covered"), [
    (["deploy/**"], "deploy/pod.yaml", True),
    (["deploy/**"], "deploy/prod/pod.yaml", True),
    (["deploy/**"], "other/deploy/pod.yaml", False),
    (["deploy/"], "deploy/prod/pod.yaml", True),
    (["*.tf"], "modules/net/main.tf", True),  # no slash: any depth, as in .gitignore
    (["/main.tf"], "main.tf", True),
    (["/main.tf"], "modules/main.tf", False),  # a leading slash anchors at the scan root
    (["deploy/", "!deploy/prod.yaml"], "deploy/dev.yaml", True),
    (["deploy/", "!deploy/prod.yaml"], "deploy/prod.yaml", False),  # negated
    (["services/payments api/**"], "services/payments api/Dockerfile", True),
    (["deploy/überweisung*.yaml"], "deploy/überweisung service.yaml", True),
])
def test_waiver_paths_match_as_gitignore_patterns(tmp_path: Path, paths: list[str], path: str,
                                                   covered: bool) -> None:
    out = run(tmp_path, [finding(path=path)], [waiver("ORG-K8S-001", paths=paths)])
    assert (out.findings[0].suppression is not None) == covered


def test_the_first_waiver_that_covers_a_finding_is_used_and_the_other_is_stale(tmp_path: Path) -> None:
    first, second = waiver("ORG-K8S-001", line=7), waiver("ORG-K8S-001", line=13)
    out = run(tmp_path, [finding()], [first, second])
    assert [f.suppression.source if f.suppression else "" for f in out.findings] == ["rules.yaml:7"]
    assert out.notes == ["waiver for ORG-K8S-001 (rules.yaml:13) matches no finding: a stale exception; remove it"]


def test_an_inline_comment_comes_before_a_waiver(pod: Path) -> None:
    out = run(pod, [finding(line=2)], [waiver("ORG-K8S-001")])
    assert out.findings[0].suppression == Suppression("inSource", "vendor image, mirrored in PAY-9", "pod.yaml:2")


def test_an_expired_waiver_counts_the_finding_again_and_says_so(tmp_path: Path) -> None:
    out = run(tmp_path, [finding(), finding(line=9)], [waiver("ORG-K8S-001", "2026-03-01")])
    assert [f.suppression for f in out.findings] == [None, None]
    assert out.notes == ["waiver for ORG-K8S-001 (rules.yaml:7) expired on 2026-03-01: its findings count again"]


def test_an_expired_waiver_that_matches_nothing_is_not_called_stale(tmp_path: Path) -> None:
    assert run(tmp_path, [], [waiver("ORG-K8S-001", "2026-03-01")]).notes == []


def test_a_waiver_suppresses_on_its_last_day(tmp_path: Path) -> None:
    out = run(tmp_path, [finding()], [waiver("ORG-K8S-001", TODAY)])
    assert out.findings[0].suppression is not None
    assert out.notes == ["waiver for ORG-K8S-001 (rules.yaml:7) expires on 2026-03-02, in 0 day(s)"]


@pytest.mark.parametrize(("days", "warned"), [(1, True), (13, True), (14, True), (15, False), (90, False)])
def test_a_waiver_expiring_within_14_days_is_warned_about(tmp_path: Path, days: int, warned: bool) -> None:
    expires = TODAY + datetime.timedelta(days=days)
    out = run(tmp_path, [finding()], [waiver("ORG-K8S-001", expires)])
    assert out.findings[0].suppression is not None
    assert out.notes == ([f"waiver for ORG-K8S-001 (rules.yaml:7) expires on {expires}, in {days} day(s)"]
                         if warned else [])


def test_a_waiver_that_matches_no_finding_is_stale(tmp_path: Path) -> None:
    out = run(tmp_path, [finding("ORG-K8S-002"), finding(path="elsewhere/pod.yaml")],
              [waiver("ORG-K8S-001", paths=["deploy/**"])])
    assert [f.suppression for f in out.findings] == [None, None]
    assert out.notes == ["waiver for ORG-K8S-001 (rules.yaml:7) matches no finding: a stale exception; remove it"]


def test_a_stale_waiver_expiring_soon_is_reported_once_as_stale(tmp_path: Path) -> None:
    out = run(tmp_path, [], [waiver("ORG-K8S-001", TODAY + datetime.timedelta(days=3))])
    assert out.notes == ["waiver for ORG-K8S-001 (rules.yaml:7) matches no finding: a stale exception; remove it"]


def test_notes_come_in_order_without_repeats(pod: Path) -> None:
    (pod / "bare.yaml").write_text("image: x  # checker:ignore ORG-K8S-002\n")
    findings = [finding("ORG-K8S-002", "bare.yaml", 1), finding("ORG-K8S-003"), finding("ORG-K8S-003", line=5),
                finding("ORG-K8S-002", "bare.yaml", 1)]
    waivers = [waiver("ORG-K8S-003", "2026-02-01", line=7), waiver("ORG-GHA-001", line=13),
               waiver("ORG-K8S-001", TODAY + datetime.timedelta(days=5), line=19)]
    out = run(pod, [*findings, finding(line=8)], waivers)
    assert out.notes == [
        f"bare.yaml:1: {NO_REASON.format(rule='ORG-K8S-002')}",
        "waiver for ORG-K8S-003 (rules.yaml:7) expired on 2026-02-01: its findings count again",
        "waiver for ORG-GHA-001 (rules.yaml:13) matches no finding: a stale exception; remove it",
        "waiver for ORG-K8S-001 (rules.yaml:19) expires on 2026-03-07, in 5 day(s)",
    ]


# --- crashed checks -----------------------------------------------------------------------------------------------


CRASH = Problem("Checkov check CKV_GHA_2 crashed on jobs.*.steps[], so that resource was not checked by it",
                ".github/workflows/ci.yml", 0, "checkov", rule="CKV_GHA_2")


@pytest.mark.parametrize(("given", "accepted"), [
    (waiver("CKV_GHA_2", paths=[".github/workflows/"]), True),
    (waiver("CKV_GHA_2"), True),  # no paths: anywhere
    (waiver("CKV_GHA_2", paths=["src/"]), False),
    (waiver("CKV_GHA_3"), False),
    (waiver("CKV_GHA_2", expires="2026-03-01"), False),
], ids=["its-path", "anywhere", "another-path", "another-rule", "expired"])
def test_a_waiver_accepts_the_gap_of_a_crashed_check_only_for_its_rule_paths_and_time(
        tmp_path: Path, given: Waiver, accepted: bool) -> None:
    parse_error = Problem("is not valid YAML", "broken.yaml", 3)
    out = suppress.apply([], tmp_path, [given], True, (), TODAY, [CRASH, parse_error])
    assert out.problems == ([parse_error] if accepted else [CRASH, parse_error])  # a parse error is no check's gap
    note = (".github/workflows/ci.yml: CKV_GHA_2 could not check it (Checkov check CKV_GHA_2 crashed on "
            "jobs.*.steps[], so that resource was not checked by it); the gap is accepted by the waiver at "
            "rules.yaml:7 (accepted until the migration; approved by security-lead@example.com, expires 2026-12-31)")
    assert (note in out.notes) is accepted
    assert any("matches no finding" in n for n in out.notes) is (not accepted and given.expires >= TODAY)
