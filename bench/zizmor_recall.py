#!/usr/bin/env python3
"""Recall of our GitHub Actions checks against zizmor, on zizmor's own test workflows.

Run from the project root with the project venv (zizmor 1.32.0 installed into it first):

    .venv/bin/pip install zizmor==1.32.0
    .venv/bin/python bench/zizmor_recall.py                  # tables; results in bench/results/
    .venv/bin/python bench/zizmor_recall.py --details        # and every unmatched finding, both ways
    .venv/bin/python bench/zizmor_recall.py --details template-injection,dangerous-triggers
    .venv/bin/python bench/zizmor_recall.py --report bench/results/zizmor-recall-....json [--details]

The workflows of zizmor's test data (`invalid/`, action, Dependabot, pre-commit and zizmor
configuration files left out: a file is a workflow when its top level has `on` and `jobs`) are
copied to a temporary folder outside the project, as `.github/workflows/<path with / as _>`,
because only files there are workflows to our discovery. zizmor (offline, no configuration file,
default persona; pedantic persona too, counted for information) and `checker scan` (every
ORG-GHA-* rule) audit that copy. zizmor's counts are its normal output: findings silenced by a
`# zizmor: ignore[...]` comment in a test file are not counted (they only tag findings of ours).

A zizmor finding counts as found when one of the rules mapped to its audit (AUDIT_RULES) has a
finding in the same file whose line is inside one of the finding's primary or related locations (zizmor's
JSON rows are 0-based; a span ending at column 0 ends on the line before). One finding of ours may
match several of zizmor's (zizmor reports an anchored value once per alias, at the anchor), so a
one-to-one figure (a maximum matching, each finding of ours used once) is given beside it.

Results are saved as JSON under bench/results/ (git-ignored): every unmatched zizmor finding (what
to write next) and every finding of ours that zizmor does not report (for the precision review).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from bench import PROJECT, VENV_BIN, _git, _now, finish, ours_env, results_file  # bench/ is first on sys.path

DEFAULT_TEST_DATA = PROJECT.parent / "shared" / "corpus" / "zizmor" / "crates" / "zizmor" / "tests" / "integration" \
    / "test-data"
ZIZMOR_VERSION = "1.32.0"
MODE = "zizmor-recall"

# zizmor audit -> our rules that report the same class of weakness. Rules that do not exist yet simply
# find nothing; zizmor's audits outside this table are listed as not compared.
AUDIT_RULES: dict[str, tuple[str, ...]] = {
    "unpinned-uses": ("ORG-GHA-001",),
    "template-injection": ("ORG-GHA-003",),
    "excessive-permissions": ("ORG-GHA-004", "ORG-GHA-005", "ORG-GHA-018"),
    "dangerous-triggers": ("ORG-GHA-002", "ORG-GHA-010"),
    "bot-conditions": ("ORG-GHA-011",),
    "insecure-commands": ("ORG-GHA-012",),
    "artipacked": ("ORG-GHA-013",),
    "cache-poisoning": ("ORG-GHA-014",),
    "secrets-inherit": ("ORG-GHA-015",),
    "unpinned-images": ("ORG-GHA-016", "ORG-GHA-001"),  # `uses: docker://` images are ORG-GHA-001's
    "github-env": ("ORG-GHA-017",),
    "self-hosted-runner": ("ORG-GHA-009",),
}

# The organisation's facts as policies/CORPUS.md scanned the corpus with; every ORG-GHA-* rule selected.
RULESET = """\
apiVersion: checker/v1
kind: Ruleset
metadata: {name: zizmor-recall}
organisation:
  approved_registries: [registry.example.com]
  required_labels: [app]
  required_tags: [owner]
  allowed_regions: [eu-west-2]
checks:
  include: ["ORG-GHA-*"]
"""


@dataclass(frozen=True)
class ZizmorFinding:
    """One zizmor finding, reduced to what matching and the reports need."""

    audit: str
    path: str  # relative to the test data (the original file, not its flattened copy)
    spans: tuple[tuple[int, int], ...]  # 1-based inclusive line spans of its primary locations
    extent: tuple[tuple[int, int], ...]  # the same for every location (the step, the job...): "nearby"
    annotation: str
    text: str  # the first line of the first primary span, stripped
    ignored: bool  # silenced by a `# zizmor: ignore[...]` comment: not in zizmor's normal output


@dataclass(frozen=True)
class OurFinding:
    """One finding of `checker scan`, reduced the same way."""

    rule: str
    path: str
    line: int
    message: str
    text: str


# ----------------------------------------------------------------------------------------------
# Input: the workflows of zizmor's test data, copied where discovery treats them as workflows


def is_workflow(path: Path) -> bool:
    """Whether `path` is a GitHub Actions workflow: a YAML mapping with `on` (PyYAML reads it as True) and `jobs`.

    Action definitions, Dependabot, pre-commit and zizmor configuration files have no `jobs`.
    """
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(doc, dict) and "jobs" in doc and ("on" in doc or True in doc)


def copy_workflows(test_data: Path, root: Path) -> dict[str, str]:
    """Copy every workflow of `test_data` (but `invalid/`) to `root/.github/workflows/`; copy path -> original.

    Both paths are relative and POSIX: the copy's to `root`, the original's to `test_data`.
    """
    dest = root / ".github" / "workflows"
    dest.mkdir(parents=True)
    origin: dict[str, str] = {}
    for path in sorted(test_data.rglob("*")):
        rel = path.relative_to(test_data)
        if (rel.parts[0] == "invalid" or path.suffix not in (".yml", ".yaml") or not path.is_file()
                or not is_workflow(path)):
            continue
        name = rel.as_posix().replace("/", "_")
        copy = f".github/workflows/{name}"
        if copy in origin:
            sys.exit(f"zizmor_recall: {origin[copy]} and {rel.as_posix()} flatten to the same name {name}")
        shutil.copyfile(path, dest / name)
        origin[copy] = rel.as_posix()
    return origin


# ----------------------------------------------------------------------------------------------
# The two tools


def find_zizmor() -> tuple[str, str]:
    """zizmor's executable (the venv's first, then PATH) and its version; exits with how to install it."""
    exe = VENV_BIN / "zizmor"
    found = str(exe) if exe.exists() else shutil.which("zizmor")
    if not found:
        sys.exit(f"zizmor_recall: zizmor is not installed. Install the version the figures are measured with:\n"
                 f"    .venv/bin/pip install zizmor=={ZIZMOR_VERSION}")
    version = subprocess.run([found, "--version"], capture_output=True, text=True).stdout.strip().split()[-1:]
    return found, version[0] if version else "?"


def run_zizmor(zizmor: str, root: Path, persona: str) -> list[dict[str, Any]]:
    """zizmor's JSON findings on `root`: offline, no configuration file, exit codes only for failures.

    With --no-ignores, the findings a `# zizmor: ignore[...]` comment silences come too, marked
    `"ignored": true`: left out of the counts (zizmor's normal output has none), they still tell
    a finding of ours that zizmor would report but for such a comment (the test files use them).
    """
    cmd = [zizmor, "--offline", "--no-config", "--no-exit-codes", "--no-ignores", "--no-progress",
           f"--persona={persona}", "--format", "json", "."]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"zizmor_recall: zizmor failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    findings: list[dict[str, Any]] = json.loads(proc.stdout)
    return findings


def zizmor_finding(raw: dict[str, Any], origin: dict[str, str], root: Path) -> ZizmorFinding:
    """Reduce one raw zizmor finding: its primary and related locations become 1-based inclusive line spans.

    Related locations count: zizmor points at the `uses:` of a job and relates its `secrets: inherit`, where
    the fix goes and where we report; its hidden locations (whole enclosing steps or jobs) do not.
    """
    primaries = [loc for loc in raw["locations"] if loc["symbolic"]["kind"] == "Primary"]
    related = [loc for loc in raw["locations"] if loc["symbolic"]["kind"] == "Related"]
    copy = PurePosixPath(os.path.normpath(primaries[0]["symbolic"]["key"]["Local"]["verbatim_path"])).as_posix()
    spans = tuple(_lines(loc) for loc in (*primaries, *related))
    return ZizmorFinding(audit=raw["ident"], path=origin.get(copy, copy), spans=spans,
                         extent=tuple(_lines(loc) for loc in raw["locations"]),
                         annotation=primaries[0]["symbolic"]["annotation"],
                         text=source_line(root / copy, spans[0][0]), ignored=bool(raw.get("ignored")))


def _lines(location: dict[str, Any]) -> tuple[int, int]:
    """A location's 1-based inclusive lines: zizmor's rows are 0-based, and an end at column 0 is the line before."""
    start, end = location["concrete"]["location"]["start_point"], location["concrete"]["location"]["end_point"]
    return start["row"] + 1, end["row"] if end["column"] == 0 and end["row"] > start["row"] else end["row"] + 1


def run_ours(root: Path, ruleset: Path) -> dict[str, Any]:
    """`checker scan` of `root` with every ORG-GHA-* rule: its JSON report (exit 1 and 3 are normal here)."""
    cmd = [str(VENV_BIN / "checker"), "scan", str(root), "-r", str(ruleset), "--format", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ours_env(None), cwd=root.parent)
    if proc.returncode not in (0, 1, 3):
        sys.exit(f"zizmor_recall: checker scan failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(proc.stdout)
    report["exit"] = proc.returncode
    return report


def our_rules(ruleset: Path) -> list[str]:
    """The rule ids the ruleset selects in this version of checker, to tell 'not written yet' from 'finds none'."""
    proc = subprocess.run([str(VENV_BIN / "checker"), "rules", "list", "-r", str(ruleset), "--format", "json"],
                          capture_output=True, text=True, env=ours_env(None))
    if proc.returncode != 0:
        sys.exit(f"zizmor_recall: checker rules list failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return sorted(rule["id"] for rule in json.loads(proc.stdout))


def source_line(path: Path, line: int) -> str:
    """Line `line` (1-based) of `path`, stripped and cut to 120 characters, for the reader of the lists."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    return lines[line - 1].strip()[:120] if 0 < line <= len(lines) else ""


# ----------------------------------------------------------------------------------------------
# Matching


def covers(z: ZizmorFinding, ours: OurFinding, nearby: bool = False) -> bool:
    """Whether our finding is in the same file and its line inside one of the zizmor finding's primary spans.

    `nearby`: inside any of its locations instead (its step, its job...): reported near, not at, the place.
    """
    spans = z.extent if nearby else z.spans
    return z.path == ours.path and any(first <= ours.line <= last for first, last in spans)


def one_to_one(zfs: list[ZizmorFinding], ours: list[OurFinding]) -> int:
    """The largest number of zizmor findings matched when each finding of ours may match only one of them.

    Augmenting paths over the bipartite graph of `covers` (Kuhn's algorithm): the lists are small.
    """
    owner: dict[int, int] = {}  # index in ours -> index in zfs

    def place(i: int, seen: set[int]) -> bool:
        for j, o in enumerate(ours):
            if j in seen or not covers(zfs[i], o):
                continue
            seen.add(j)
            if j not in owner or place(owner[j], seen):
                owner[j] = i
                return True
        return False

    return sum(place(i, set()) for i in range(len(zfs)))


def compare(zizmor: list[ZizmorFinding], pedantic: list[ZizmorFinding], ours: list[OurFinding],
            existing: list[str]) -> dict[str, Any]:
    """Per mapped audit: zizmor's count, matched, recall, the unmatched findings both ways; the rest listed.

    An unmatched zizmor finding says which findings of the audit's rules are near it (inside its step or
    job: reported at another line) and which of our other rules report its very line (a mapping question).

    `zizmor` and `pedantic` hold the ignored findings too: they only tag findings of ours, never count.
    """
    audits: dict[str, Any] = {}
    for audit, rules in AUDIT_RULES.items():
        zfs = [z for z in zizmor if z.audit == audit and not z.ignored]
        silenced = [z for z in zizmor if z.audit == audit and z.ignored]
        pzs = [z for z in pedantic if z.audit == audit]
        mine = [o for o in ours if o.rule in rules]
        found = [any(covers(z, o) for o in mine) for z in zfs]
        audits[audit] = {
            "rules": list(rules),
            "rules_existing": [r for r in rules if r in existing],
            "zizmor": len(zfs),
            "zizmor_pedantic": sum(not z.ignored for z in pzs),
            "ours": len(mine),
            "matched": sum(found),
            "matched_one_to_one": one_to_one(zfs, mine),
            "recall": round(100 * sum(found) / len(zfs), 1) if zfs else None,
            "unmatched": [{**asdict(z),
                           "ours_nearby": [f"{o.rule}:{o.line}" for o in mine if covers(z, o, nearby=True)],
                           "other_rules_here": [f"{o.rule}:{o.line}" for o in ours
                                                if o.rule not in rules and covers(z, o)]}
                          for z, hit in zip(zfs, found, strict=True) if not hit],
            "ours_only": [{**asdict(o), "in_pedantic": any(covers(z, o) for z in pzs if not z.ignored),
                           "ignored_by_comment": any(covers(z, o) for z in silenced)}
                          for o in mine if not any(covers(z, o) for z in zfs)],
        }
    others = Counter(z.audit for z in zizmor if z.audit not in AUDIT_RULES and not z.ignored)
    others_pedantic = Counter(z.audit for z in pedantic if z.audit not in AUDIT_RULES and not z.ignored)
    return {"audits": audits,
            "not_compared": {a: {"zizmor": others[a], "zizmor_pedantic": others_pedantic[a]}
                             for a in sorted(set(others) | set(others_pedantic))}}


def totals(audits: dict[str, Any], only_existing: bool) -> dict[str, Any]:
    """Sums over the mapped audits (or only those with at least one of our rules written)."""
    rows = [a for a in audits.values() if a["rules_existing"] or not only_existing]
    z, m = sum(a["zizmor"] for a in rows), sum(a["matched"] for a in rows)
    return {"audits": len(rows), "zizmor": z, "matched": m,
            "matched_one_to_one": sum(a["matched_one_to_one"] for a in rows),
            "recall": round(100 * m / z, 1) if z else None}


# ----------------------------------------------------------------------------------------------
# Reports


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%"


def print_tables(data: dict[str, Any]) -> None:
    """The per-audit table on stdout, then the same as Markdown for bench/RESULTS.md."""
    audits = data["audits"]
    print(f"zizmor {data['zizmor_version']} (offline, default persona) against checker "
          f"{data['ours_version']} on {data['workflows']} workflows of zizmor's test data")
    head = (f"{'zizmor audit':24} {'our rules':26} {'zizmor':>6} {'found':>5} {'recall':>7} {'1:1':>4} "
            f"{'ours':>5} {'ours only':>9} {'pedantic':>8}")
    print(head)
    print("-" * len(head))
    for audit, a in audits.items():
        rules = ", ".join(r if r in a["rules_existing"] else f"{r}?" for r in a["rules"])
        print(f"{audit:24} {rules:26} {a['zizmor']:>6} {a['matched']:>5} {_pct(a['recall']):>7} "
              f"{a['matched_one_to_one']:>4} {a['ours']:>5} {len(a['ours_only']):>9} {a['zizmor_pedantic']:>8}")
    for label, key in (("total, every mapped audit", "total"), ("total, audits with a rule of ours", "total_existing")):
        t = data[key]
        print(f"{label:51} {t['zizmor']:>6} {t['matched']:>5} {_pct(t['recall']):>7} {t['matched_one_to_one']:>4}")
    print("  ?: that rule does not exist yet in this version of checker")
    print("  1:1: matched when each finding of ours may match one zizmor finding only; ours only: findings of ours "
          "in no primary span of zizmor's (default persona)")
    if data["not_compared"]:
        print("not compared (zizmor audit: default / pedantic): " + ", ".join(
            f"{k} {v['zizmor']}/{v['zizmor_pedantic']}" for k, v in data["not_compared"].items()))
    if data["ours_problems"]:
        print(f"checker scan could not check {len(data['ours_problems'])} file(s): see ours_problems in the results")

    print("\nMarkdown (bench/RESULTS.md):\n")
    print("| zizmor audit | our rules | zizmor findings | found by ours | recall | found 1:1 | ours not in zizmor "
          "| zizmor pedantic |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for audit, a in audits.items():
        rules = ", ".join(r if r in a["rules_existing"] else f"{r} (not yet)" for r in a["rules"])
        print(f"| {audit} | {rules} | {a['zizmor']} | {a['matched']} | {_pct(a['recall'])} | "
              f"{a['matched_one_to_one']} | {len(a['ours_only'])} | {a['zizmor_pedantic']} |")
    for label, key in (("every mapped audit", "total"), ("audits with a rule of ours", "total_existing")):
        t = data[key]
        print(f"| **total, {label}** | | {t['zizmor']} | {t['matched']} | **{_pct(t['recall'])}** | "
              f"{t['matched_one_to_one']} | | |")


def print_details(data: dict[str, Any], wanted: list[str] | None) -> None:
    """Every unmatched zizmor finding and every finding of ours zizmor does not report, per audit."""
    for audit, a in data["audits"].items():
        if wanted is not None and audit not in wanted:
            continue
        print(f"\n## {audit}: {a['matched']}/{a['zizmor']} found ({_pct(a['recall'])}); our rules "
              f"{', '.join(a['rules'])} ({', '.join(a['rules_existing']) or 'none'} written)")
        print(f"\nzizmor findings not found by ours ({len(a['unmatched'])}):")
        for z in a["unmatched"]:
            spans = ", ".join(f"{s}" if s == e else f"{s}-{e}" for s, e in z["spans"])
            near = f"  (ours nearby: {', '.join(z['ours_nearby'])})" if z["ours_nearby"] else ""
            other = f"  (other rules of ours here: {', '.join(z['other_rules_here'])})" if z["other_rules_here"] else ""
            print(f"  {z['path']}:{spans}  {z['annotation']}{near}{other}  | {z['text']}")
        print(f"\nfindings of ours zizmor does not report ({len(a['ours_only'])}; [ignored]: it would but for a "
              f"`# zizmor: ignore` comment; [pedantic]: its pedantic persona does):")
        for o in a["ours_only"]:
            tag = (" [ignored]" if o["ignored_by_comment"] else "") + (" [pedantic]" if o["in_pedantic"] else "")
            message = o["message"].replace("\n", "\\n")  # one finding, one line
            print(f"  {o['path']}:{o['line']}  {o['rule']}{tag}  {message}  | {o['text']}")


# ----------------------------------------------------------------------------------------------


def measure(test_data: Path, keep: bool) -> dict[str, Any]:
    """Copy the workflows, run both tools, compare; the whole result, ready to save."""
    started = _now()
    zizmor, version = find_zizmor()
    if version != ZIZMOR_VERSION:
        print(f"zizmor_recall: warning: zizmor {version}, not {ZIZMOR_VERSION}: the figures are not comparable "
              f"with bench/RESULTS.md", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="zizmor-recall-")).resolve()
    if work.is_relative_to(PROJECT):
        sys.exit(f"zizmor_recall: the temporary folder {work} is inside the project: set TMPDIR elsewhere")
    try:
        root, ruleset = work / "repo", work / "ruleset.yaml"
        origin = copy_workflows(test_data, root)
        ruleset.write_text(RULESET)
        raw = run_zizmor(zizmor, root, "regular")
        raw_pedantic = run_zizmor(zizmor, root, "pedantic")
        report = run_ours(root, ruleset)
        existing = our_rules(ruleset)
        zfs = [zizmor_finding(f, origin, root) for f in raw]
        pzs = [zizmor_finding(f, origin, root) for f in raw_pedantic]
        ours = [OurFinding(rule=f["rule"], path=origin.get(f["path"], f["path"]), line=f["start_line"],
                           message=f["message"], text=source_line(root / f["path"], f["start_line"]))
                for f in report["findings"]]
    finally:
        if keep:
            print(f"zizmor_recall: the copy and the ruleset are kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    data: dict[str, Any] = {
        "mode": MODE, "started": started, "zizmor_version": version,
        "ours_version": report["tool"]["checker"], "git_head": _git("rev-parse", "HEAD"),
        "worktree_dirty": _git("status", "--porcelain", "--", "checker", "policies", "rulesets"),
        "test_data": str(test_data), "workflows": len(origin),
        "commands": {"zizmor": "zizmor --offline --no-config --no-exit-codes --no-ignores "
                               "--persona={regular,pedantic} --format json . (in the copy; findings marked "
                               "ignored are not counted)",
                     "ours": "CHECKER_WARM=0 checker scan COPY -r RULESET --format json",
                     "ruleset": RULESET},
        "matching": "a zizmor finding is found when a finding of one of its audit's rules is in the same file at a "
                    "line inside one of its primary locations' line spans (zizmor rows are 0-based; a span ending "
                    "at column 0 ends on the line before)",
        "ours_exit": report["exit"], "ours_problems": report.get("problems", []),
        "ours_rules": existing, "ours_by_rule": dict(Counter(o.rule for o in ours)),
        **compare(zfs, pzs, ours, existing),
    }
    data["total"] = totals(data["audits"], only_existing=False)
    data["total_existing"] = totals(data["audits"], only_existing=True)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test-data", default=str(DEFAULT_TEST_DATA), help=f"default {DEFAULT_TEST_DATA}")
    parser.add_argument("--details", nargs="?", const="", metavar="AUDIT,...",
                        help="also print the unmatched findings both ways (of the audits named; default all)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy and ruleset (path on stderr)")
    parser.add_argument("--report", metavar="JSON", help="only re-print the tables of a saved results file")
    args = parser.parse_args()
    wanted = [a.strip() for a in (args.details or "").split(",") if a.strip()] or None  # None: every audit
    if wanted and (unknown := [a for a in wanted if a not in AUDIT_RULES]):
        sys.exit(f"zizmor_recall: not a compared audit: {', '.join(unknown)} (see AUDIT_RULES)")
    if args.report:
        data = json.loads(Path(args.report).read_text())
        print_tables(data)
    else:
        test_data = Path(args.test_data)
        if not test_data.is_dir():
            print(f"zizmor_recall: {test_data} is absent: nothing to measure")
            return
        data = measure(test_data, args.keep)
        finish(results_file(MODE, data), data, print_tables)
    if args.details is not None:
        print_details(data, wanted)


if __name__ == "__main__":
    main()
