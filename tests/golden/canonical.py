"""The canonical scan result the whole-output tests render (tests/test_golden.py).

Built by hand from the real model objects, without running a scan: every time, version and path
in it is fixed here, so the rendered outputs are the same on every machine and every day. The
ruleset is loaded with the real loader from tests/golden/ruleset.yaml (its name, version, digest
and layers are real); the ORG-* rules come from the python engine's catalogue (their text is the
policies' own, so editing a policy's docstring changes the expected outputs); the two Checkov
rules are made here by the engine's own `rule_of`, from a title, frameworks and a fix written here (one
has our fix, one has not), so the outputs change with the link scheme and the rendering of fixes, not
with Checkov's version or checker/fixes' data.

When ScanResult (or Finding, Change, ...) changes shape, adapt `canonical_result` alone.
"""
from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

from checker.change import Change, Ticket
from checker.discover import Source
from checker.engines import checkov, python
from checker.fixes import Fix
from checker.gate import decide
from checker.model import Finding, Kind, Location, Problem, Rule, ScanResult, Severity, Suppression, with_fingerprints
from checker.ruleset import Ruleset, load_ruleset, select_rules

GOLDEN = Path(__file__).resolve().parent
RULESET = GOLDEN / "ruleset.yaml"

# The canonical day: the scan finished on it, and the Markdown summary counts waivers expiring from it.
TODAY = datetime.date(2026, 3, 2)
TOPLEVEL = "/golden/checkout"  # the checkout's top folder: a path no machine has, never resolved to a real one
ROOT = f"{TOPLEVEL}/payments"  # the scanned folder, below the top (results are relative to it)
COMMIT = "3f2c9a1e8b7d6c5f4a3b2c1d0e9f8a7b6c5d4e3f"
BRANCH = "feature/PAY-1234-rotate-keys"

MANIFEST = """\
apiVersion: v1
kind: Pod
metadata:
  name: example
spec:
  containers:
    - name: app
      image: registry.example.com/app:1.0.0
      securityContext:
        allowPrivilegeEscalation: false  # no setuid escalation
"""
CHECKOV_RULES: tuple[Rule, ...] = (
    checkov.rule_of("CKV_K8S_20", "Containers should not run with allowPrivilegeEscalation", ("kubernetes", "helm"),
                    Fix("CKV_K8S_20", "Set `securityContext.allowPrivilegeEscalation: false` on every container.",
                        (("kubernetes", MANIFEST),), "golden")),
    checkov.rule_of("CKV_DOCKER_2", "Ensure that HEALTHCHECK instructions have been added to container images",
                    ("dockerfile",), None),
)


def golden_ruleset() -> Ruleset:
    """tests/golden/ruleset.yaml through the real loader, recorded as `ruleset.yaml` (the repository's own file)."""
    return load_ruleset(str(RULESET), repository=GOLDEN)


def canonical_result() -> ScanResult:
    """One scan as a reporter sees it: every severity, open, suppressed (inline and by a waiver),
    unchanged and new against a baseline, fixed since it, problems with and without a place, notes,
    and a change with its commit, branch, tickets and CI."""
    ruleset = golden_ruleset()
    catalogue = {**python.ENGINE.catalogue(ruleset), **{rule.id: rule for rule in CHECKOV_RULES}}
    rules = select_rules(ruleset, catalogue)

    ci_yml, release = ".github/workflows/ci.yml", ".github/workflows/release.yml"
    manifest = "deploy/überweisung service.yaml"  # a space and a non-ASCII letter
    dockerfile = "services/payments api/Dockerfile"
    found = [
        Finding("ORG-GHA-002", Severity.CRITICAL,
                "pull_request_target workflow checks out the untrusted head "
                "(ref: ${{ github.event.pull_request.head.sha }})",
                Location(release, 12, 12), "jobs.publish.steps[0].with.ref", kind="github-actions"),
        Finding("ORG-GHA-001", Severity.HIGH, "actions/setup-node is pinned to v4, not a full commit SHA",
                Location(ci_yml, 18, 18), "jobs.build.steps[1].uses", kind="github-actions"),
        Finding("ORG-GHA-001", Severity.HIGH, "actions/cache is pinned to v3, not a full commit SHA",
                Location(ci_yml, 31, 31), "jobs.build.steps[4].uses", kind="github-actions"),
        Finding("ORG-GHA-004", Severity.MEDIUM,
                "job build runs with the default token permissions; declare `permissions:` for the workflow or the job",
                Location(ci_yml, 9, 9), "jobs.build", kind="github-actions"),
        Finding("ORG-K8S-001", Severity.HIGH,
                "image docker.io/payments/api:1.4 is not from an approved registry (registry.example.com)",
                Location(manifest, 20, 20), "Deployment/payments-api.spec.template.spec.containers[0].image",
                suppression=Suppression("inSource", "vendor image, mirrored in PAY-9", f"{manifest}:19"),
                kind="kubernetes"),
        Finding("CKV_K8S_20", Severity.HIGH, "Containers should not run with allowPrivilegeEscalation",
                Location(manifest, 14, 31), "Deployment.default.payments-api", kind="kubernetes"),
        Finding("ORG-K8S-002", Severity.LOW, "Deployment/payments-api lacks required label(s): team",
                Location(manifest, 4, 4), "Deployment/payments-api.metadata.labels", kind="kubernetes"),
        Finding("ORG-DOCKER-001", Severity.HIGH,
                "base image python:3.12-slim is not from an approved registry (registry.example.com)",
                Location(dockerfile, 1, 1), "FROM python:3.12-slim",
                suppression=Suppression(
                    "external", "The base image is rebuilt by the platform team until the mirror carries it",
                    "ruleset.yaml:42", approved_by="security-lead@example.com", expires="2026-03-11",
                    paths=("services/payments api/**",), ticket="SEC-42"), kind="dockerfile"),
        Finding("CKV_DOCKER_2", Severity.LOW,
                "Ensure that HEALTHCHECK instructions have been added to container images",
                Location(dockerfile, 1, 14), "services/payments api/Dockerfile.", kind="dockerfile"),
        Finding("ORG-REPO-001", Severity.MEDIUM, "the repository has no CODEOWNERS file",
                Location(".github/CODEOWNERS", 1, 1), "repository", kind="repo"),
        Finding("ORG-REPO-003", Severity.INFO, "the repository has no SECURITY.md",
                Location("SECURITY.md", 1, 1), "repository", kind="repo"),
    ]
    # As scan.run does: fingerprints, then the baseline marks each finding new or unchanged.
    findings = tuple(dataclasses.replace(f, baseline_state="unchanged" if f.location.start_line == 31 else "new")
                     for f in with_fingerprints(found))
    problems = (  # sorted by path, line and message, as scan.run sorts them
        Problem("Checkov did not finish within 600 s, so its checks did not run", source="checkov"),
        Problem("not valid YAML: mapping values are not allowed here", "charts/api/values.yaml", 7, "discover"),
        Problem("cannot read the file: Permission denied", "deploy/secret.yaml", source="discover"),
    )
    change = Change(
        repository="https://github.com/example-org/payments", commit=COMMIT, branch=BRANCH, dirty=False,
        toplevel=TOPLEVEL, ticket_required=True,
        tickets=(Ticket("PAY-1234", (f"branch {BRANCH}", f"commit {COMMIT[:12]}")),
                 Ticket("PAY-1301", ("pull request title",))),
        ci={"provider": "github-actions", "server": "https://github.com", "repository": "example-org/payments",
            "repositoryUrl": "https://github.com/example-org/payments",
            "runUrl": "https://github.com/example-org/payments/actions/runs/8123456789/attempts/1",
            "workflow": "compliance", "job": "gate", "actor": "dev-one", "event": "pull_request",
            "ref": "refs/pull/77/merge", "sha": "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b",
            "pullRequest": {"number": 77, "title": "PAY-1301: rotate the signing keys",
                            "url": "https://github.com/example-org/payments/pull/77", "baseRef": "main",
                            "headRef": BRANCH}},
    )
    return ScanResult(
        root=ROOT, ruleset=ruleset, rules=rules, findings=findings, problems=problems,
        targets=(Source(".", Kind.REPO), Source(ci_yml, Kind.GITHUB_ACTIONS), Source(release, Kind.GITHUB_ACTIONS),
                 Source(manifest, Kind.KUBERNETES), Source(dockerfile, Kind.DOCKERFILE)),
        started="2026-03-02T09:15:00Z", finished="2026-03-02T09:15:42Z",
        versions={"checker": "0.0.0-golden", "checkov": "0.0.0-golden"},
        fail_on=ruleset.fail_on,
        decision=decide(findings, problems, ruleset.fail_on),  # as scan.run makes it, once
        notes=("2 path(s) left out by .gitignore or the ruleset's ignore: build/app.yaml, node_modules/x/action.yml",
               "waiver for ORG-DOCKER-001 (ruleset.yaml:42) expires on 2026-03-11, in 9 day(s)"),
        fixed=("ORG-GHA-001 .github/workflows/deploy.yml",),
        baseline_digest="5d41402abc4b2a76b9719d911017c592" * 2,
        change=change,
        scope=("payments",),
    )
