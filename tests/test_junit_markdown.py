"""JUnit XML and Markdown reports, from the real CLI on real files (Checkov included).

The fixture is a git repository with a service folder: a Kubernetes Deployment with a privileged
container pulling from docker.io, a Dockerfile, a ruleset that extends org-baseline with a
waiver expiring in a week, and an inline suppression. The JUnit counts must equal the JSON
report's findings exactly; the Markdown must hold the verdict, well-formed tables, every top
finding's rule id and links to the lines on GitHub.
"""
from __future__ import annotations

import collections
import dataclasses
import datetime
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from checker import gate
from checker.change import Change
from checker.cli import main
from checker.model import Finding, Location, Problem, Rule, ScanResult, Severity, Suppression
from checker.reporters import junit, markdown

REPO_URL = "https://github.com/acme/payments"

DEPLOYMENT = """\
apiVersion: apps/v1  # checker:ignore CKV_K8S_43 -- digests are pinned by the release tooling (OPS-12)
kind: Deployment
metadata:
  name: api
  namespace: payments
  labels: {app: api, team: payments, data-classification: internal}
spec:
  replicas: 2
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api, team: payments, data-classification: internal}
    spec:
      containers:
        - name: api
          image: docker.io/library/nginx:1.27
          securityContext:
            privileged: true
"""
IMAGE_LINE = 17

DOCKERFILE = """\
FROM docker.io/library/python:3.12-slim
RUN pip install flask
COPY app.py /app/app.py
CMD ["python", "/app/app.py"]
"""


def _ruleset(expires: datetime.date) -> str:
    return f"""\
apiVersion: checker/v1
kind: Ruleset
metadata: {{name: payments-api, version: 2.3.0}}
extends: [org-baseline]
waivers:
  - rule: CKV_DOCKER_2
    paths: ["Dockerfile"]
    reason: "Health checks come from the platform's probes | tracked in PAY-7"
    approved_by: jane.doe@example.com
    expires: {expires.isoformat()}
"""


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "commit.gpgsign=false", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("junit-md") / "repo"
    svc = repo / "service"
    (svc / "deploy").mkdir(parents=True)
    (svc / "deploy" / "deployment.yaml").write_text(DEPLOYMENT)
    (svc / "Dockerfile").write_text(DOCKERFILE)
    (svc / ".checker.yaml").write_text(_ruleset(datetime.date.today() + datetime.timedelta(days=7)))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "dev@example.com")
    _git(repo, "config", "user.name", "Dev")
    _git(repo, "remote", "add", "origin", REPO_URL + ".git")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "service")
    return svc


@dataclasses.dataclass
class Reports:
    exit_code: int
    json: dict[str, Any]
    junit: ET.Element
    markdown: str
    junit_text: str


def _scan(folder: Path, out: Path, *extra: str) -> Reports:
    out.mkdir(parents=True, exist_ok=True)
    args = ["scan", str(folder), "--json-output", str(out / "r.json"), "--junit-output", str(out / "r.xml"),
            "--markdown-output", str(out / "r.md"), *extra]
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return _reports(result.exit_code, out)


def _reports(exit_code: int, out: Path) -> Reports:
    junit_text = (out / "r.xml").read_text()
    return Reports(exit_code, json.loads((out / "r.json").read_text()), ET.fromstring(junit_text),
                   (out / "r.md").read_text(), junit_text)


@pytest.fixture(scope="module")
def reports(service: Path, tmp_path_factory: pytest.TempPathFactory) -> Reports:
    return _scan(service, tmp_path_factory.mktemp("out"))


# --- JUnit ---------------------------------------------------------------------------------

def test_fixture_has_open_suppressed_and_blocking_findings(reports: Reports) -> None:
    findings = reports.json["findings"]
    assert reports.exit_code == 1 and reports.json["decision"]["verdict"] == "FAILED"
    assert {f["suppression"]["kind"] for f in findings if f["suppression"]} == {"inSource", "external"}
    rules = {f["rule"] for f in findings if not f["suppression"]}
    assert {"ORG-K8S-001", "CKV_K8S_16"} <= rules


def test_junit_counts_match_the_json_findings_exactly(reports: Reports) -> None:
    findings, problems = reports.json["findings"], reports.json["problems"]
    opened = [f for f in findings if f["suppression"] is None]
    suppressed = [f for f in findings if f["suppression"] is not None]
    root = reports.junit
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(findings) + len(problems)
    assert len(root.findall("./testsuite/testcase/failure")) == len(opened)
    assert len(root.findall("./testsuite/testcase/skipped")) == len(suppressed)
    assert len(root.findall("./testsuite/testcase/error")) == len(problems)
    expected = {"tests": len(findings) + len(problems), "failures": len(opened), "skipped": len(suppressed),
                "errors": len(problems)}
    assert {k: int(root.get(k)) for k in expected} == expected
    for suite in root.findall("testsuite"):
        kids = suite.findall("testcase")
        assert int(suite.get("tests")) == len(kids)
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in kids)
        assert int(suite.get("skipped")) == sum(c.find("skipped") is not None for c in kids)
        assert int(suite.get("errors")) == sum(c.find("error") is not None for c in kids)


def test_junit_one_suite_per_rule_one_case_per_finding(reports: Reports) -> None:
    findings = reports.json["findings"]
    suites = {s.get("name"): s for s in reports.junit.findall("testsuite")}
    assert set(suites) == {f["rule"] for f in findings}
    for name, suite in suites.items():
        assert all(c.get("classname") == name for c in suite.findall("testcase"))
        names = [c.get("name") for c in suite.findall("testcase")]
        assert len(names) == len(set(names)), names
    failed = collections.Counter(
        (c.get("classname"), c.get("file"), int(c.get("line")), c.find("failure").get("type"))
        for c in reports.junit.iter("testcase") if c.find("failure") is not None)
    opened = collections.Counter((f["rule"], f["path"], f["start_line"], f["severity"])
                                 for f in findings if f["suppression"] is None)
    assert failed == opened


def test_junit_failure_and_skipped_texts(reports: Reports) -> None:
    case = next(c for c in reports.junit.iter("testcase") if c.get("classname") == "ORG-K8S-001")
    failure = case.find("failure")
    assert failure.get("type") == "high" and "docker.io/library/nginx:1.27" in failure.get("message")
    assert f"deploy/deployment.yaml:{IMAGE_LINE}:" in failure.text
    assert "fix: Push the image to an approved registry" in failure.text
    assert case.get("name") == ("deploy/deployment.yaml "
                                "Deployment/api.spec.template.spec.containers[0].image")
    waived = next(c for c in reports.junit.iter("testcase") if c.get("classname") == "CKV_DOCKER_2")
    skipped = waived.find("skipped")
    assert skipped.get("message").startswith("suppressed (external): Health checks come from")
    assert "approvedBy: jane.doe@example.com" in skipped.text
    inline = next(c for c in reports.junit.iter("testcase") if c.get("classname") == "CKV_K8S_43")
    assert "suppressed (inSource): digests are pinned" in inline.find("skipped").get("message")


def test_problems_are_error_testcases(service: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "deployment.yaml").write_text(DEPLOYMENT)
    (broken / "bad.yaml").write_text("apiVersion: v1\nkind: ConfigMap\ndata: {a: [1, 2\n")
    got = _scan(broken, tmp_path / "out", "-r", "org-baseline")
    assert got.exit_code == 3 and got.json["problems"]
    errors = got.junit.findall("./testsuite/testcase/error")
    assert len(errors) == len(got.json["problems"]) == int(got.junit.get("errors"))
    suite = next(s for s in got.junit.findall("testsuite") if s.find("testcase/error") is not None)
    assert suite.get("name") == junit.PROBLEMS_SUITE
    assert suite.find("testcase").get("file") == "bad.yaml"
    assert len(got.junit.findall("./testsuite/testcase")) == len(got.json["findings"]) + len(got.json["problems"])
    assert "**Gate: INCOMPLETE**" in got.markdown
    assert "### Could not check (the gate fails closed)" in got.markdown and "`bad.yaml:" in got.markdown


# --- Markdown -------------------------------------------------------------------------------

def _tables(text: str) -> list[list[str]]:
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def _cells(row: str) -> list[str]:
    assert row.startswith("| ") and row.endswith(" |"), row
    return re.split(r"(?<!\\)\|", row[1:-1])


def test_markdown_verdict_and_ruleset(reports: Reports) -> None:
    md = reports.markdown
    assert md.startswith("## Compliance gate: FAILED\n")
    assert "**Gate: FAILED**" in md
    digest = reports.json["ruleset"]["digest"]
    assert "`payments-api` version `2.3.0`" in md and digest in md
    assert not re.search(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]", md), "no emoji"


def test_markdown_tables_are_well_formed(reports: Reports) -> None:
    tables = _tables(reports.markdown)
    assert len(tables) >= 3  # severity counts, top findings, expiring waivers
    for table in tables:
        widths = {len(_cells(row)) for row in table}
        assert len(widths) == 1, table
        assert set(table[1].replace(" ", "")) <= {"|", "-"}, table[1]


def test_markdown_counts_by_severity(reports: Reports) -> None:
    table = next(t for t in _tables(reports.markdown) if t[0].startswith("| Severity | Open |"))
    rows = {(_cells(r)[0].strip()): [c.strip() for c in _cells(r)[1:]] for r in table[2:]}
    for sev in Severity:
        of_sev = [f for f in reports.json["findings"] if f["severity"] == sev.value]
        assert rows[sev.value][:2] == [str(sum(f["suppression"] is None for f in of_sev)),
                                       str(sum(f["suppression"] is not None for f in of_sev))]


def test_markdown_top_findings_are_linked_and_ordered(reports: Reports) -> None:
    md = reports.markdown
    opened = [f for f in reports.json["findings"] if f["suppression"] is None]
    top = sorted(opened, key=lambda f: -Severity(f["severity"]).rank)[:markdown.TOP]
    table = next(t for t in _tables(md) if t[0].startswith("| Severity | Rule |"))
    assert len(table) - 2 == len(top)
    for f in top:
        assert f["rule"] in md
    ranks = [Severity(_cells(r)[0].strip()).rank for r in table[2:]]
    assert ranks == sorted(ranks, reverse=True)
    commit = reports.json["change"]["commit"]
    link = f"({REPO_URL}/blob/{commit}/service/deploy/deployment.yaml#L{IMAGE_LINE})"
    row = next(r for r in table if "ORG-K8S-001" in r)
    assert link in row


def test_markdown_expiring_waivers(reports: Reports) -> None:
    md = reports.markdown
    assert "### Waivers expiring within 14 days" in md
    table = next(t for t in _tables(md) if t[0].startswith("| Expires |"))
    assert len(table) == 3 and "CKV_DOCKER_2" in table[2] and "jane.doe@example.com" in table[2]
    assert "come from the platform's probes \\| tracked in PAY-7" in table[2]  # `|` escaped


def test_subprocess_cli_writes_the_same_reports(service: Path, reports: Reports, tmp_path: Path) -> None:
    out = tmp_path / "sub"
    out.mkdir()
    done = subprocess.run([sys.executable, "-m", "checker", "scan", ".", "--json-output", str(out / "r.json"),
                           "--junit-output", str(out / "r.xml"), "--markdown-output", str(out / "r.md")],
                          cwd=service, capture_output=True, text=True, timeout=600)
    got = _reports(done.returncode, out)
    assert got.exit_code == reports.exit_code == 1, done.stderr
    assert {k: got.junit.get(k) for k in ("tests", "failures", "errors", "skipped")} == \
        {k: reports.junit.get(k) for k in ("tests", "failures", "errors", "skipped")}
    assert len(got.json["findings"]) == int(got.junit.get("tests"))
    assert _tables(got.markdown)[0] == _tables(reports.markdown)[0]


def test_format_junit_and_markdown_on_stdout(service: Path) -> None:
    result = CliRunner().invoke(main, ["scan", str(service), "--format", "junit"])
    assert result.exit_code == 1
    assert ET.fromstring(result.output).tag == "testsuites"
    result = CliRunner().invoke(main, ["scan", str(service), "--format", "markdown"])
    assert result.exit_code == 1 and "**Gate: FAILED**" in result.output


# --- renderers on a hand-made result (edge cases the fixture does not reach) ---------------------

def _result(findings: list[Finding], problems: tuple[Problem, ...] = (), root: str = "/nonexistent/repo/sub",
            **change: str) -> ScanResult:
    ruleset = SimpleNamespace(name="edge", version="1.0.0", digest="0" * 64)
    rules = {"ORG-X-001": Rule("ORG-X-001", "A | B", Severity.HIGH, "python",
                               remediation="Do this | that:\n\n    x: a|b\n\nThen more.")}
    return ScanResult(root=root, ruleset=ruleset, rules=rules, findings=tuple(findings),
                      problems=problems, targets=(), started="2026-01-01T00:00:00Z",
                      finished="2026-01-01T00:00:03Z", versions={"checker": "0"}, change=Change(**change),
                      fail_on="high", decision=gate.decide(findings, problems, "high"))


def _finding(line: int, message: str = "bad | worse", **kw: Any) -> Finding:
    return Finding("ORG-X-001", Severity.HIGH, message, Location("a b/x.yaml", line, line), **kw)


def test_markdown_escapes_and_caps_the_table(tmp_path: Path) -> None:
    (tmp_path / "sub" / "a b").mkdir(parents=True)
    (tmp_path / "sub" / "a b" / "x.yaml").write_text("x: 1\n")
    findings = [_finding(i, resource=f"r{i}") for i in range(1, 61)]
    findings.append(dataclasses.replace(_finding(1), location=Location("CODEOWNERS", 1, 1), severity=Severity.CRITICAL))
    md = markdown.render(_result(findings, root=str(tmp_path / "sub"), toplevel=str(tmp_path), commit="c0ffee",
                                 repository="https://gitlab.example.com/g/p"))
    table = next(t for t in _tables(md) if t[0].startswith("| Severity | Rule |"))
    assert len(table) - 2 == markdown.TOP and "11 more open finding(s)" in md
    assert all(len(_cells(r)) == 6 for r in table)
    assert "bad \\| worse" in md and "Do this \\| that: `x: a\\|b`" in md
    assert "(https://gitlab.example.com/g/p/-/blob/c0ffee/sub/a%20b/x.yaml#L1)" in md
    assert "| critical | `ORG-X-001` | `CODEOWNERS:1` |" in md  # a missing file gets no link


def test_markdown_bounds_problems_and_notes() -> None:
    problems = tuple(Problem(f"cannot parse | {i}", f"f{i}.yaml", i) for i in range(1, 61))
    result = dataclasses.replace(_result([], problems), notes=tuple(f"note {i}" for i in range(30)))
    md = markdown.render(result)
    assert "**Gate: INCOMPLETE**" in md
    table = next(t for t in _tables(md) if t[0].startswith("| Location |"))
    assert len(table) - 2 == markdown.TOP and all(len(_cells(r)) == 3 for r in table)
    assert "10 more in the SARIF report" in md and "- and 10 more in the SARIF report" in md


def test_markdown_without_provenance_has_no_links_and_passes() -> None:
    md = markdown.render(_result([]))
    assert "**Gate: PASSED**" in md and "No open findings." in md and "](" not in md


def test_expiring_waivers_window() -> None:
    today = datetime.date(2026, 1, 1)

    def waived(days: int) -> Finding:
        return _finding(days, suppression=Suppression("external", "why", "r.yaml:3",
                                                      expires=str(today + datetime.timedelta(days=days))))
    inline = _finding(1, suppression=Suppression("inSource", "why", "x:1"))
    soon = markdown.expiring_waivers([waived(0), waived(14), waived(15), waived(-1), inline], today)
    assert [f.location.start_line for f, _ in soon] == [0, 14]


def test_junit_is_valid_xml_with_control_characters_and_repeated_names() -> None:
    findings = [_finding(3, message="nul\x00 and \x1b escape"), _finding(9)]
    root = ET.fromstring(junit.render(_result(findings, (Problem("boom", "a.yaml", 2, "checkov"),))))
    names = [c.get("name") for c in root.iter("testcase")]
    assert len(names) == len(set(names)) == 3
    assert root.get("tests") == "3" and root.get("failures") == "2" and root.get("errors") == "1"
    assert root.get("time") == "3.000"
    assert "fix: Do this | that: x: a|b" in root.find(".//failure").text


# --- hostile text from the scanned repository or the ruleset (issue 8, part 5) ------------------

HOSTILE = "x\n\x1b[32mgate PASSED\u202e | [click](https://evil.example) ![i](https://evil.example/p.png) <b>`"


def _hostile_result() -> ScanResult:
    waiver = Suppression("external", f"ok{HOSTILE}", "rules.yaml:7",
                         expires="2026-01-04", approved_by=f"eve{HOSTILE}")
    findings = [
        dataclasses.replace(_finding(3, message=f"image {HOSTILE}", resource=f"Deployment/{HOSTILE}"),
                            location=Location(f"k8s/{HOSTILE}.yaml", 3, 3)),
        dataclasses.replace(_finding(4, message=HOSTILE, suppression=waiver), location=Location("k8s/ok.yaml", 4, 4)),
    ]
    result = _result(findings, (Problem(f"cannot parse {HOSTILE}", f"bad{HOSTILE}.yaml", 2, "yaml"),))
    ruleset = SimpleNamespace(name=f"edge{HOSTILE}", version=f"1{HOSTILE}", digest="0" * 64)
    return dataclasses.replace(result, ruleset=ruleset, notes=(f"note {HOSTILE}",))


def _forged(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip("| -*`>").startswith("gate PASSED")]


def test_markdown_shows_hostile_text_and_never_renders_it() -> None:
    md = markdown.render(_hostile_result())
    assert "\x1b" not in md and "\u202e" not in md and not _forged(md)
    prose = re.sub(r"(?<!\\)`[^`]*`", "", md)  # code spans show their text verbatim, links included
    assert "](https://evil" not in prose.replace("\\](https://evil", "")  # no link or image is formed
    assert "<b>" not in prose and "&lt;b&gt;" in prose  # raw HTML only where it is shown as code
    for table in _tables(md):
        assert len({len(_cells(row)) for row in table}) == 1, table
    finding = next(row for row in md.splitlines() if "`k8s/" in row)
    assert ("`k8s/x\\n\\x1b[32mgate PASSED\\u202e \\| [click](https://evil.example) "
            "![i](https://evil.example/p.png) <b>'.yaml:3`") in finding  # in a code span: shown verbatim
    assert ("image x\\\\n\\\\x1b\\[32mgate PASSED\\\\u202e \\| \\[click\\](https://evil.example) "
            "!\\[i\\](https://evil.example/p.png) &lt;b&gt;\\`") in finding  # prose: every markup escaped
    assert "- note x\\\\n\\\\x1b\\[32mgate PASSED\\\\u202e" in md
    assert md.count("`edgex\\n\\x1b[32mgate PASSED\\u202e") == 1


def test_junit_shows_hostile_text_on_its_own_lines_only() -> None:
    text = junit.render(_hostile_result())
    assert "\x1b" not in text and "\u202e" not in text and not _forged(text)
    root = ET.fromstring(text)
    failure = root.find(".//failure")
    assert failure.text.splitlines()[0] == ("k8s/x\\n\\x1b[32mgate PASSED\\u202e | [click](https://evil.example) "
                                            "![i](https://evil.example/p.png) <b>`.yaml:3: image x\\n\\x1b[32mgate "
                                            "PASSED\\u202e | [click](https://evil.example) "
                                            "![i](https://evil.example/p.png) <b>`")
    assert [line.split(":")[0] for line in failure.text.splitlines()[1:]] == ["rule", "severity", "resource", "fix"]
    skipped = root.find(".//skipped")
    assert [line.split(":")[0] for line in skipped.text.splitlines()] == ["k8s/ok.yaml", "suppressed (external)",
                                                                          "by", "approvedBy", "expires", "paths"]
    error = root.find(".//error")
    assert error.text.splitlines()[1] == "The gate fails closed (exit 3) until this is fixed."
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["ruleset"] == "edgex\\n\\x1b[32mgate PASSED\\u202e | [click](https://evil.example) " \
                               "![i](https://evil.example/p.png) <b>`"
