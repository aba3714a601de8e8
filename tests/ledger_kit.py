"""Real signed evidence for ledger and report tests, in well under a millisecond each, without Checkov.

The evidence is what `checker scan --evidence-output` writes: `statements.seal` over a gate-decision
predicate that validates against checker/evidence/gate-decision.schema.json (checked by `seal`), so
`checker evidence verify` accepts it under the key's .pub. Only the predicate is made by hand.

    from ledger_kit import keypair, make_evidence, write_evidence
    private, public = keypair(tmp_path)                      # files, via checker.evidence.keys.generate
    data = make_evidence(tmp_path, private, decision="FAILED", repository="https://github.com/acme/pay",
                         environment="production", tickets=["PAY-42"])      # -> bytes (both envelopes)
    path = write_evidence(tmp_path / "a.intoto.jsonl", private, decision="PASSED")

`key` is a private key file path, an Ed25519PrivateKey, or None (unsigned evidence). Every call
makes different evidence (a fresh random commit) unless `commit=` is given; the same arguments
with the same commit (and times) give the same bytes. For thousands (benchmarks), `fast=True`
skips the schema validation and in-toto-attestation's Statement building (identical bytes,
about 10x faster): the slow path is what the tests use and checks the output is evidence.
"""
from __future__ import annotations

import functools
import hashlib
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checker.evidence import PREDICATE_TYPE, STATEMENT_TYPE, VSA_TYPE, keys, statements

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

RULESET_DIGEST = "sha256:" + hashlib.sha256(b"resolved ruleset payments 2.3.0").hexdigest()
BASE_DIGEST = "sha256:" + hashlib.sha256(b"org-gate layer").hexdigest()
REPOSITORY = "https://github.com/example/payments"
SARIF = b'{"version": "2.1.0", "runs": []}\n'



def keypair(tmp_path: Path, name: str = "gate.key") -> tuple[Path, Path]:
    """A new Ed25519 key pair written by checker.evidence.keys.generate: (private key file, public .pub file)."""
    return keys.generate(Path(tmp_path) / name)


@functools.lru_cache(maxsize=64)
def _load(path: str) -> Ed25519PrivateKey:
    return keys.read_private_key(path)


def signing_key(key: Any) -> Ed25519PrivateKey | None:
    """An Ed25519PrivateKey from a key file path (read once, cached), a key, or None."""
    if key is None or not isinstance(key, (str, os.PathLike)):
        return key
    return _load(os.fspath(key))


def key_id(public_path: str | os.PathLike[str]) -> str:
    """The key id (checker.evidence.keys.key_id) of the public key file: what a ledger row's `signer` holds."""
    return next(iter(keys.public_keys([public_path])))


def random_commit() -> str:
    return secrets.token_hex(20)


def predicate(*, decision: str = "PASSED", repository: str | None = REPOSITORY, environment: str | None = None,
              commit: str | None = None, branch: str | None = "feature/PAY-42", dirty: bool = False,
              tickets: Sequence[str | Mapping[str, Any]] = ("PAY-42",), ticket_required: bool = True,
              waivers: Sequence[Mapping[str, Any]] | None = None, ruleset: str = "payments",
              ruleset_version: str = "2.3.0", ruleset_digest: str = RULESET_DIGEST,
              base: Mapping[str, str] | None = None, threshold: str = "high",
              started: str = "2030-06-01T10:00:00Z", finished: str = "2030-06-01T10:00:41Z",
              decided: str = "2030-06-01T10:00:42Z", blocking: Sequence[Mapping[str, Any]] | None = None,
              counts: Mapping[str, Mapping[str, int]] | None = None,
              not_checked: Sequence[Mapping[str, Any]] | None = None,
              ci: Mapping[str, Any] | None = None, actor: str = "dev", pr_title: str = "PAY-42 rotate keys",
              sarif: bytes = SARIF) -> dict[str, Any]:
    """A realistic gate-decision predicate (valid under its schema for any of the choices offered).

    tickets: ids ("PAY-42") or full {"id", "foundIn"} objects. waivers: None gives one realistic
    waiver (expires 2031-03-31); give [] for none, or dicts overriding the default's keys (e.g.
    {"expires": "2026-01-01", "approvedBy": "x@example.com"}). ci: None gives GitHub Actions with
    `actor` and a pull request titled `pr_title`; give {} for no CI (recorded as null).
    """
    if decision not in ("PASSED", "FAILED", "INCOMPLETE"):
        raise ValueError(f"decision {decision!r}: PASSED, FAILED or INCOMPLETE")
    if blocking is None:
        blocking = [{"rule": "ORG-K8S-001", "severity": "high", "file": "k8s/web.yaml", "line": 10,
                     "fingerprint": "ORG-K8S-001:k8s/web.yaml:9b1c7e"}] if decision == "FAILED" else []
    if counts is None:
        counts = {"critical": {"open": 0, "suppressed": 0, "baselined": 0},
                  "high": {"open": len(blocking), "suppressed": 1, "baselined": 0},
                  "medium": {"open": 2, "suppressed": 0, "baselined": 0},
                  "low": {"open": 0, "suppressed": 0, "baselined": 0},
                  "info": {"open": 1, "suppressed": 0, "baselined": 0}}
    default_waiver = {"rule": "CKV_AWS_18", "paths": ["terraform/logs/**"], "reason": "log bucket of the log bucket",
                      "approvedBy": "security@example.com", "expires": "2031-03-31", "ticket": "SEC-1234",
                      "source": "bundled:org-gate", "findings": 1}
    waiver_list = [default_waiver] if waivers is None else [{**default_waiver, **w} for w in waivers]
    if not_checked is None:
        not_checked = ([{"message": "could not parse: unexpected end of stream", "file": "k8s/broken.yaml",
                         "line": 4}] if decision == "INCOMPLETE" else [])
    if ci is None:
        ci = {"provider": "github-actions", "server": "https://github.com", "repository": "example/payments",
              "runUrl": "https://github.com/example/payments/actions/runs/123", "actor": actor,
              "event": "pull_request", "ref": "refs/pull/7/merge",
              "pullRequest": {"number": 7, "title": pr_title, "baseRef": "main"}}
    reasons = {"PASSED": f"no open finding at or above {threshold}",
               "FAILED": f"{len(blocking)} open finding(s) at or above {threshold}",
               "INCOMPLETE": f"{len(not_checked)} thing(s) could not be checked, so the gate fails closed"}
    layers = [{"name": ruleset, "file": ".checker.yaml", "digest": ruleset_digest}]
    if base is not None:
        layers.insert(0, {"name": base["name"], "file": f"bundled:{base['name']}", "digest": base["digest"]})
    return {
        "decision": decision,
        "reason": reasons[decision],
        "threshold": threshold,
        "exitCode": {"PASSED": 0, "FAILED": 1, "INCOMPLETE": 3}[decision],
        "decidedFrom": "scan",
        "counts": {k: dict(v) for k, v in counts.items()},
        "blocking": [dict(b) for b in blocking],
        "notChecked": [dict(n) for n in not_checked],
        "waivers": waiver_list,
        "inlineSuppressions": [],
        "baseline": None,
        "ruleset": {"name": ruleset, "version": ruleset_version, "digest": ruleset_digest,
                    "base": dict(base) if base is not None else None, "layers": layers, "lockedFailOn": None},
        "tools": {"checker": "0.1.0", "checkov": "3.3.30"},
        "startedOn": started,
        "finishedOn": finished,
        "decidedOn": decided,
        "environment": environment,
        "sarif": {"name": "results.sarif", "digest": {"sha256": hashlib.sha256(sarif).hexdigest()}},
        "scope": {"paths": ["."], "wholeRepository": True, "files": 12, "rules": 40},
        "change": {"repository": repository, "commit": commit if commit is not None else random_commit(),
                   "branch": branch, "dirty": dirty,
                   "tickets": [{"id": t, "foundIn": ["branch"]} if isinstance(t, str) else dict(t) for t in tickets],
                   "ticketRequired": ticket_required, "ci": dict(ci) or None},
    }


def seal(data: Mapping[str, Any], key: Any, *, fast: bool = False) -> bytes:
    """The evidence bytes of predicate `data`, signed by `key` (see the module docstring for `fast`)."""
    private = signing_key(key)
    if not fast:
        return statements.seal(data, (), private).encode("ascii")
    from checker.evidence import dsse

    subjects = [s.as_dict() for s in statements.statement_subjects(data, [])]
    lines = []
    for kind, body in ((PREDICATE_TYPE, dict(data)), (VSA_TYPE, statements.vsa_predicate(data))):
        payload = statements.canonical({"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": kind,
                                        "predicate": body}).encode("ascii")
        lines.append(statements.canonical(dsse.sign(payload, private)))
    return ("\n".join(lines) + "\n").encode("ascii")


def make_evidence(tmp_path: Path | None, key: Any, *, fast: bool = False, **choices: Any) -> bytes:
    """Evidence bytes for the predicate `predicate(**choices)` signed by `key` (a path, a key or None).

    `tmp_path` is accepted for symmetry with the other helpers and not written to: use
    `write_evidence` for a file.
    """
    return seal(predicate(**choices), key, fast=fast)


def write_evidence(path: str | os.PathLike[str], key: Any, *, fast: bool = False, **choices: Any) -> Path:
    """An evidence file at `path` (parent folders made) holding `make_evidence(None, key, **choices)`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(make_evidence(None, key, fast=fast, **choices))
    return target


def evidence_files(folder: str | os.PathLike[str], key: Any, count: int, *, fast: bool = True,
                   **choices: Any) -> list[Path]:
    """`count` distinct evidence files folder/0001.intoto.jsonl, ... (each a fresh commit)."""
    return [write_evidence(Path(folder) / f"{n:04}.intoto.jsonl", key, fast=fast, **choices)
            for n in range(1, count + 1)]
