"""Our own JSON report (schema `checker/scan-result/v1`): stable, documented, not a dump of internals."""
from __future__ import annotations

import json
from typing import Any

from checker.model import Finding, ScanResult

SCHEMA = "checker/scan-result/v1"


def render(result: ScanResult) -> str:
    decision = result.decision
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "tool": dict(result.versions),
        "ruleset": {"name": result.ruleset.name, "version": result.ruleset.version,
                    "digest": f"sha256:{result.ruleset.digest}"},
        "root": result.root,
        "change": result.change.as_dict(),
        "started": result.started,
        "finished": result.finished,
        "decision": {"verdict": decision.verdict, "exit_code": decision.exit_code, "reason": decision.reason,
                     "fail_on": result.fail_on},
        "findings": [_finding(f) for f in result.findings],
        "fixed": list(result.fixed),
        "problems": [{"path": p.path, "line": p.line, "message": p.message, "source": p.source}
                     for p in result.problems],
        "notes": list(result.notes),
    }
    return json.dumps(doc, indent=2) + "\n"


def _finding(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rule": f.rule_id, "severity": f.severity.value, "message": f.message, "path": f.location.path,
        "start_line": f.location.start_line, "end_line": f.location.end_line, "resource": f.resource,
        "fingerprint": f.fingerprint, "baseline_state": f.baseline_state or None, "suppression": None,
    }
    if f.suppression:
        out["suppression"] = {"kind": f.suppression.kind, "justification": f.suppression.justification,
                              "source": f.suppression.source, **f.suppression.properties()}
    return out
