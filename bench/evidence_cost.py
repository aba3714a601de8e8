#!/usr/bin/env python3
"""What signed evidence adds to a scan: key loading, the predicate, sealing and writing, in a fresh
process each round (so the imports of cryptography and in-toto are counted, as a CI job pays them).

    .venv/bin/python bench/evidence_cost.py [FOLDER] [--rounds 5]

The scan itself runs first in the same process and is not timed; then `checker.evidence.sealing`
does exactly what `checker scan --evidence-output` does.
Whole-scan timings cannot show this: the noise of a scan is larger than the evidence.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

ROUND = r"""
import json, sys, time
from pathlib import Path
from checker import scan
from checker.output import write_atomic
from checker.reporters import sarif
folder, out = Path(sys.argv[1]), Path(sys.argv[2])
result = scan.run(scan.Options(paths=(str(folder),), ruleset=sys.argv[3]))
write_atomic(out / "r.sarif", sarif.render(result))
start = time.perf_counter()
from checker.evidence import sealing
sealer = sealing.sealer(str(out / "e.jsonl"), ("app=sha256:" + "a" * 64,), "production", str(out / "k.key"),
                        str(out / "r.sarif"), "--sarif-output")
sealer.seal_scan(result, str(out / "r.sarif"))
print(json.dumps({"seconds": time.perf_counter() - start, "findings": len(result.findings),
                  "sarif_bytes": (out / "r.sarif").stat().st_size}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default="examples")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ruleset", default="org-baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "checker", "evidence", "keygen", f"{tmp}/k.key"], check=True,
                       capture_output=True)
        runs = [json.loads(subprocess.run([sys.executable, "-c", ROUND, args.folder, tmp, args.ruleset], check=True,
                                          capture_output=True, text=True, env={"CHECKER_WARM": "0",
                                                                               "PATH": "/usr/bin:/bin"}).stdout)
                for _ in range(args.rounds)]
    seconds = [r["seconds"] * 1000 for r in runs]
    print(f"{args.folder}: {runs[0]['findings']} findings, SARIF {runs[0]['sarif_bytes']} bytes; evidence adds "
          f"median {statistics.median(seconds):.1f} ms (min {min(seconds):.1f}, max {max(seconds):.1f}) "
          f"over {args.rounds} fresh processes")


if __name__ == "__main__":
    main()
