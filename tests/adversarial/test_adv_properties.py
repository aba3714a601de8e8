"""Properties over generated input (hypothesis, derandomized so CI is repeatable).

- Any bytes as a Kubernetes manifest, a GitHub workflow or a Terraform file: exit 0, 1 or 3,
  never a traceback (in-process, our own checks), and the same with Checkov's runners over a
  batch of such files (a real subprocess, measured like every other case).
- Any bytes as a ruleset: `ruleset validate` and `scan` give 0 or 2.
- Any text in a finding (a folder name, a file name, a resource name, an image): the SARIF
  validates against the OASIS schema and its URIs are percent-encoded.
"""
from __future__ import annotations

import contextlib
import json
import re
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from click.testing import Result
from hostile import (
    ORG_ONLY,
    WITH_CHECKOV,
    put,
    rules_file,
    run_cli,
    sarif_uris,
    schema_problems,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit import Cli

PROPERTY = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
EXAMPLE_SECONDS = 30  # one in-process example; past it the property fails as a hang

K8S_TOKENS = ["apiVersion: apps/v1\n", "kind: Deployment\n", "metadata:\n", "  name: web\n", "spec:\n",
              "  template:\n", "    spec:\n", "      containers:\n", "        - name: web\n",
              "          image: docker.io/nginx\n", "&a ", "*a", "&b [*a, *a, *a]\n", "<<: *a\n", "[", "]", "{", "}",
              ": ", "- ", "\n", "  ", "\t", "? ", "'", '"', "#", "---\n", "...\n", "%YAML 1.1\n", "%TAG ! !x\n",
              "!!python/object/apply:os.system ['true']", "!Ref x", "!!binary aGk=", "!!set {a}", "!!omap [a: 1]",
              "2025-02-30", "2025-01-01 25:00:00", "1e9999", ".nan", "0x_", "~", "null: x\n", "\ufeff", "\x00",
              "\x1b[2K", "\u2028", "\r\n", "\\u", "|\n", ">-\n", "a: |\n  x\n", "\u202e"]
GHA_TOKENS = ["on: push\n", "on: [pull_request_target]\n", "jobs:\n", "  build:\n", "    runs-on: ubuntu-latest\n",
              "    steps:\n", "      - uses: actions/checkout@v4\n", "      - uses: evil/x@main\n",
              "      - run: echo ${{ github.event.issue.title }}\n", "    permissions: write-all\n",
              "    environment: production\n", "    with:\n", "      ref: ${{ github.event.pull_request.head.sha }}\n",
              *K8S_TOKENS[10:]]
TF_TOKENS = ['resource "aws_s3_bucket" "b" {\n', 'provider "aws" {\n', "  region = \"us-east-1\"\n", "}\n", "{", "}",
             "[", "]", "(", ")", "=", "\"", "${", "%{", "<<EOF\n", "EOF\n", "locals {\n", "  x = ", "var.x", "1e9999",
             "/*", "*/", "#", "//", "\n", "dynamic \"x\" {\n", "for_each = ", "content {\n", "\x00", "\ufeff",
             "module \"m\" {\n  source = \"../../outside\"\n", "tags = {owner = \"x\"}\n"]


def _tokens(vocabulary: list[str]) -> st.SearchStrategy[bytes]:
    """Bytes mixing raw binary with sequences of the format's own tokens (which reach deeper parser paths)."""
    spliced = st.lists(st.one_of(st.sampled_from(vocabulary), st.text(max_size=8)), max_size=60).map(
        lambda parts: "".join(parts).encode("utf-8", "surrogatepass"))
    return st.one_of(st.binary(max_size=2048), spliced,
                     st.tuples(spliced, st.binary(max_size=64)).map(lambda pair: pair[0] + pair[1]))


@contextlib.contextmanager
def _bounded(seconds: int) -> Iterator[None]:
    """Fail an in-process example that runs past `seconds` (a hang) instead of blocking the suite."""
    def _expired(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"an in-process scan ran past {seconds}s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _invoke(cwd: Path, *args: str) -> Result:
    """`checker ARGS` in-process (CliRunner), bounded in time, with no traceback on either stream."""
    with _bounded(EXAMPLE_SECONDS):
        result = Cli()(*args, cwd=cwd)
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def _scan_bytes(rel: str, data: bytes) -> Result:
    """Scan a fresh repository holding only `data` at `rel`, with our own checks."""
    with tempfile.TemporaryDirectory() as folder:
        top = Path(folder)
        repo = top / "repo"
        put(repo, rel, data)
        return _invoke(repo, "scan", ".", "-r", str(rules_file(top, ORG_ONLY)))


@PROPERTY
@given(_tokens(K8S_TOKENS))
def test_any_bytes_as_a_kubernetes_manifest(data):
    result = _scan_bytes("k8s/web.yaml", data)
    assert result.exit_code in (0, 1, 3), result.output


@PROPERTY
@given(_tokens(GHA_TOKENS))
def test_any_bytes_as_a_github_workflow(data):
    result = _scan_bytes(".github/workflows/ci.yml", data)
    assert result.exit_code in (0, 1, 3), result.output


@PROPERTY
@given(_tokens(TF_TOKENS))
def test_any_bytes_as_a_terraform_file(data):
    result = _scan_bytes("main.tf", data)
    assert result.exit_code in (0, 1, 3), result.output


@settings(max_examples=4, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(st.sampled_from(["k8s/m{}.yaml", ".github/workflows/w{}.yml", "t{}.tf", "Dockerfile.{}"]),
                          st.one_of(_tokens(K8S_TOKENS), _tokens(GHA_TOKENS), _tokens(TF_TOKENS))),
                min_size=1, max_size=8))
def test_any_bytes_through_checkovs_runners(files):
    """A batch of generated files per scan, through every Checkov runner they reach, as a subprocess."""
    with tempfile.TemporaryDirectory() as folder:
        top = Path(folder)
        repo = top / "repo"
        for i, (pattern, data) in enumerate(files):
            put(repo, pattern.format(i), data)
        sarif = top / "out.sarif"
        run = run_cli("scan", ".", "-r", rules_file(top, WITH_CHECKOV), "--sarif-output", sarif, cwd=repo, timeout=65)
        run.expect({0, 1, 3}, within=60, sarif=sarif)


# --------------------------------------------------------------------------------------------
# Rulesets
# --------------------------------------------------------------------------------------------
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.text(max_size=12),
                     st.sampled_from(["high", "never", "critical", "ORG-*", "*", "CKV_K8S_16", "2025-02-30",
                                      "2099-01-01", "org-baseline", "../x", "a@example.com"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                       max_leaves=12)
_RULE_GLOBS = st.lists(st.sampled_from(["ORG-K8S-001", "ORG-*", "CKV_K8S_16", "CKV_*", "*", "NOPE-1", ""]), max_size=3)
_SEVERITY = st.sampled_from(["critical", "high", "medium", "low", "info"])
_FAIL_ON = st.sampled_from(["critical", "high", "medium", "low", "info", "never"])
_EMAILS = st.sampled_from(["a@security.example.com", "*@security.example.com", "eve@example.com", "", "*"])


def _mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually a value of the right shape (to reach the deeper checks: locks, limits, waivers), sometimes anything."""
    return st.one_of(valid, valid, valid, _VALUES)


_SECTIONS = {
    "checks": st.fixed_dictionaries({}, optional={
        "include": _mostly(_RULE_GLOBS), "exclude": _mostly(_RULE_GLOBS),
        "severity": _mostly(st.dictionaries(st.sampled_from(["ORG-K8S-001", "CKV_K8S_16", "X"]), _SEVERITY,
                                            max_size=2)),
        "params": _VALUES}),
    "gate": st.fixed_dictionaries({}, optional={"fail_on": _mostly(_FAIL_ON), "allow_inline": _mostly(st.booleans()),
                                                "forbid_inline": _mostly(_RULE_GLOBS)}),
    "locks": st.fixed_dictionaries({}, optional={
        "fail_on": _mostly(_SEVERITY), "rules": _mostly(_RULE_GLOBS), "allow_inline": _mostly(st.booleans()),
        "approvers": _mostly(st.lists(_EMAILS, max_size=2)), "repo_policies": _mostly(st.booleans()),
        "ignore": _mostly(st.booleans())}),
    "limits": st.fixed_dictionaries({}, optional={
        "max_file_bytes": _mostly(st.integers(0, 10**9)), "max_yaml_nodes": _mostly(st.integers(0, 10**7)),
        "max_yaml_depth": _mostly(st.integers(0, 1000)), "max_yaml_documents": _mostly(st.integers(0, 10**5))}),
    "waivers": st.lists(st.fixed_dictionaries({}, optional={
        "rule": _mostly(st.sampled_from(["ORG-K8S-001", "CKV_K8S_16", "NOPE"])), "paths": _mostly(st.lists(
            st.sampled_from(["**", "k8s/*.yaml", "../x", "/etc/passwd", "["]), max_size=2)),
        "reason": _mostly(st.text(max_size=20)), "approved_by": _mostly(_EMAILS),
        "expires": _mostly(st.one_of(st.dates(), st.sampled_from(["2025-02-30", "2099-01-01", "tomorrow"]))),
        "ticket": _VALUES}), max_size=3),
    "organisation": _mostly(st.dictionaries(st.sampled_from(["approved_registries", "required_labels", "x"]),
                                            st.lists(st.text(max_size=10), max_size=2), max_size=2)),
    "controls": _VALUES, "ignore": _mostly(st.lists(st.sampled_from(["**", "k8s/", "!x", "[", "/"]), max_size=2)),
    "extends": st.lists(st.sampled_from(["org-baseline", "nope", "./rules.yaml", "../x.yaml"]), max_size=2),
}
_METADATA = _mostly(st.fixed_dictionaries({"name": st.sampled_from(["t", "x-1"])},
                                          optional={"version": _mostly(st.just("1"))}))
_RULESET_DOCS = st.fixed_dictionaries({"apiVersion": st.just("checker/v1"), "kind": st.just("Ruleset"),
                                       "metadata": _METADATA}, optional=_SECTIONS).map(
    lambda doc: yaml.safe_dump(doc, allow_unicode=True).encode())
_RULESETS = st.one_of(_RULESET_DOCS, st.binary(max_size=1024),
                      st.tuples(_RULESET_DOCS, st.binary(max_size=32)).map(lambda pair: pair[0] + pair[1]))


@PROPERTY
@given(_RULESETS)
def test_any_bytes_as_a_ruleset(data):
    with tempfile.TemporaryDirectory() as folder:
        top = Path(folder)
        rules = put(top, "rules.yaml", data)
        (top / "empty").mkdir()
        validated = _invoke(top, "ruleset", "validate", str(rules))
        assert validated.exit_code in (0, 2), validated.output
        scanned = _invoke(top / "empty", "scan", ".", "-r", str(rules), "--fail-on", "never")
        assert scanned.exit_code in (0, 2), scanned.output


# --------------------------------------------------------------------------------------------
# Any text in a finding gives valid SARIF
# --------------------------------------------------------------------------------------------
_ANY_TEXT = st.text(st.characters(blacklist_categories=()), min_size=1, max_size=40)  # lone surrogates too
_NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00")
_NAMES = st.text(_NAME_CHARS, min_size=1, max_size=40).filter(
    lambda name: len(name.encode()) < 200 and name not in (".", "..", ".git", ".hg", ".svn", ".terraform",
                                                         "node_modules", "__pycache__", ".venv"))
URI_REFERENCE = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*$")


@PROPERTY
@given(folder_name=_NAMES, file_name=_NAMES, resource=_ANY_TEXT, image=_ANY_TEXT)
def test_any_text_in_a_finding_gives_valid_sarif(folder_name, file_name, resource, image):
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": resource},
           "spec": {"template": {"spec": {"containers": [{"name": "c", "image": f"docker.io/{image}"}]}}}}
    manifest = json.dumps(doc, ensure_ascii=True)  # JSON is YAML; lone surrogates travel as \ud800 escapes
    with tempfile.TemporaryDirectory() as folder:
        top = Path(folder)
        repo = top / "repo"
        put(repo, f"{folder_name}/web.yaml", manifest)
        put(repo, f"k8s/x{file_name}.yaml", manifest)
        sarif = top / "out.sarif"
        result = _invoke(repo, "scan", ".", "-r", str(rules_file(top, ORG_ONLY)), "--sarif-output", str(sarif))
        assert result.exit_code in (1, 3), result.output
        assert schema_problems(json.loads(sarif.read_text(encoding="utf-8"))) == []
        for uri in sarif_uris(sarif):
            assert URI_REFERENCE.match(uri), f"{uri!r} is not a percent-encoded URI reference"
