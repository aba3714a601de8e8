"""Signed evidence: real Ed25519 keys, real signatures, the real CLI; every tampering refused (exit 3)."""
from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from testkit import PROJECT

from checker.errors import ConfigError
from checker.evidence import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    VSA_TYPE,
    dsse,
    keys,
    statements,
)

VSA_SCHEMA = Path(__file__).resolve().parent / "schemas" / "slsa-vsa-v1.schema.json"
PREDICATE_SCHEMA = PROJECT / "checker" / "evidence" / "gate-decision.schema.json"
COMMIT = "3f2a9c1e8b7d6f5a4c3b2a1908f7e6d5c4b3a291"
OTHER_COMMIT = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291807"
IMAGE = hashlib.sha256(b"registry.example.com/payments@image").hexdigest()
BASE_DIGEST = "sha256:" + hashlib.sha256(b"org-gate layer").hexdigest()
RULESET_DIGEST = "sha256:" + hashlib.sha256(b"resolved ruleset").hexdigest()


# --- helpers --------------------------------------------------------------------------------------------------------

def predicate(sarif: bytes, decision: str = "FAILED", environment: str | None = None, **change: Any) -> dict[str, Any]:
    """A realistic gate-decision predicate, as `checker scan --evidence-output` would record it."""
    blocking = [{"rule": "ORG-K8S-001", "severity": "high", "file": "k8s/web.yaml", "line": 10,
                 "fingerprint": "ORG-K8S-001:k8s/web.yaml:9b1c7e"}] if decision == "FAILED" else []
    data: dict[str, Any] = {
        "decision": decision,
        "reason": {"PASSED": "no open finding at or above high", "FAILED": "1 open finding(s) at or above high",
                   "INCOMPLETE": "1 thing(s) could not be checked, so the gate fails closed"}[decision],
        "threshold": "high",
        "exitCode": {"PASSED": 0, "FAILED": 1, "INCOMPLETE": 3}[decision],
        "decidedFrom": "scan",
        "counts": {"critical": {"open": 0, "suppressed": 0, "baselined": 0},
                   "high": {"open": len(blocking), "suppressed": 1, "baselined": 2},
                   "medium": {"open": 3, "suppressed": 0, "baselined": 0},
                   "low": {"open": 0, "suppressed": 1, "baselined": 0},
                   "info": {"open": 5, "suppressed": 0, "baselined": 0}},
        "blocking": blocking,
        "notChecked": ([{"message": "could not parse: unexpected end of stream", "file": "k8s/broken.yaml",
                         "line": 4}] if decision == "INCOMPLETE" else []),
        "waivers": [{"rule": "CKV_AWS_18", "paths": ["terraform/logs/**"], "reason": "log bucket of the log bucket",
                     "approvedBy": "security@example.com", "expires": "2031-03-31", "ticket": "SEC-1234",
                     "source": "bundled:org-gate", "findings": 1}],
        "inlineSuppressions": [{"rule": "ORG-GHA-001", "file": ".github/workflows/ci.yml", "line": 12,
                                "reason": "pinned by digest in the reusable workflow"}],
        "baseline": {"digest": "sha256:" + hashlib.sha256(b"baseline").hexdigest()},
        "ruleset": {"name": "payments", "version": "2.3.0", "digest": RULESET_DIGEST,
                    "base": {"name": "org-gate", "digest": BASE_DIGEST},
                    "layers": [{"name": "org-gate", "file": "bundled:org-gate", "digest": BASE_DIGEST},
                               {"name": "payments", "file": ".checker.yaml",
                                "digest": "sha256:" + hashlib.sha256(b"repo layer").hexdigest()}],
                    "lockedFailOn": None},
        "tools": {"checker": "0.1.0", "checkov": "3.3.30"},
        "startedOn": "2030-06-01T10:00:00Z",
        "finishedOn": "2030-06-01T10:00:41Z",
        "decidedOn": "2030-06-01T10:00:42Z",
        "environment": environment,
        "sarif": {"name": "results.sarif", "digest": {"sha256": hashlib.sha256(sarif).hexdigest()}},
        "scope": {"paths": ["."], "wholeRepository": True, "files": 12, "rules": 40},
        "change": {"repository": "https://github.com/example/payments", "commit": COMMIT, "branch": "feature/PAY-42",
                   "dirty": False, "tickets": [{"id": "PAY-42", "foundIn": ["branch", "commits"]}],
                   "ticketRequired": True,
                   "ci": {"provider": "github-actions", "server": "https://github.com",
                          "repository": "example/payments",
                          "runUrl": "https://github.com/example/payments/actions/runs/123", "actor": "dev",
                          "event": "pull_request", "ref": "refs/pull/7/merge",
                          "pullRequest": {"number": 7, "title": "PAY-42 rotate keys", "baseRef": "main"}}},
    }
    data["change"].update(change)
    return data


class Evidence:
    """An evidence file sealed for real in tmp_path, with its SARIF and keys."""

    def __init__(self, root: Path, decision: str = "FAILED", key: Ed25519PrivateKey | None = None,
                 subjects: tuple[statements.Subject, ...] = (), environment: str | None = None,
                 **change: Any) -> None:
        self.root = root
        self.sarif = root / "results.sarif"
        self.sarif.write_text('{"version": "2.1.0", "runs": []}\n')
        self.predicate = predicate(self.sarif.read_bytes(), decision, environment, **change)
        self.path = root / "gate.intoto.jsonl"
        self.path.write_text(statements.seal(self.predicate, subjects, key))

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.path.read_text().splitlines()]

    def statements(self) -> list[dict[str, Any]]:
        return [json.loads(base64.b64decode(e["payload"])) for e in self.lines()]

    def rewrite(self, envelopes: list[dict[str, Any]]) -> None:
        self.path.write_text("".join(json.dumps(e) + "\n" for e in envelopes))


@pytest.fixture
def keypair(tmp_path: Path, cli) -> tuple[Ed25519PrivateKey, Path]:
    """A key pair written by `checker evidence keygen`: (private key, KEYFILE.pub)."""
    result = cli("evidence", "keygen", str(tmp_path / "gate.key"))
    assert result.exit_code == 0, result.output
    return keys.read_private_key(tmp_path / "gate.key"), tmp_path / "gate.key.pub"


@pytest.fixture
def other_keypair(tmp_path: Path) -> tuple[Ed25519PrivateKey, Path]:
    keys.generate(tmp_path / "other.key")
    return keys.read_private_key(tmp_path / "other.key"), tmp_path / "other.key.pub"


def verify(cli, evidence: Evidence, *args: str, key: Path):
    return cli("evidence", "verify", str(evidence.path), "--key", str(key), *args)


def secret_chunks(pem: bytes) -> list[str]:
    """Pieces of a PEM's body (not its BEGIN/END lines): none may ever appear in output."""
    body = "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))
    return [body[i:i + 16] for i in range(0, len(body) - 16, 8)]


# --- sealing and verifying ------------------------------------------------------------------------------------------

def test_sealed_evidence_verifies_and_names_what_it_checked(tmp_path, cli, keypair):
    key, pub = keypair
    evidence = Evidence(tmp_path, "PASSED", key, (statements.Subject("registry.example.com/payments",
                                                                     {"sha256": IMAGE}),))
    result = verify(cli, evidence, "--sarif", str(evidence.sarif), "--commit", COMMIT, "--subject",
                    f"sha256:{IMAGE}", "--ruleset", f"payments@{RULESET_DIGEST}", "--require-pass", key=pub)
    assert result.exit_code == 0, result.output
    kid = keys.key_id(key.public_key())
    assert result.output.splitlines() == [
        f"ok   line 1: signed by key {kid}",
        f"ok   line 2: signed by key {kid}",
        ("ok   one gate decision and one SLSA VSA that agree (PASSED, ruleset digest, SARIF digest) and name the "
         "same 3 subject(s)"),
        (f"ok   the SARIF {evidence.sarif} is the one the gate decided on "
         f"(sha256:{evidence.predicate['sarif']['digest']['sha256']})"),
        f"ok   the decision is for commit {COMMIT}",
        f"ok   subject registry.example.com/payments has sha256:{IMAGE}",
        f"ok   the decision's ruleset is payments ({RULESET_DIGEST})",
        "ok   the recorded gate PASSED: no open finding at or above high",
        f"verified: {evidence.path}: gate PASSED, signed by {kid}",
    ]


def test_the_file_is_json_lines_of_canonical_dsse_envelopes_of_statements(tmp_path, keypair):
    key, _ = keypair
    evidence = Evidence(tmp_path, "FAILED", key)
    text = evidence.path.read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 2
    for line in text.splitlines():
        envelope = json.loads(line)
        assert line == json.dumps(envelope, sort_keys=True, separators=(",", ":"))
        assert envelope["payloadType"] == PAYLOAD_TYPE
        assert [s["keyid"] for s in envelope["signatures"]] == [keys.key_id(key.public_key())]
        key.public_key().verify(base64.b64decode(envelope["signatures"][0]["sig"]),
                                dsse.pae(PAYLOAD_TYPE, base64.b64decode(envelope["payload"])))
    gate, vsa = evidence.statements()
    assert [gate["_type"], gate["predicateType"], vsa["_type"], vsa["predicateType"]] == [
        STATEMENT_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, VSA_TYPE]
    assert gate["predicate"] == evidence.predicate  # plain JSON: integers stay integers
    assert isinstance(gate["predicate"]["exitCode"], int)
    assert gate["subject"] == vsa["subject"] == [
        {"name": "https://github.com/example/payments", "digest": {"gitCommit": COMMIT}},
        {"name": "results.sarif", "digest": {"sha256": evidence.predicate["sarif"]["digest"]["sha256"]}}]


def test_pae_is_the_dsse_encoding():
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")
    assert dsse.pae("t", b"") == b"DSSEv1 1 t 0 "


@pytest.mark.parametrize("decision", ["PASSED", "FAILED", "INCOMPLETE"])
def test_predicate_and_vsa_validate_against_their_schemas(tmp_path, keypair, decision):
    evidence = Evidence(tmp_path, decision, keypair[0], environment="production")
    gate, vsa = evidence.statements()
    for schema_path, data in ((PREDICATE_SCHEMA, gate["predicate"]), (VSA_SCHEMA, vsa["predicate"])):
        schema = json.loads(schema_path.read_text())
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        errors = [e.message for e in cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(data)]
        assert errors == [], (schema_path.name, errors)
    summary = vsa["predicate"]
    assert summary["verificationResult"] == ("PASSED" if decision == "PASSED" else "FAILED")
    assert summary["verifiedLevels"] == (["CHECKER_FAIL_ON_HIGH"] if decision == "PASSED" else ["FAILED"])
    assert summary["resourceUri"] == "production"
    assert summary["timeVerified"] == "2030-06-01T10:00:42Z"
    assert summary["policy"] == {"uri": "https://github.com/paved-road/checker/ruleset/payments@2.3.0",
                                 "digest": {"sha256": RULESET_DIGEST.removeprefix("sha256:")}}
    assert summary["inputAttestations"] == [{"uri": "results.sarif",
                                             "digest": evidence.predicate["sarif"]["digest"]}]
    assert summary["verifier"] == {"id": "https://github.com/paved-road/checker",
                                   "version": {"checker": "0.1.0", "checkov": "3.3.30"}}


def test_resource_uri_is_the_commit_without_an_environment(tmp_path):
    assert Evidence(tmp_path).statements()[1]["predicate"]["resourceUri"] == (
        f"git+https://github.com/example/payments@{COMMIT}")
    assert Evidence(tmp_path, repository=None).statements()[1]["predicate"]["resourceUri"] == f"git:{COMMIT}"
    assert Evidence(tmp_path, dirty=True).statements()[1]["predicate"]["resourceUri"] == "results.sarif"


def test_the_schemas_refuse_what_the_predicate_must_not_hold(tmp_path):
    good = predicate(b"{}")
    assert statements.predicate_problems(good) == []
    bad = copy.deepcopy(good)
    bad["ruleset"]["layers"][1]["file"] = "/home/ci/work/.checker.yaml"  # an absolute path of the machine
    bad["decision"] = "PASSED"  # with a blocking finding and exit code 1
    bad["surprise"] = 1
    problems = statements.predicate_problems(bad)
    assert any(p.startswith("ruleset/layers/1/file") for p in problems), problems
    assert any("surprise" in p for p in problems) and any("exitCode" in p for p in problems), problems
    with pytest.raises(ValueError, match="does not match its schema"):
        statements.seal(bad, (), None)


def test_seal_time_for_a_realistic_predicate(tmp_path, keypair):
    data = predicate(b"{}")
    data["blocking"] = [{"rule": f"ORG-K8S-{i:03}", "severity": "high", "file": f"k8s/app{i}.yaml", "line": i,
                         "fingerprint": f"fp{i}"} for i in range(1, 200)]
    data["counts"]["high"]["open"] = 199
    started = time.perf_counter()
    statements.seal(data, (), keypair[0])
    print(f"seal (199 blocking findings, warm imports): {(time.perf_counter() - started) * 1000:.1f} ms")


def test_nothing_heavy_is_imported_when_the_cli_starts():
    code = ("import sys, checker.cli; heavy = [m for m in ('cryptography', 'in_toto_attestation', 'google.protobuf') "
            "if m in sys.modules]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- tampering: exit 3, naming it -----------------------------------------------------------------------------------

def test_an_edited_payload_is_refused(tmp_path, cli, keypair):
    key, pub = keypair
    evidence = Evidence(tmp_path, "FAILED", key)
    envelopes = evidence.lines()
    gate = json.loads(base64.b64decode(envelopes[0]["payload"]))
    gate["predicate"].update(decision="PASSED", exitCode=0, blocking=[], reason="no open finding at or above high")
    envelopes[0]["payload"] = base64.b64encode(json.dumps(gate).encode()).decode()  # the old signature kept
    evidence.rewrite(envelopes)
    result = verify(cli, evidence, "--require-pass", key=pub)
    assert result.exit_code == 3, result.output
    assert "FAIL line 1: signature does not verify: the payload was altered or signed by another key" in result.output
    assert "ok   line 2: signed by key" in result.output
    assert result.output.splitlines()[-1].startswith("NOT VERIFIED:")


def test_another_key_is_refused_naming_its_key_id(tmp_path, cli, keypair, other_keypair):
    evidence = Evidence(tmp_path, "PASSED", other_keypair[0])
    result = verify(cli, evidence, key=keypair[1])
    assert result.exit_code == 3, result.output
    assert f"FAIL line 1: signed by an unknown key {keys.key_id(other_keypair[0].public_key())}" in result.output
    both = cli("evidence", "verify", str(evidence.path), "--key", str(keypair[1]), "--key", str(other_keypair[1]))
    assert both.exit_code == 0, both.output  # several trusted keys: a rotation


def test_stripped_signatures_are_refused(tmp_path, cli, keypair):
    evidence = Evidence(tmp_path, "PASSED", keypair[0])
    evidence.rewrite([{**e, "signatures": []} for e in evidence.lines()])
    result = verify(cli, evidence, key=keypair[1])
    assert result.exit_code == 3, result.output
    assert "FAIL line 1: unsigned: the envelope carries no signature" in result.output
    assert "FAIL line 2: unsigned" in result.output


def test_unsigned_evidence_never_verifies(tmp_path, cli, keypair):
    result = verify(cli, Evidence(tmp_path, "PASSED", None), key=keypair[1])
    assert result.exit_code == 3 and "unsigned" in result.output, result.output


def test_a_keyid_hint_is_not_trusted_the_signature_is(tmp_path, cli, keypair):
    evidence = Evidence(tmp_path, "PASSED", keypair[0])
    evidence.rewrite([{**e, "signatures": [{**e["signatures"][0], "keyid": "someone-else"}]} for e in evidence.lines()])
    result = verify(cli, evidence, key=keypair[1])
    assert result.exit_code == 0, result.output
    assert f"signed by key {keys.key_id(keypair[0].public_key())}" in result.output


def test_an_altered_sarif_is_refused(tmp_path, cli, keypair):
    evidence = Evidence(tmp_path, "PASSED", keypair[0])
    evidence.sarif.write_text('{"version": "2.1.0", "runs": [] }\n')
    result = verify(cli, evidence, "--sarif", str(evidence.sarif), key=keypair[1])
    assert result.exit_code == 3, result.output
    assert f"is not the one the gate decided on (sha256:{evidence.predicate['sarif']['digest']['sha256']})" in (
        result.output)


def test_another_commit_is_refused(tmp_path, cli, keypair):
    evidence = Evidence(tmp_path, "PASSED", keypair[0])
    result = verify(cli, evidence, "--commit", OTHER_COMMIT, key=keypair[1])
    assert result.exit_code == 3, result.output
    assert f"FAIL the decision is for commit {COMMIT}, not {OTHER_COMMIT}" in result.output
    assert verify(cli, evidence, "--commit", COMMIT.upper(), key=keypair[1]).exit_code == 0
    for prefix in (COMMIT[:6], COMMIT[:12]):  # a prefix could be made to collide: only the full id
        short = verify(cli, evidence, "--commit", prefix, key=keypair[1])
        assert short.exit_code == 2 and "give the full commit id" in short.output, short.output


def test_another_subject_is_refused(tmp_path, cli, keypair):
    evidence = Evidence(tmp_path, "PASSED", keypair[0], (statements.Subject("app", {"sha256": IMAGE}),))
    other = hashlib.sha256(b"another image").hexdigest()
    result = verify(cli, evidence, "--subject", f"sha256:{other}", key=keypair[1])
    assert result.exit_code == 3, result.output
    assert f"FAIL no subject has sha256:{other}: the decision is not about that artifact" in result.output
    assert verify(cli, evidence, "--subject", f"sha256:{IMAGE}", key=keypair[1]).exit_code == 0


@pytest.mark.parametrize("bad", ["sha256:abc", "app=sha256:" + "a" * 64, "md5:" + "a" * 32])
def test_a_subject_not_of_the_form_sha256_hex_is_a_usage_error(tmp_path, cli, keypair, bad):
    result = verify(cli, Evidence(tmp_path, "PASSED", keypair[0]), "--subject", bad, key=keypair[1])
    assert result.exit_code == 2 and "sha256:<64 hex digits>" in result.output, result.output


def test_another_ruleset_digest_is_refused(tmp_path, cli, keypair):
    evidence = Evidence(tmp_path, "PASSED", keypair[0])
    other = "sha256:" + hashlib.sha256(b"a looser ruleset").hexdigest()
    result = verify(cli, evidence, "--ruleset", f"payments@{other}", key=keypair[1])
    assert result.exit_code == 3, result.output
    assert (f"FAIL the decision was made under payments ({RULESET_DIGEST}) on the base org-gate ({BASE_DIGEST}), "
            f"not payments@{other}") in result.output
    for ok in (f"payments@{RULESET_DIGEST}", f"org-gate@{BASE_DIGEST}", "org-gate",
               f"../org/gate.yaml@{BASE_DIGEST}"):  # a --base FILE is recorded by its own name: the digest decides
        assert verify(cli, evidence, "--ruleset", ok, key=keypair[1]).exit_code == 0, ok
    # a name alone must be one the judged repository cannot choose: its own .checker.yaml is named "payments"
    for refused in ("payments", "other-ruleset", "../org/gate.yaml@sha256:" + "b" * 64):
        assert verify(cli, evidence, "--ruleset", refused, key=keypair[1]).exit_code == 3, refused


def test_a_dirty_tree_is_not_evidence_for_the_commit(tmp_path, cli, keypair):
    evidence = Evidence(tmp_path, "PASSED", keypair[0], dirty=True)
    assert all("gitCommit" not in s["digest"] for s in evidence.statements()[0]["subject"])
    result = verify(cli, evidence, "--commit", COMMIT, key=keypair[1])
    assert result.exit_code == 3, result.output
    assert (f"FAIL scanned a working tree with uncommitted changes on top of {COMMIT}: not evidence for the commit"
            in result.output)
    assert verify(cli, evidence, key=keypair[1]).exit_code == 0  # still a signed record of what was scanned


def test_a_commit_subject_the_decision_does_not_vouch_for_is_refused(tmp_path, cli, keypair):
    evidence = Evidence(tmp_path, "PASSED", keypair[0], dirty=True)
    key, pub = keypair
    envelopes = []
    for statement in evidence.statements():  # signed by the trusted key, but inconsistent
        statement["subject"].insert(0, {"name": "git", "digest": {"gitCommit": COMMIT}})
        envelopes.append(dsse.sign(json.dumps(statement).encode(), key))
    evidence.rewrite(envelopes)
    result = verify(cli, evidence, "--commit", COMMIT, key=pub)
    assert result.exit_code == 3
    assert f"a subject names commit {COMMIT}, which the gate decision does not vouch for" in result.output


def test_a_vsa_that_disagrees_with_the_decision_is_refused(tmp_path, cli, keypair):
    key, pub = keypair
    evidence = Evidence(tmp_path, "FAILED", key)
    gate, vsa = evidence.statements()
    vsa["predicate"]["verificationResult"] = "PASSED"
    evidence.rewrite([dsse.sign(json.dumps(s).encode(), key) for s in (gate, vsa)])
    result = verify(cli, evidence, key=pub)
    assert result.exit_code == 3
    assert "FAIL the VSA says 'PASSED' but the gate decision is FAILED" in result.output


def test_exactly_one_decision_and_one_vsa(tmp_path, cli, keypair):
    evidence = Evidence(tmp_path, "PASSED", keypair[0])
    envelopes = evidence.lines()
    evidence.rewrite(envelopes + envelopes[:1])
    result = verify(cli, evidence, key=keypair[1])
    assert result.exit_code == 3
    assert "FAIL 2 gate-decision statement(s) (lines 1, 3); the evidence must hold exactly one" in result.output
    evidence.rewrite(envelopes[1:])
    assert "FAIL 0 gate-decision statement(s); the evidence must hold exactly one" in verify(
        cli, evidence, key=keypair[1]).output


# --- the decision: --require-pass -----------------------------------------------------------------------------------

@pytest.mark.parametrize("decision", ["FAILED", "INCOMPLETE"])
def test_require_pass_gives_1_when_the_gate_did_not_pass(tmp_path, cli, keypair, decision):
    evidence = Evidence(tmp_path, decision, keypair[0])
    result = verify(cli, evidence, "--require-pass", key=keypair[1])
    assert result.exit_code == 1, result.output
    assert f"FAIL the recorded gate {decision}: " in result.output
    assert result.output.splitlines()[-1] == (
        f"verified, but the recorded gate did not pass ({decision}): {evidence.path} (--require-pass)")
    assert verify(cli, evidence, key=keypair[1]).exit_code == 0  # verified; the decision is the caller's to judge


def test_json_report(tmp_path, cli, keypair):
    evidence = Evidence(tmp_path, "FAILED", keypair[0])
    result = verify(cli, evidence, "--require-pass", "--format", "json", key=keypair[1])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["verified"] is True and report["exitCode"] == 1 and report["decision"] == "FAILED"
    assert report["signedBy"] == [keys.key_id(keypair[0].public_key())]
    assert report["subjects"][0] == {"name": "https://github.com/example/payments", "digest": {"gitCommit": COMMIT}}
    assert [c["ok"] for c in report["checks"]] == [True, True, True, False]


# --- keys -----------------------------------------------------------------------------------------------------------

def test_keygen_writes_0600_and_pub_and_never_overwrites(tmp_path, cli):
    target = tmp_path / "signing.key"
    result = cli("evidence", "keygen", str(target))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert (tmp_path / "signing.key.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    before = target.read_bytes()
    again = cli("evidence", "keygen", str(target))
    assert again.exit_code == 2 and f"{target} already exists: keygen never overwrites" in again.output
    assert target.read_bytes() == before
    target.unlink()  # only the .pub left: still refused, nothing written
    again = cli("evidence", "keygen", str(target))
    assert again.exit_code == 2 and f"{target}.pub already exists" in again.output and not target.exists()


def test_key_id_is_the_sha256_of_the_der_public_key(tmp_path, keypair):
    key, pub = keypair
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert keys.key_id(key.public_key()) == hashlib.sha256(der).hexdigest()
    assert list(keys.public_keys([pub])) == [hashlib.sha256(der).hexdigest()]
    if shutil.which("openssl"):
        der_out = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(pub), "-outform", "DER"],
                                 capture_output=True, check=True).stdout
        assert hashlib.sha256(der_out).hexdigest() == keys.key_id(key.public_key())


def _bad_keys(tmp_path: Path) -> dict[str, bytes]:
    """Key files that must be refused, each holding secret text that must never be printed."""
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    encrypted = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"correct horse battery staple"))
    malformed = (b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIVERYSECRETBUTTRUNCATEDxx\n"
                 b"-----END PRIVATE KEY-----\n")
    return {"RSA": rsa_pem, "encrypted": encrypted, "malformed": malformed}


@pytest.mark.parametrize("kind", ["RSA", "encrypted", "malformed"])
def test_a_bad_signing_key_is_refused_without_its_text(tmp_path, kind):
    pem = _bad_keys(tmp_path)[kind]
    with pytest.raises(ConfigError) as caught:
        keys.private_key(pem, "CHECKER_SIGNING_KEY")
    message = str(caught.value)
    assert message.startswith("CHECKER_SIGNING_KEY: ")
    assert {"RSA": "is an RSA key", "encrypted": "encrypted with a password",
            "malformed": "not a readable PEM private key"}[kind] in message
    assert not any(chunk in message for chunk in secret_chunks(pem))
    assert caught.value.__context__ is None or caught.value.__suppress_context__  # no chained parser error shown


def test_a_signing_key_of_another_kind_is_refused():
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ConfigError, match=re.escape("key.pem: is an EC key; evidence is signed with Ed25519 only")):
        keys.private_key(ec_pem, "key.pem")
    public = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ConfigError, match="is a public key"):
        keys.private_key(public, "key.pem")
    with pytest.raises(ConfigError, match="no such key file"):
        keys.read_private_key("/nonexistent/key.pem")


@pytest.mark.parametrize("kind", ["RSA", "encrypted", "malformed", "private given as public"])
def test_a_bad_verify_key_is_a_usage_error_without_its_text(tmp_path, cli, keypair, kind):
    bad = _bad_keys(tmp_path)
    pem = (tmp_path / "gate.key").read_bytes() if kind == "private given as public" else bad[kind]
    key_file = tmp_path / "given.pem"
    key_file.write_bytes(pem)
    evidence = Evidence(tmp_path, "PASSED", keypair[0])
    result = run_cli("evidence", "verify", str(evidence.path), "--key", str(key_file))
    assert result.returncode == 2, result.stderr
    assert f"{key_file}: " in result.stderr
    assert "private key" in result.stderr
    output = result.stdout + result.stderr
    assert not any(chunk in output for chunk in secret_chunks(pem)), output
    assert "Traceback" not in output


def test_a_signing_key_in_the_environment_never_reaches_the_output(tmp_path, keypair):
    """Through `checker scan` (the lead's --evidence-output): a bad CHECKER_SIGNING_KEY is exit 2, text unshown."""
    pem = _bad_keys(tmp_path)["malformed"]
    (tmp_path / "repo").mkdir()
    result = run_cli("scan", str(tmp_path / "repo"), "--sarif-output", str(tmp_path / "r.sarif"),
                     "--evidence-output", str(tmp_path / "e.jsonl"), env={"CHECKER_SIGNING_KEY": pem.decode()})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "CHECKER_SIGNING_KEY" in result.stderr
    assert not any(chunk in result.stdout + result.stderr for chunk in secret_chunks(pem))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "checker", *args], capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ, "CHECKER_WARM": "0", **(env or {})})


# --- bad evidence files ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    (b"", "empty: no DSSE envelope in it"),
    (b"\n\n", "empty: no DSSE envelope in it"),
    (b"this is not json\n", ":1: not JSON; each line of an evidence file is one DSSE envelope"),
    (b'[1, 2]\n', ":1: a JSON array, not a DSSE envelope"),
    (b'{"payload": "e30=", "signatures": []}\n', ":1: not a DSSE envelope: no 'payloadType'"),
    (b'{"payloadType": "application/vnd.in-toto+json", "payload": 1, "signatures": []}\n',
     ":1: not a DSSE envelope: 'payload' is a number"),
    (b'{"payloadType": "text/plain", "payload": "e30=", "signatures": []}\n',
     ":1: unknown payloadType 'text/plain'; checker evidence is 'application/vnd.in-toto+json'"),
    (b'{"payloadType": "application/vnd.in-toto+json", "payload": "not base64!", "signatures": []}\n',
     ":1: payload: not valid base64"),
    (b'{"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": [{"keyid": "k"}]}\n',
     ":1: signatures[0] is not an object with a 'sig' string"),
    (b"\xff\xfe\n", ":1: not UTF-8 text"),
])
def test_a_file_that_is_not_evidence_is_exit_3_naming_the_line(tmp_path, cli, keypair, content, message):
    evidence = tmp_path / "gate.intoto.jsonl"
    evidence.write_bytes(content)
    result = cli("evidence", "verify", str(evidence), "--key", str(keypair[1]))
    assert result.exit_code == 3, result.output
    assert f"FAIL {evidence}" in result.output and message in result.output, result.output


def test_a_valid_envelope_on_a_later_line_is_named_by_its_line(tmp_path, cli, keypair):
    evidence = Evidence(tmp_path, "PASSED", keypair[0])
    evidence.path.write_text(evidence.path.read_text() + "{oops\n")
    result = verify(cli, evidence, key=keypair[1])
    assert result.exit_code == 3 and f"{evidence.path}:3: not JSON" in result.output, result.output


def test_a_payload_that_is_not_a_statement_is_refused(tmp_path, cli, keypair):
    evidence = tmp_path / "gate.intoto.jsonl"
    evidence.write_text(json.dumps(dsse.sign(b'{"hello": "world"}', keypair[0])) + "\n")
    result = cli("evidence", "verify", str(evidence), "--key", str(keypair[1]))
    assert result.exit_code == 3
    assert "FAIL line 1: not an in-toto Statement v1: _type is None" in result.output


def test_an_over_large_file_is_refused_unread(tmp_path, cli, keypair):
    evidence = tmp_path / "gate.intoto.jsonl"
    with open(evidence, "wb") as handle:
        handle.truncate(dsse.MAX_FILE_BYTES + 1)
    result = cli("evidence", "verify", str(evidence), "--key", str(keypair[1]))
    assert result.exit_code == 3 and "larger than 16 MiB" in result.output, result.output


def test_a_missing_evidence_file_is_a_usage_error(tmp_path, cli, keypair):
    result = cli("evidence", "verify", str(tmp_path / "absent.jsonl"), "--key", str(keypair[1]))
    assert result.exit_code == 2 and "absent.jsonl: no such evidence file" in result.output, result.output
    assert cli("evidence", "verify", str(tmp_path / "absent.jsonl")).exit_code == 2  # --key is required


def test_text_from_the_file_is_printed_inert(tmp_path, cli, keypair):
    evidence = tmp_path / "gate.intoto.jsonl"
    evidence.write_text(json.dumps({"payloadType": "x\n\x1b[32mgate PASSED", "payload": "", "signatures": []}) + "\n")
    result = cli("evidence", "verify", str(evidence), "--key", str(keypair[1]))
    assert result.exit_code == 3
    assert "\x1b" not in result.output and "\ngate PASSED" not in result.output
    assert "\\x1b[32mgate PASSED" in result.output


def test_an_envelope_with_too_many_signatures_is_refused(tmp_path, cli, keypair):
    evidence = Evidence(tmp_path, "PASSED", keypair[0])
    evidence.rewrite([{**e, "signatures": e["signatures"] * (dsse.MAX_SIGNATURES + 1)} for e in evidence.lines()])
    result = verify(cli, evidence, key=keypair[1])
    assert result.exit_code == 3 and f":1: {dsse.MAX_SIGNATURES + 1} signatures; evidence carries at most" in (
        result.output), result.output


@pytest.mark.parametrize("bad", ["payments@sha256:abc", "payments@2.3.0", ""])
def test_a_ruleset_reference_of_another_form_is_a_usage_error(tmp_path, cli, keypair, bad):
    result = verify(cli, Evidence(tmp_path, "PASSED", keypair[0]), "--ruleset", bad, key=keypair[1])
    assert result.exit_code == 2 and "write NAME, NAME@sha256:<64 hex digits>" in result.output, result.output
