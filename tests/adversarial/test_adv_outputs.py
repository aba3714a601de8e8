"""D. Outputs that cannot lie.

Resource names, images, file names and parse errors come from the repository being judged.
None of their control characters (ESC sequences, carriage returns, newlines, bidi overrides,
line separators) reaches text, Markdown or JUnit output raw, so none can forge a "gate PASSED"
line while the exit code is 1. SARIF URIs are percent-encoded RFC 3986 references that both
validators accept and that decode back to the file's name. Report files are replaced whole.
"""
from __future__ import annotations

import json
import os
import re
import urllib.parse
from pathlib import Path
from xml.etree import ElementTree

import pytest
from hostile import BAD, CLEAN, VIOLATION, Run, put, rules_file, run_cli, sarif_uris

WITHIN = 60.0
FORGED = "gate PASSED: 0 open finding(s) at or above high (fail_on: high)"
PAYLOADS = [
    ("esc-sequences", f"\x1b[2K\r\x1b[32m{FORGED}\x1b[0m"),
    ("newline", f"x\n{FORGED}\n## Compliance gate: PASSED\n**Gate: PASSED**"),
    ("carriage-return", f"x\r{FORGED}"),
    ("bidi-override", "\u202egate DELIAF\u202c \u2066isolate\u2069 \u200fmark"),
    ("line-separators", f"x\u2028{FORGED}\u2029{FORGED}\x85{FORGED}"),
    ("c1-csi-and-vt-ff", f"\x9b2K\x0b\x0c{FORGED}"),
]
# Characters that must never appear raw in text, Markdown or JUnit output
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
FORGED_STARTS = ("gate PASSED", "## Compliance gate: PASSED", "**Gate: PASSED")


def _assert_inert(text: str, where: str) -> None:
    raw = RAW.search(text)
    assert raw is None, (f"{where} holds a raw {raw.group()!r} at {raw.start()}: "
                         f"{text[max(raw.start() - 80, 0):raw.end() + 80]!r}")
    forged = [line for line in text.split("\n") if line.lstrip(" |>-*").startswith(FORGED_STARTS)]
    assert not forged, f"{where} shows a forged verdict line: {forged}"


def _scan_all_formats(tmp_path: Path, repo: Path) -> tuple[Run, Path]:
    """Scan `repo`, writing every report format into tmp/out."""
    out = tmp_path / "out"
    out.mkdir()
    run = run_cli("scan", ".", "-r", rules_file(tmp_path), "--sarif-output", out / "r.sarif", "--markdown-output",
                  out / "r.md", "--junit-output", out / "r.xml", "--json-output", out / "r.json", cwd=repo)
    return run, out


def _assert_outputs_inert(run: Run, out: Path) -> None:
    """Text, stderr, Markdown and JUnit hold no raw control character and no forged verdict line."""
    _assert_inert(run.stdout, "text on stdout")
    _assert_inert(run.stderr, "stderr")
    _assert_inert((out / "r.md").read_text(encoding="utf-8"), "the Markdown report")
    junit = (out / "r.xml").read_text(encoding="utf-8")
    _assert_inert(junit, "the JUnit report")
    ElementTree.fromstring(junit.encode())  # well-formed XML 1.0 (it cannot hold most controls at all)
    json.loads((out / "r.json").read_text(encoding="utf-8"))


def _manifest(name: str, image: str) -> str:
    """The violating Deployment as JSON (which is YAML): any character survives the round trip."""
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
           "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}}
    return json.dumps(doc, indent=2) + "\n"


@pytest.mark.parametrize("field", ["image", "resource-name"])
@pytest.mark.parametrize("payload", [p[1] for p in PAYLOADS], ids=[p[0] for p in PAYLOADS])
def test_control_characters_in_findings_never_reach_reports_raw(tmp_path, payload, field):
    repo = tmp_path / "repo"
    image = f"docker.io/{payload}" if field == "image" else "docker.io/nginx:1"
    put(repo, "k8s/web.yaml", _manifest(payload if field == "resource-name" else "web", image))
    run, out = _scan_all_formats(tmp_path, repo)
    run.expect({1}, within=WITHIN, sarif=out / "r.sarif")
    _assert_outputs_inert(run, out)


@pytest.mark.parametrize("payload", [p[1] for p in PAYLOADS], ids=[p[0] for p in PAYLOADS])
def test_control_characters_in_file_names_never_reach_reports_raw(tmp_path, payload):
    repo = tmp_path / "repo"
    put(repo, f"k8s/{payload}.yaml", BAD)
    run, out = _scan_all_formats(tmp_path, repo)
    run.expect({1}, within=WITHIN, sarif=out / "r.sarif")
    _assert_outputs_inert(run, out)


def test_a_parse_error_in_a_hostile_file_name_is_printed_inert(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", BAD)
    put(repo, f"k8s/{PAYLOADS[1][1]}.yaml", "apiVersion: v1\nkind: [unclosed\n")
    put(repo, "k8s/esc.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: \x1b[2K}\n")
    run, out = _scan_all_formats(tmp_path, repo)
    run.expect({3}, within=WITHIN, sarif=out / "r.sarif")
    _assert_outputs_inert(run, out)


def test_a_waiver_reason_from_the_repository_is_printed_inert(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", BAD)
    put(repo, "k8s/other.yaml", VIOLATION.format(name="other", image="quay.io/x:1"))
    rules = rules_file(tmp_path, extra='waivers:\n  - rule: ORG-K8S-001\n    paths: ["k8s/web.yaml"]\n'
                                      f'    reason: {json.dumps(PAYLOADS[0][1] + PAYLOADS[1][1])}\n'
                                      '    approved_by: a@example.com\n    expires: 2099-01-01\n')
    out = tmp_path / "out"
    out.mkdir()
    run = run_cli("scan", ".", "-r", rules, "--sarif-output", out / "r.sarif", "--markdown-output", out / "r.md",
                  "--junit-output", out / "r.xml", "--json-output", out / "r.json", cwd=repo)
    run.expect({1}, within=WITHIN, sarif=out / "r.sarif")
    _assert_outputs_inert(run, out)


# --------------------------------------------------------------------------------------------
# SARIF URIs
# --------------------------------------------------------------------------------------------
NAMES = [
    ("space", "k8s/with space.yaml"),
    ("e-acute", "k8s/café.yaml"),
    ("cjk", "k8s/日本.yaml"),
    ("percent", "k8s/100%.yaml"),
    ("percent-looking-like-an-escape", "k8s/%41%2F.yaml"),
    ("hash", "k8s/a#b.yaml"),
    ("question-mark", "k8s/q?x=1.yaml"),
    ("newline", "k8s/new\nline.yaml"),
    ("tab", "k8s/tab\there.yaml"),
    ("colon-in-first-segment", "x:y.yaml"),
    ("brackets-and-quotes", "k8s/[a]{b}\"c\"<d>.yaml"),
    ("backslash", "k8s/back\\slash.yaml"),
    ("emoji", "k8s/\U0001f642.yaml"),
    ("combining-accent", "k8s/cafe\u0301.yaml"),
    ("space-in-folder", "my dir/sub dir/web.yaml"),
    ("leading-dash", "-r.yaml"),
]
URI_REFERENCE = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*$")


@pytest.mark.parametrize("rel", [n[1] for n in NAMES], ids=[n[0] for n in NAMES])
def test_sarif_uris_are_percent_encoded_and_valid(tmp_path, rel):
    repo = tmp_path / "repo"
    put(repo, rel, BAD)
    sarif = tmp_path / "out.sarif"
    run = run_cli("scan", ".", "-r", rules_file(tmp_path), "--sarif-output", sarif, cwd=repo)
    run.expect({1}, within=WITHIN, sarif=sarif)
    uris = sarif_uris(sarif)
    assert uris, "no result with a location"
    for uri in uris:
        assert URI_REFERENCE.match(uri), f"{uri!r} is not a percent-encoded URI reference"
        assert ":" not in uri.split("/", 1)[0], f"{uri!r} would read as a URI with a scheme"
    assert rel in [urllib.parse.unquote(u.removeprefix("./")) for u in uris], f"no URI decodes to {rel!r}: {uris}"


def test_a_file_name_that_is_not_utf8_gives_valid_sarif(tmp_path):
    repo = tmp_path / "repo"
    (repo / "k8s").mkdir(parents=True)
    (repo / "k8s" / os.fsdecode(b"\xff\xfe.yaml")).write_text(BAD)  # a name that is not UTF-8 at all
    sarif = tmp_path / "out.sarif"
    run = run_cli("scan", ".", "-r", rules_file(tmp_path), "--sarif-output", sarif, cwd=repo)
    run.expect({1, 3}, within=WITHIN, sarif=sarif)
    for uri in sarif_uris(sarif):
        assert URI_REFERENCE.match(uri), f"{uri!r} is not a percent-encoded URI reference"


@pytest.mark.slow
def test_every_hostile_name_at_once_passes_testkit_sarif_problems(tmp_path):
    """The fixed case for tests/testkit.py's own validator (the Multitool with every rule, ~10 s)."""
    from testkit import sarif_problems

    repo = tmp_path / "repo"
    for _, rel in NAMES:
        put(repo, rel, BAD)
    sarif = tmp_path / "out.sarif"
    run = run_cli("scan", ".", "-r", rules_file(tmp_path), "--sarif-output", sarif, "--code-scanning-output",
                  tmp_path / "alerts.sarif", cwd=repo)
    run.expect({1}, within=WITHIN, sarif=sarif)
    assert sarif_problems(sarif) == []
    assert len(sarif_uris(tmp_path / "alerts.sarif")) == len(NAMES)


# --------------------------------------------------------------------------------------------
# Report files are written whole
# --------------------------------------------------------------------------------------------
OUTPUTS = ["--sarif-output", "--code-scanning-output", "--json-output", "--junit-output", "--markdown-output"]


@pytest.mark.parametrize("option", OUTPUTS)
def test_a_report_replaces_the_old_file_never_writes_into_it(tmp_path, option):
    """The report path is a hard link to another file: a rename leaves that file alone, a rewrite in place does not."""
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", BAD)
    victim = put(tmp_path, "victim.txt", "VICTIM")
    report = tmp_path / "report.out"
    report.hardlink_to(victim)
    run = run_cli("scan", ".", "-r", rules_file(tmp_path), option, report, cwd=repo)
    run.expect({1}, within=WITHIN, sarif=report if "sarif" in option else None)
    assert victim.read_text() == "VICTIM", "the report was written into the existing file, not renamed over it"
    assert report.stat().st_ino != victim.stat().st_ino
    assert report.read_text(encoding="utf-8").strip(), "empty report"
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "a temporary file was left behind"


def test_a_configuration_error_leaves_the_previous_report_untouched(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", CLEAN)
    report = put(tmp_path, "previous.sarif", '{"previous": true}')
    put(tmp_path, "broken.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: [\n")
    run = run_cli("scan", ".", "-r", tmp_path / "broken.yaml", "--sarif-output", report, cwd=repo)
    run.expect({2}, within=WITHIN, names=("broken.yaml",))
    assert report.read_text() == '{"previous": true}'


@pytest.mark.parametrize("target", ["/dev/full", "missing-folder/out.sarif", "."],
                         ids=["disk-full", "missing-folder", "a-directory"])
def test_a_report_that_cannot_be_written_is_an_error_not_a_traceback(tmp_path, target):
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", BAD)
    run = run_cli("scan", ".", "-r", rules_file(tmp_path), "--sarif-output", target, cwd=repo)
    run.expect({2, 3}, within=WITHIN)
