"""The two in-toto Statements of a gate decision, and sealing them into signed evidence.

`seal` writes two envelopes with the same subjects: the gate decision (our predicate, which
carries everything) and a SLSA Verification Summary Attestation v1 derived from it (for tools
that read only SLSA: the verifier, when, what, under which policy, PASSED or FAILED).

Subjects, in this order:
- the commit, `{name: <repository URL> or "git", digest: {gitCommit: SHA}}`, only when the working
  tree was clean. A scan of a tree with uncommitted changes judged files that are in no commit, so
  it is not evidence for the commit it sits on: the commit stays in the predicate (`change`), for
  the record, but is not a subject, and `verify --commit` refuses such evidence saying why;
- the SARIF file, `{name: its file name, digest: {sha256}}`: the findings behind the decision;
- every caller's subject (e.g. the image a deploy job will ship), in the order given, duplicates
  dropped.

Predicates are written as plain JSON data. The in-toto-attestation library builds and validates
the Statement and its ResourceDescriptors, but its protobuf Struct would turn every integer into a
float and its VSA binding declares `verifiedLevels` a string: its Statement is taken without the
predicate and the plain dicts are put in. Payloads are canonical JSON (sorted keys, no spaces,
ASCII), so the same decision always gives the same bytes.

The VSA fields (https://slsa.dev/spec/v1.0/verification_summary):
- verifier: {id: VERIFIER_ID, version: {checker, checkov}}; timeVerified: the predicate's decidedOn;
- resourceUri: the `--environment` when given (what the decision gates); else `git+<repository>@<commit>`
  (`git:<commit>` without a repository) for a clean tree; else, with no commit that the evidence is
  for (not a checkout, or a dirty tree), the SARIF's name;
- policy: {uri: VERIFIER_ID/ruleset/NAME@VERSION (a name, not a location: the digest is what binds
  it), digest: {sha256: the resolved ruleset's digest}};
- inputAttestations: the SARIF (name and sha256); slsaVersion "1.0";
- verificationResult: PASSED only when the gate passed; FAILED and INCOMPLETE (fail closed) are FAILED;
- verifiedLevels: ["FAILED"] when failed, as the spec says; when passed, one custom level naming the
  gate's threshold, `CHECKER_FAIL_ON_<THRESHOLD>` (e.g. CHECKER_FAIL_ON_HIGH: no open finding at or
  above high). Custom levels may not start with `SLSA_`, and we claim no SLSA build level: the
  gate verified the source against a policy, not how anything was built.
"""
from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from checker.change import GIT_COMMIT
from checker.errors import ConfigError
from checker.evidence import PREDICATE_TYPE, STATEMENT_TYPE, VERIFIER_ID, VSA_TYPE

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SCHEMA = Path(__file__).with_name("gate-decision.schema.json")
SHA256 = re.compile(r"[0-9a-f]{64}")
SUBJECT_TEXT = re.compile(r"(?P<name>[^=\s][^=]*)=sha256:(?P<hex>[0-9a-f]{64})")


@dataclass(frozen=True)
class Subject:
    """An in-toto ResourceDescriptor naming something the decision is about, by digest."""

    name: str
    digest: Mapping[str, str]
    annotations: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "digest": dict(self.digest)}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def parse_subject(text: str) -> Subject:
    """`NAME=sha256:HEX` (the --subject option) as a Subject; ConfigError (exit 2) saying the form."""
    match = SUBJECT_TEXT.fullmatch(text)
    if not match:
        raise ConfigError(f"--subject {text!r}: write NAME=sha256:<64 lowercase hex digits>, e.g. "
                          "registry.example.com/app=sha256:<the image digest>")
    return Subject(match["name"], {"sha256": match["hex"]})


def canonical(data: Any) -> str:
    """Compact JSON with sorted keys, ASCII only: one line, the same bytes for the same data."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def seal(predicate: Mapping[str, Any], subjects: Sequence[Subject], key: Ed25519PrivateKey | None) -> str:
    """The evidence file's text: the gate-decision and VSA envelopes, signed by `key` (None: unsigned).

    A predicate that does not match gate-decision.schema.json is a ValueError: a bug of ours, and
    the CLI fails closed (exit 3) rather than write evidence `verify` would refuse.
    """
    problems = predicate_problems(predicate)
    if problems:
        raise ValueError("the gate-decision predicate does not match its schema: " + "; ".join(problems[:5]))
    from checker.evidence import dsse

    everything = statement_subjects(predicate, subjects)
    lines = []
    for predicate_type, body in ((PREDICATE_TYPE, dict(predicate)), (VSA_TYPE, vsa_predicate(predicate))):
        payload = canonical(statement(everything, predicate_type, body)).encode("ascii")
        lines.append(canonical(dsse.sign(payload, key)))
    return "\n".join(lines) + "\n"


def statement_subjects(predicate: Mapping[str, Any], extra: Sequence[Subject]) -> list[Subject]:
    """The commit (clean tree only), the SARIF, then `extra`, duplicates dropped; ValueError on a bad digest."""
    change = predicate.get("change") or {}
    found: list[Subject] = []
    if vouches_for_commit(predicate):
        found.append(Subject(change.get("repository") or "git", {"gitCommit": change["commit"]}))
    sarif = predicate["sarif"]
    found.append(Subject(sarif["name"], {"sha256": sarif["digest"]["sha256"]}))
    for subject in extra:
        if subject not in found:
            found.append(subject)
    for subject in found:
        _check_digest(subject)
    return found


def _check_digest(subject: Subject) -> None:
    if not subject.name or not subject.digest:
        raise ValueError(f"subject {subject.name!r}: a subject needs a name and a digest")
    for algorithm, value in subject.digest.items():
        pattern = GIT_COMMIT if algorithm == "gitCommit" else SHA256 if algorithm == "sha256" else None
        if pattern is not None and not pattern.fullmatch(value):
            raise ValueError(f"subject {subject.name!r}: {algorithm} {value!r} is not a lowercase hex digest")


def statement(subjects: Sequence[Subject], predicate_type: str, predicate: Mapping[str, Any]) -> dict[str, Any]:
    """An in-toto Statement v1 as JSON data, validated by in-toto-attestation, with plain `subjects`/`predicate`."""
    from google.protobuf import json_format
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
    from in_toto_attestation.v1.statement import Statement

    descriptors = [ResourceDescriptor(name=s.name, digest=dict(s.digest)).pb for s in subjects]
    built = Statement(descriptors, predicate_type, {"placeholder": True})  # validate() wants a predicate
    built.validate()
    data = json_format.MessageToDict(built.pb)
    if data.get("_type") != STATEMENT_TYPE:
        raise ValueError(f"in-toto-attestation built a Statement of type {data.get('_type')!r}")
    data["subject"] = [s.as_dict() for s in subjects]
    data["predicate"] = dict(predicate)
    return data


def vsa_predicate(predicate: Mapping[str, Any]) -> dict[str, Any]:
    """The SLSA VSA v1 predicate that summarises the gate-decision `predicate` (see the module docstring)."""
    ruleset = predicate["ruleset"]
    sarif = predicate["sarif"]
    passed = predicate["decision"] == "PASSED"
    return {
        "verifier": {"id": VERIFIER_ID,
                     "version": {"checker": predicate["tools"]["checker"], "checkov": predicate["tools"]["checkov"]}},
        "timeVerified": predicate["decidedOn"],
        "resourceUri": resource_uri(predicate),
        "policy": {"uri": policy_uri(ruleset["name"], ruleset["version"]),
                   "digest": {"sha256": _hex(ruleset["digest"])}},
        "inputAttestations": [{"uri": sarif["name"], "digest": {"sha256": sarif["digest"]["sha256"]}}],
        "verificationResult": "PASSED" if passed else "FAILED",
        "verifiedLevels": [f"CHECKER_FAIL_ON_{predicate['threshold'].upper()}"] if passed else ["FAILED"],
        "slsaVersion": "1.0",
    }


def vouches_for_commit(predicate: Mapping[str, Any]) -> bool:
    """Whether the decision is evidence for its commit: a clean tree, scanned whole. A scan of
    uncommitted changes, or of one folder or a few files, judged something other than the commit."""
    change = predicate.get("change") or {}
    return bool(change.get("commit")) and not change.get("dirty") and bool(
        (predicate.get("scope") or {}).get("wholeRepository"))


def resource_uri(predicate: Mapping[str, Any]) -> str:
    """What the VSA says was verified: the environment, else the clean commit, else the SARIF's name."""
    if predicate.get("environment"):
        return str(predicate["environment"])
    change = predicate.get("change") or {}
    if vouches_for_commit(predicate):
        repository = change.get("repository")
        if repository:
            prefix = "" if repository.startswith("git+") else "git+"
            return f"{prefix}{repository}@{change['commit']}"
        return f"git:{change['commit']}"
    return str(predicate["sarif"]["name"])


def policy_uri(name: str, version: str) -> str:
    """The URI naming ruleset NAME at VERSION in the VSA's policy."""
    return f"{VERIFIER_ID}/ruleset/{quote(name, safe='')}@{quote(version, safe='')}"


def _hex(digest: str) -> str:
    """'sha256:HEX' -> 'HEX' (the predicate's form -> a DigestSet value)."""
    return digest.split(":", 1)[1] if digest.startswith("sha256:") else digest


def predicate_problems(predicate: Any) -> list[str]:
    """Where `predicate` breaks gate-decision.schema.json, as 'path: message' lines (none: it is valid)."""
    return [f"{'/'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
            for error in sorted(_validator().iter_errors(predicate), key=lambda e: list(map(str, e.absolute_path)))]


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)
