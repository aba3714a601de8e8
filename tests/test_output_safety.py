"""Outputs that cannot lie (issue 8, part 5): text from the scanned repository never reaches a terminal,
a CI test tab or a step summary as control, bidi or line-breaking characters, and report files are
written whole or not at all.

The hostile repository is scanned once with the real CLI (a subprocess, ORG checks and Checkov):
a Deployment whose name holds a newline, an ESC colour sequence, a fake "gate PASSED" and a
right-to-left override, in files whose names hold spaces, accents, CJK, `%`, `#`, `?`, a newline
and a tab; a waiver whose reason forges a line, an inline suppression that yields a note naming
a hostile path. The gate fails (exit 1): no output may show a line that says otherwise.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from testkit import run_checker, sarif_problems

from checker.cli import main
from checker.errors import ScanError
from checker.output import printable, write_atomic

HOSTILE_NAME = "x\n\x1b[32mgate PASSED \u202eevil"
FORGED = "gate PASSED"
SPACED = "a b é 日本 %41 #x ?q.yaml"
NEWLINE = "new\nline.yaml"
TAB = "tab\there.yaml"
FILES = (SPACED, NEWLINE, TAB)


def deployment(note: str = "") -> str:
    """A Deployment named HOSTILE_NAME (YAML escapes), with docker.io image (ORG-K8S-001) and no labels."""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: "x\\n\\e[32mgate PASSED \\u202eevil"
spec:
  selector: {{matchLabels: {{app: a}}}}
  template:
    metadata: {{labels: {{app: a}}}}
    spec:
      containers:
        - name: a{note}
          image: docker.io/library/nginx:1.27
"""


RULESET = """\
apiVersion: checker/v1
kind: Ruleset
metadata: {name: hostile, version: '1'}
checks: {include: ["ORG-K8S-001", "ORG-K8S-002", "CKV_K8S_20"]}
organisation: {approved_registries: [registry.example.com], required_labels: [team]}
waivers:
  - rule: ORG-K8S-001
    paths: ["k8s/tab*"]
    reason: "accepted\\ngate PASSED \\u202e\\e[2J"
    approved_by: jane.doe@example.com
    expires: 2099-01-01
gate: {fail_on: high}
"""


@dataclasses.dataclass
class Scan:
    """One real scan of the hostile repository, with every output it wrote."""

    root: Path
    out: Path
    exit_code: int
    stdout: str
    stderr: str

    def read(self, name: str) -> str:
        return (self.out / name).read_text(encoding="utf-8")


def hostile_repo(base: Path) -> Path:
    """The repository (its own folder name needs percent-encoding in a file URI too)."""
    root = base / "re po é#%"
    (root / "k8s").mkdir(parents=True)
    (root / "k8s" / SPACED).write_text(deployment())
    (root / "k8s" / NEWLINE).write_text(deployment("  # checker:ignore ORG-K8S-001"))  # no reason: a note
    (root / "k8s" / TAB).write_text(deployment())
    return root


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Scan:
    base = tmp_path_factory.mktemp("hostile")
    root = hostile_repo(base)
    (base / "rules.yaml").write_text(RULESET)
    out = base / "out"
    out.mkdir()
    done = run_checker("scan", str(root), "-r", str(base / "rules.yaml"), "--sarif-output", str(out / "r.sarif"),
                       "--code-scanning-output", str(out / "alerts.sarif"), "--json-output", str(out / "r.json"),
                       "--junit-output", str(out / "r.xml"), "--markdown-output", str(out / "r.md"))
    return Scan(root, out, done.returncode, done.stdout, done.stderr)


def assert_cannot_forge(text: str) -> None:
    """No ESC, no bidi control and no line of its own for the forged verdict."""
    assert "\x1b" not in text and "\u202e" not in text
    assert not any(line.lstrip("| -*`").startswith(FORGED) for line in text.splitlines()), text
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", text)


# --- printable ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "shown"), [
    ("a\nb", "a\\nb"), ("a\rb", "a\\rb"), ("a\tb", "a\\tb"), ("\x1b[32m", "\\x1b[32m"), ("\x00", "\\x00"),
    ("\x7f", "\\x7f"), ("\x85", "\\x85"), ("\x9b", "\\x9b"), ("\u2028\u2029", "\\u2028\\u2029"),
    ("\u202a\u202b\u202c\u202d\u202e", "\\u202a\\u202b\\u202c\\u202d\\u202e"),
    ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"), ("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"),
    ("bad\udcff.yaml", "bad\\udcff.yaml"),
])
def test_printable_shows_each_dangerous_character_as_an_escape(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert printable(shown) == shown  # idempotent: an escape is plain ASCII


def test_printable_leaves_other_text_alone() -> None:
    text = "k8s/a b é 日本 %41 #x ?q.yaml: Deployment/api \\n — ok 🙂 \u00a0\u200b"
    assert printable(text) == text


# --- text report --------------------------------------------------------------------------------

def test_scan_fails_and_every_hostile_file_is_checked(scan: Scan) -> None:
    assert scan.exit_code == 1, scan.stderr
    paths = {f["path"] for f in json.loads(scan.read("r.json"))["findings"]}
    assert {f"k8s/{name}" for name in FILES} <= paths
    assert "Traceback" not in scan.stderr


def test_text_report_shows_hostile_names_as_escapes(scan: Scan) -> None:
    assert_cannot_forge(scan.stdout)
    lines = scan.stdout.splitlines()
    assert "k8s/new\\nline.yaml" in lines and "k8s/tab\\there.yaml" in lines and f"k8s/{SPACED}" in lines
    assert ("      3  LOW      ORG-K8S-002  Deployment/x\\n\\x1b[32mgate PASSED \\u202eevil.metadata.labels "
            "lacks required label(s): team") in lines
    assert ("     12  HIGH     ORG-K8S-001  image docker.io/library/nginx:1.27 is not from an approved registry "
            "(registry.example.com)  [suppressed (external): accepted\\ngate PASSED \\u202e\\x1b[2J]") in lines
    assert ("note: k8s/new\\nline.yaml:11: `checker:ignore ORG-K8S-001` has no reason (write `-- why`), "
            "so it does not suppress") in lines
    assert lines[-1].startswith("gate FAILED: ")


def test_terminal_keeps_our_colours_and_only_ours(scan: Scan, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULESET.replace('"ORG-K8S-002", "CKV_K8S_20"', '"ORG-K8S-002"'))
    result = CliRunner().invoke(main, ["scan", str(scan.root), "-r", str(rules)], color=True)
    assert result.exit_code == 1, result.output
    assert "\x1b[1m" in result.output and "\x1b[31m" in result.output  # our bold and red still reach the terminal
    assert "\x1b[32mgate PASSED" not in result.output and "Deployment/x\n" not in result.output
    unstyled = re.sub("\x1b\\[[0-9;]*m", "", result.output)  # every ESC left is one of our SGR styles
    assert unstyled == click.unstyle(result.output)
    assert_cannot_forge(unstyled)
    assert "Deployment/x\\n\\x1b[32mgate PASSED \\u202eevil.metadata.labels" in unstyled


# --- Markdown and JUnit -------------------------------------------------------------------------

def test_markdown_cannot_forge_lines_links_or_html(scan: Scan) -> None:
    md = scan.read("r.md")
    assert_cannot_forge(md)
    assert md.startswith("## Compliance gate: FAILED\n")
    assert "`k8s/new\\nline.yaml:3`" in md and "`Deployment/x\\n\\x1b[32mgate PASSED \\u202eevil" in md
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert all(len(re.split(r"(?<!\\)\|", row)) == len(re.split(r"(?<!\\)\|", rows[0])) for row in rows[:3])


def test_junit_cannot_forge_lines(scan: Scan) -> None:
    text = scan.read("r.xml")
    assert_cannot_forge(text)
    root = ET.fromstring(text)
    for element in root.iter():
        for value in element.attrib.values():
            assert "\n" not in value and "\x1b" not in value
    case = next(c for c in root.iter("testcase")
                if c.get("classname") == "ORG-K8S-001" and c.find("failure") is not None)
    assert case.get("file") == f"k8s/{SPACED}"
    assert case.get("name") == f"k8s/{SPACED} Deployment/x\\n\\x1b[32mgate PASSED \\u202eevil" \
                               ".spec.template.spec.containers[0].image"
    assert case.find("failure").text.splitlines()[3] == ("resource: Deployment/x\\n\\x1b[32mgate PASSED "
                                                         "\\u202eevil.spec.template.spec.containers[0].image")
    waived = next(c for c in root.iter("testcase") if c.find("skipped") is not None)
    assert waived.find("skipped").get("message") == "suppressed (external): accepted\\ngate PASSED \\u202e\\x1b[2J"


def test_json_keeps_the_data_exact(scan: Scan) -> None:
    """JSON is data, not a display: it carries the names as they are (json escapes them)."""
    doc = json.loads(scan.read("r.json"))
    assert any(HOSTILE_NAME in f["resource"] for f in doc["findings"])
    assert "\x1b" not in scan.read("r.json")


def test_problems_are_escaped_in_every_report(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / f"bad\n{FORGED}\x1b[2J.yaml").write_text("a: [\n")
    (tmp_path / "rules.yaml").write_text(RULESET)
    out = tmp_path / "out"
    out.mkdir()
    done = run_checker("scan", str(root), "-r", str(tmp_path / "rules.yaml"), "--junit-output", str(out / "r.xml"),
                       "--markdown-output", str(out / "r.md"), "--sarif-output", str(out / "r.sarif"))
    assert done.returncode == 3, done.stderr
    for text in (done.stdout, (out / "r.xml").read_text(), (out / "r.md").read_text()):
        assert_cannot_forge(text)
        assert "bad\\ngate PASSED\\x1b[2J.yaml" in text
    note = json.loads((out / "r.sarif").read_text())["runs"][0]["invocations"][0]["toolExecutionNotifications"][0]
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "bad%0Agate%20PASSED%1B%5B2J.yaml"
    assert sarif_problems(out / "r.sarif") == []


def test_problems_on_stderr_are_escaped(tmp_path: Path) -> None:
    (tmp_path / f"bad\n{FORGED}.yaml").write_text("a: [\n")
    done = run_checker("scan", str(tmp_path), "-r", "org-baseline")
    assert done.returncode == 3
    assert_cannot_forge(done.stderr)


# --- write_atomic -------------------------------------------------------------------------------

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_atomic_new_file_gets_the_default_mode(tmp_path: Path) -> None:
    target = tmp_path / "r.sarif"
    write_atomic(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    assert _leftovers(tmp_path) == []


def test_write_atomic_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    target = tmp_path / "r.sarif"
    target.write_text("old")
    target.chmod(0o640)
    write_atomic(str(target), "new é 日本\n")
    assert target.read_text(encoding="utf-8") == "new é 日本\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_write_atomic_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "r.sarif"
    target.write_text("complete old report\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "x" * 100_000 + "\udcff")  # fails half-way: not encodable as UTF-8
    assert target.read_text() == "complete old report\n"
    assert _leftovers(tmp_path) == []


def test_write_atomic_leaves_the_old_file_when_the_disk_is_full(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "r.sarif"
    target.write_text("complete old report\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ScanError,
                       match=re.escape("r.sarif: could not write the report: No space left on device; any previous")):
        write_atomic(target, "new report\n")
    assert target.read_text() == "complete old report\n"
    assert _leftovers(tmp_path) == []


def test_scan_keeps_the_previous_sarif_when_the_disk_fills_while_writing(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    root = hostile_repo(tmp_path)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULESET.replace('"ORG-K8S-002", "CKV_K8S_20"', '"ORG-K8S-002"'))
    out = tmp_path / "out"
    out.mkdir()
    (out / "r.sarif").write_text("the previous complete record\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    result = CliRunner().invoke(main, ["scan", str(root), "-r", str(rules), "--sarif-output", str(out / "r.sarif")])
    assert result.exit_code == 3  # fail closed: the record of this scan could not be written
    assert result.stderr == (f"checker: error: {out / 'r.sarif'}: could not write the report: No space left on "
                             "device; any previous file there is unchanged. Free space or choose another path, "
                             "then scan again\n")
    assert (out / "r.sarif").read_text() == "the previous complete record\n"
    assert _leftovers(out) == []


def test_write_atomic_in_a_missing_folder_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(ScanError,
                       match=re.escape("missing/r.sarif: could not write the report: No such file or directory")):
        write_atomic(tmp_path / "missing" / "r.sarif", "x")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_write_atomic_in_a_read_only_folder_leaves_the_old_file(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "r.sarif").write_text("old\n")
    folder.chmod(0o555)
    try:
        with pytest.raises(ScanError, match="Permission denied"):
            write_atomic(folder / "r.sarif", "new\n")
        assert (folder / "r.sarif").read_text() == "old\n" and _leftovers(folder) == []
    finally:
        folder.chmod(0o755)


def test_write_atomic_writes_through_a_symlink_and_to_devices(tmp_path: Path) -> None:
    real = tmp_path / "real.sarif"
    real.write_text("old")
    link = tmp_path / "link.sarif"
    link.symlink_to(real)
    write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    write_atomic(os.devnull, "discarded")  # not a regular file: written to, never replaced
    assert Path(os.devnull).is_char_device()


def test_write_atomic_to_dev_stdout_when_it_is_a_pipe() -> None:
    code = "from checker.output import write_atomic; write_atomic('/dev/stdout', 'report\\n')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "report\n", "")
