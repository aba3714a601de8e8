#!/usr/bin/env python3
"""Where a `checker scan` spends its time: a py-spy raw profile summed by process and by stage.

Record a profile that covers the forked Checkov workers too, then summarise it:

    CHECKER_WARM=0 .venv/bin/py-spy record --subprocesses -f raw -o /tmp/scan.raw -- \\
        .venv/bin/checker scan FOLDER -r bench/all-checkov.yaml --format json --json-output /dev/null \\
        --sarif-output /tmp/x.sarif
    .venv/bin/python bench/pyspy_summary.py /tmp/scan.raw            # --rate if not 100 samples/s

py-spy samples only threads that are running (not waiting) unless given --idle, so the seconds
here are CPU-busy seconds of each process, and the processes overlap in time. With --native,
the time in the garbage collector (`gc_collect_main`) gets a column of its own; a sample with
no Python frame at all is interpreter start-up or shut-down (at exit, CPython's last collection
walks every object the scan left alive). Standard library only.
"""
from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

# The main process: the first pattern any frame of a sample matches names its stage (most specific first).
MAIN_STAGES = (
    ("import Checkov runners (parent, before forking)", r"^_run_jobs \(checker/engines/checkov\.py.*;_find_and_load"),
    ("fork workers, wait, read results", r"^(run_all|_reap|_start|_receive|_stop) \(checker/engines/workers\.py"),
    ("Checkov engine, rest (parent)", r"^CheckovEngine\.run \(checker/engines/checkov\.py"),
    ("our policies (Python engine)", r"^PythonEngine\.run \(checker/engines/python\.py"),
    ("discovery and YAML/HCL parsing", r"^discover \(checker/discover\.py"),
    ("ruleset and rule catalogues", r"^(resolve_ruleset|catalogue|select_rules) \(checker/(scan|ruleset)"),
    ("change detection (git)", r"^(detect|_committed) \(checker/(change|scan)\.py"),
    ("suppressions, baseline, gate", r"checker/(suppress|baseline|gate)\.py"),
    ("SARIF report", r"checker/reporters/sarif\.py"),
    ("other reports and writing them", r"checker/(reporters/|output\.py)"),
    ("rest of the scan", r"^run \(checker/scan\.py"),
    ("imports before the scan (ours, click, ...)", r"_find_and_load"),
)
# Checkov's Terraform runner, inside its worker.
TERRAFORM_STEPS = (
    ("parse HCL and load modules", r"^(TFParser|Parser)\.|tf_parser\.py|parser_functions\.py|hcl2"),
    ("graph: for_each/count expansion", r"^ForeachBuilder\.handle"),
    ("graph: variable rendering", r"^(VariableRenderer|TerraformVariableRenderer)\.render_variables_from_local_graph"),
    ("graph: vertices, edges, rest", r"^TerraformLocalGraph\.build_graph|^TerraformGraphManager\.build_graph"),
    ("definitions and breadcrumbs", r"^Runner\._update_definitions_and_breadcrumbs"),
    ("resource checks", r"^Runner\.check_tf_definition"),
    ("graph checks", r"get_graph_checks_report|checks_infra"),
)
_PYTHON_FRAME = re.compile(r"\((<frozen [^>]+>|[^()]*\.py):\d+\)$")
_RUNNER = re.compile(r"(?:^|;)_scan \(checker/engines/checkov\.py.*?;[^;]*\(checkov/(?!common/)(\w+)/")


def _first(frames: list[str], table: tuple[tuple[str, str], ...]) -> str | None:
    for label, pattern in table:
        compiled = re.compile(pattern)
        if any(compiled.search(";".join(frames[i:])) for i in range(len(frames))):
            return label
    return None


def summarise(path: Path, rate: float, top: int) -> None:
    samples: list[tuple[list[str], list[str], int]] = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        procs = [f.split(":", 1)[0] for f in frames if f.startswith("process ")]
        samples.append((procs, [f for f in frames if not f.startswith("process ")], int(count)))
    framework: dict[str, str] = {}  # worker process -> the Checkov framework it ran
    for procs, frames, _ in samples:
        match = _RUNNER.search(";".join(frames))
        if match and len(procs) > 1:
            framework.setdefault(procs[-1], match[1])
    total = sum(n for *_, n in samples)
    by_stage: collections.Counter[str] = collections.Counter()
    gc_by_stage: collections.Counter[str] = collections.Counter()
    terraform: collections.Counter[str] = collections.Counter()
    per_worker: collections.Counter[str] = collections.Counter()
    for procs, frames, n in samples:
        python = [f for f in frames if _PYTHON_FRAME.search(f)]
        in_gc = any(f.startswith("gc_collect_main") for f in frames)
        if len(procs) > 1:
            name = framework.get(procs[-1], "?")
            stage = f"Checkov worker: {name}"
            per_worker[f"{procs[-1]} ({name})"] += n
            if name == "terraform":
                terraform[_first(python, TERRAFORM_STEPS) or "rest of the worker (threads, pickling, ...)"] += n
        elif not python:
            stage = "no Python frame: interpreter start-up/shut-down (final GC)"
        else:
            stage = _first(python, MAIN_STAGES) or "other"
        by_stage[stage] += n
        if in_gc:
            gc_by_stage[stage] += n
    seconds = 1 / rate
    print(f"{path}: {total} samples = {total * seconds:.1f} CPU-busy s at {rate:g}/s "
          f"({len(per_worker)} worker process(es))\n")
    print("| stage | s | % | of which in GC (--native only), s |\n|---|---:|---:|---:|")
    for stage, n in by_stage.most_common(top):
        print(f"| {stage} | {n * seconds:.2f} | {100 * n / total:.1f} | {gc_by_stage[stage] * seconds:.2f} |")
    if terraform:
        tf_total = sum(terraform.values())
        print(f"\nCheckov's Terraform worker ({tf_total * seconds:.1f} s):\n\n| step | s | % of the worker |\n"
              "|---|---:|---:|")
        for step, n in terraform.most_common():
            print(f"| {step} | {n * seconds:.2f} | {100 * n / tf_total:.1f} |")
    print("\nworkers: " + ", ".join(f"{w} {n * seconds:.2f} s" for w, n in per_worker.most_common()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw", type=Path, help="a profile written by `py-spy record -f raw`")
    parser.add_argument("--rate", type=float, default=100, help="py-spy's --rate when recording (default 100)")
    parser.add_argument("--top", type=int, default=30, help="stages to list (default 30)")
    args = parser.parse_args()
    summarise(args.raw, args.rate, args.top)


if __name__ == "__main__":
    main()
