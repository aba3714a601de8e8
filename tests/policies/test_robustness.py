"""Checks never crash on odd input: every node of every example document is replaced, one at a time,
by values of the wrong shape (None, numbers, booleans, strings, empty and odd lists and maps)."""
from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checker.discover import discover
from checker.documents import Document, Instruction, YamlMap, YamlSeq, load_yaml
from checker.engines.python import load_policies, parse_dockerfile
from checker.policy import Context, Policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
ORGANISATION = {
    "approved_registries": ["registry.example.com"], "required_labels": ["app"],
    "required_tags": ["owner"], "allowed_regions": ["eu-west-2"],
}
ODD_YAML = ["null", "7", "true", "x", "[]", "{}", "[null, 3, [x]]", "{a: null, 1: [], b: {c: 2}}",
            "${{ github.event.issue.title }}"]
ODD_VALUES: list[Any] = [load_yaml(text)[0] for text in ODD_YAML]
POLICIES = sorted(load_policies().values(), key=lambda p: p.id)
REPO_POLICIES = [p for p in POLICIES if "repo" in [k.value for k in p.kinds]]
DOCUMENT_POLICIES = [p for p in POLICIES if p not in REPO_POLICIES]


def replacements(node: Any) -> Iterator[Any]:
    """Copies of `node` with one value (or one key's value) replaced by an odd one, depth first."""
    if isinstance(node, dict):
        for key in list(node):
            for odd in ODD_VALUES:
                clone = copy.deepcopy(node)
                clone[key] = copy.deepcopy(odd)
                yield clone
            for child in replacements(node[key]):
                clone = copy.copy(node)
                clone[key] = child
                yield clone
    elif isinstance(node, list):
        for i, item in enumerate(node):
            for odd in ODD_VALUES:
                clone = copy.deepcopy(node)
                clone[i] = copy.deepcopy(odd)
                yield clone
            for child in replacements(item):
                clone = copy.copy(node)
                clone[i] = child
                yield clone


def example_documents(policy: Policy) -> list[Document]:
    """The parsed documents of the policy's pass and fail examples, of the kinds it checks."""
    import hcl2

    docs = []
    for side in ("pass", "fail"):
        root = FIXTURES / policy.id / side
        for source in discover(root, [root]).sources:
            if source.kind.value not in [k.value for k in policy.kinds]:
                continue
            if source.kind.value == "terraform":
                docs.append(Document(source.path, "terraform", hcl2.loads(source.text), source.text))
            elif source.kind.value == "dockerfile":
                docs.append(Document(source.path, "dockerfile", parse_dockerfile(source.text), source.text))
            else:
                docs += [Document(source.path, source.kind.value, d, source.text, i)
                         for i, d in enumerate(source.documents)]
    return docs


def context(policy: Policy, documents: list[Document], root: str = ".") -> Context:
    def of_kind(kind: str) -> tuple[Document, ...]:
        return tuple(d for d in documents if d.kind == kind)

    return Context(organisation=ORGANISATION, params=dict(policy.params), files=(), documents=of_kind, root=root)


@pytest.mark.parametrize("policy", DOCUMENT_POLICIES, ids=lambda p: p.id)
def test_odd_shapes_never_crash(policy: Policy) -> None:
    docs = example_documents(policy)
    assert docs, f"{policy.id} has no example documents of its kinds"
    tried = 0
    for doc in docs:
        if doc.kind == "dockerfile":
            variants: list[Any] = [[], [Instruction("FROM", "", 1, 1)], [Instruction("FROM", "--platform=x", 1, 1)],
                                   [Instruction("FROM", "a AS", 1, 1)], [Instruction("FROM", "AS b", 1, 1)],
                                   [Instruction("from", "${X}", 1, 1)], [None], "x", None]
        else:
            variants = list(replacements(doc.data)) + ODD_VALUES
        for data in variants:
            odd = Document(doc.path, doc.kind, data, doc.text, doc.index)
            list(policy.run(odd, context(policy, [odd])))
            tried += 1
    assert tried > 5


@pytest.mark.parametrize("policy", REPO_POLICIES, ids=lambda p: p.id)
def test_repository_checks_survive_odd_files(policy: Policy, tmp_path: Path) -> None:
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "CODEOWNERS").write_bytes(b"\xff\xfe\x00binary")
    (tmp_path / "server.pem").write_bytes(b"\x00\x01\x02")
    (tmp_path / "dir.key").mkdir()
    (tmp_path / ".pre-commit-config.yaml").write_text("repos: [1, {hooks: null}, {hooks: [x, {id: null}]}]\n")
    files = (".github/CODEOWNERS", "server.pem", "dir.key", "missing.key", ".pre-commit-config.yaml", ".env.example")
    for data in (files, (), (None, 3, "id_rsa")):
        doc = Document(".", "repo", data)
        list(policy.run(doc, context(policy, [doc], str(tmp_path))))
    for text in ("{{ not yaml", "- a\n- b\n", "repos: null\n", ""):
        (tmp_path / ".pre-commit-config.yaml").write_text(text)
        doc = Document(".", "repo", files)
        list(policy.run(doc, context(policy, [doc], str(tmp_path))))


def test_odd_value_shapes_are_yaml_nodes() -> None:
    assert any(isinstance(v, YamlMap) for v in ODD_VALUES) and any(isinstance(v, YamlSeq) for v in ODD_VALUES)


# ORG-GHA-014 on hostile workflows: expressions nested past any parser's stack, job graphs, scripts and trigger
# lists large enough that work growing faster than the file would take minutes, and odd package.json files.

GHA014_CACHE = "actions/cache@5a3ec84eff668545956fd18022155c47e93e2684  # v4.2.3"
GHA014_NODE6 = "actions/setup-node@2028fbc5c25fe9cf00d9f06a71cc4710d4507903  # v6.0.0"


def gha014(text: str, root: str = ".") -> list[tuple[int, str]]:
    """(line, message) of each ORG-GHA-014 finding on a workflow at .github/workflows/w.yml under `root`."""
    policy = load_policies()["ORG-GHA-014"]
    doc = Document(".github/workflows/w.yml", "github-actions", load_yaml(text)[0], text)
    return [(v.line, v.message) for v in policy.run(doc, context(policy, [doc], root))]


def gha014_timed(text: str) -> tuple[list[int], float]:
    """The lines of the findings and the seconds the check took (the YAML load not counted)."""
    import time

    policy = load_policies()["ORG-GHA-014"]
    doc = Document(".github/workflows/w.yml", "github-actions", load_yaml(text)[0], text)
    started = time.perf_counter()
    lines = [v.line for v in policy.run(doc, context(policy, [doc]))]
    return lines, time.perf_counter() - started


@pytest.mark.parametrize("condition", [
    "${{ " + "(" * 200 + "true" + ")" * 200 + " }}",  # the parser recursed five frames a parenthesis
    "'" + "!" * 1000 + "true'",  # and one a `!`
    "${{ " + "startsWith(" * 100 + "github.ref" + ", 'x')" * 100 + " }}",
    "${{ " + " || ".join(["github.event_name == 'x'"] * 3000) + " || true }}",  # a left-deep tree 3,000 high
    "${{ " + " == ".join(["github.ref"] * 3000) + " || true }}",
    "${{ github.ref == 0x" + "f" * 3000 + " || true }}",  # too large for a float
])
def test_gha014_deep_expressions_neither_crash_nor_hide_the_step(condition: str) -> None:
    text = f"on: release\njobs:\n  rel:\n    if: {condition}\n    steps:\n      - uses: {GHA014_CACHE}\n"
    assert [line for line, _ in gha014(text)] == [6]


def test_gha014_unknown_operands_keep_what_is_known_of_their_truth() -> None:
    text = ("on: workflow_dispatch\njobs:\n  image:\n    steps:\n      - uses: docker/build-push-action@v6\n"
            "        with:\n          push: true\n          cache-from: ${{ inputs.cache || 'type=gha' }}\n"
            "  tools:\n    if: ${{ inputs.x && false }}\n    steps:\n      - uses: actions/cache@v4\n"
            "      - run: npm publish\n")
    message = ("job image publishes with docker/build-push-action (line 5), and docker/build-push-action may "
               "restore (cache-from is only known at run time): a poisoned cache entry goes into what it releases "
               "(leave type=gha out of cache-from in the runs that release)")
    assert gha014(text) == [(5, message)]  # not the job tools: `inputs.x && false` is false


@pytest.mark.parametrize(("name", "text", "lines"), [
    # 1,500 jobs each needing the one before, each taking, caching and uploading; the last publishes. Every job
    # then releases through the artifact chain (the graph was walked again for every job: 55 s at 400 jobs).
    ("needs chain", "on: push\njobs:\n" + "".join(
        f"  j{i}:\n" + (f"    needs: j{i - 1}\n" if i else "") + "    steps:\n"
        f"      - uses: actions/download-artifact@v4\n      - uses: {GHA014_CACHE}\n"
        "      - uses: actions/upload-artifact@v4\n"
        + ("      - run: npm publish\n" if i == 1499 else "") for i in range(1500)), [6 + 6 * i for i in range(1500)]),
    # 600 jobs, each needing the 30 before it: 17,000 edges.
    ("dense needs", "on: push\njobs:\n" + "".join(
        f"  j{i}:\n    needs: [{', '.join(f'j{k}' for k in range(max(0, i - 30), i))}]\n    steps: [{{run: make}}]\n"
        for i in range(600)), []),
    # One job of 3,000 cache steps before its publishing step (each step looked at every later one).
    ("steps", "on: [push, workflow_dispatch]\njobs:\n  a:\n    steps:\n" + "".join(
        f"      - uses: {GHA014_CACHE}\n        if: github.event_name != 'x{i}'\n" for i in range(3000))
        + "      - run: npm publish\n", [5 + 2 * i for i in range(3000)]),
    # 100 KB lines of words that start a publishing command (`mvn\b.*\sdeploy` retried from each `mvn`).
    *[(f"script {word.strip()}", (f"on: push\njobs:\n  a:\n    steps:\n      - uses: {GHA014_CACHE}\n"
                                  f"      - run: echo {word * (100_000 // len(word))}{end}\n"), lines)
      for word, end, lines in [("mvn ", "", []), ("./gradlew ", "", []), ("docker buildx build ", "", []),
                               ("mvn \\\n          ", "deploy", [5])]],
    # 3,000 events and 3,000 release branch patterns: one kind of run each would be evaluated for every step.
    ("events", "on: [" + ", ".join(f"e{i}" for i in range(3000)) + "]\njobs:\n  a:\n    steps:\n"
     + "".join(f"      - uses: {GHA014_CACHE}\n" for _ in range(300)) + "      - run: npm publish\n",
     [5 + i for i in range(300)]),
    ("branches", "on:\n  push:\n    branches: [" + ", ".join(f"release-{i}/*" for i in range(3000))
     + "]\njobs:\n  a:\n    steps:\n" + "".join(f"      - uses: {GHA014_CACHE}\n" for _ in range(300)),
     [7 + i for i in range(300)]),
])
def test_gha014_work_grows_with_the_file_not_faster(name: str, text: str, lines: list[int]) -> None:
    found, seconds = gha014_timed(text)
    same = found == lines  # compared apart: pytest's diff of two long lists would take minutes
    assert same, f"{name}: {len(found)} findings, from line {found[:1]} to {found[-1:]}"
    assert seconds < 2.0, f"{name}: {seconds:.1f} s for {len(text) // 1000} KB"


def test_gha014_reads_package_json_safely(tmp_path: Path) -> None:
    """setup-node's automatic cache depends on the repository's package.json: a checkout without one caches
    nothing, an odd one (a FIFO, a link, JSON nested past the parser) is not read and may cache."""
    import os

    text = f"on: release\njobs:\n  rel:\n    steps:\n      - uses: {GHA014_NODE6}\n      - run: npm publish\n"
    manifest = tmp_path / "package.json"
    may_restore = ("job rel runs on release events, and actions/setup-node may restore by default "
                   "(package-manager-cache not set), if package.json names npm as its manager")
    assert [m.split(":")[0] for _, m in gha014(text, str(tmp_path))] == [may_restore]  # not a checkout
    (tmp_path / ".git").mkdir()
    assert gha014(text, str(tmp_path)) == []  # a checkout without package.json
    for content, restores in [("{not json", False), ('{"packageManager": "yarn@4.5.0"}', False), ("[]", False),
                              ('{"devEngines": {"packageManager": [{"name": "npm"}]}}', True),
                              ("[" * 100_000 + "]" * 100_000, None)]:
        manifest.write_text(content)
        found = [m.split(":")[0] for _, m in gha014(text, str(tmp_path))]
        restoring = ("job rel runs on release events, and actions/setup-node restores by default "
                     "(package-manager-cache not set, and package.json names npm)")
        assert found == ([] if restores is False else [restoring if restores else may_restore]), content[:20]
    manifest.unlink()
    os.mkfifo(manifest)  # opening it would wait for a writer forever
    assert len(gha014(text, str(tmp_path))) == 1
    manifest.unlink()
    manifest.symlink_to("/dev/zero")
    assert len(gha014(text, str(tmp_path))) == 1


# ORG-GHA-001, 011, 012, 013, 016 and 017 on hostile workflows: many steps (the source was split, or a step
# list walked, once per step), long lines (regular expressions retried from every word), deep expressions and
# groups, and matrices that multiply.

def gha_timed(rule_id: str, text: str) -> tuple[list[int], float]:
    """The lines of one GitHub Actions check's findings and the seconds it took (the YAML load not counted)."""
    import time

    policy = load_policies()[rule_id]
    doc = Document(".github/workflows/w.yml", "github-actions", load_yaml(text)[0], text)
    started = time.perf_counter()
    lines = [v.line for v in policy.run(doc, context(policy, [doc]))]
    return lines, time.perf_counter() - started


GHA_JOB = "jobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
GHA_AXIS = ", ".join(map(str, range(2000)))


GHA_HOSTILE = [
    ("ORG-GHA-001", "15,000 tags", "on: push\n" + GHA_JOB + "".join(f"      - uses: o/a@v{i}\n" for i in range(15_000)),
     [6 + i for i in range(15_000)]),
    ("ORG-GHA-001", "15,000 local actions", "on: push\n" + GHA_JOB
     + "".join(f"      - uses: ./a{i}\n" for i in range(15_000)), []),
    ("ORG-GHA-011", "40,000 digits", "on: pull_request_target\njobs:\n  a:\n    runs-on: x\n    if: \"x"
     + "1" * 40_000 + " || github.actor_id == " + "1" * 40_000 + "\"\n    steps: [{run: x}]\n", [5]),
    ("ORG-GHA-011", "3,000 || terms", "on: pull_request_target\njobs:\n  a:\n    runs-on: x\n    if: \""
     + "github.event.number == 1 || " * 3000 + "github.actor == 'dependabot[bot]'\"\n    steps: [{run: x}]\n", [5]),
    ("ORG-GHA-011", "a 100 KB line of unclosed expressions", "on: pull_request_target\njobs:\n  a:\n    runs-on: x\n"
     "    if: \"" + "${{ " * 25_000 + "\"\n    steps: [{run: x}]\n", []),
    ("ORG-GHA-016", "a 100 KB image of unclosed expressions", "on: push\njobs:\n  a:\n    runs-on: x\n    container: \""
     + "${{ " * 25_000 + "\"\n    steps: [{run: x}]\n", [5]),  # not an expression: judged as the text it is
    ("ORG-GHA-017", "a 100 KB write of unclosed expressions", "on: push\n" + GHA_JOB + "      - run: echo \""
     + "${{ " * 25_000 + "\" >> $GITHUB_ENV\n", []),
    ("ORG-GHA-012", "15,000 steps", "on: push\n" + GHA_JOB + "".join(
        f"      - run: make {i}\n        env: {{A: x}}\n" for i in range(15_000)), []),
    ("ORG-GHA-013", "15,000 checkouts", "on: push\n" + GHA_JOB + "".join(
        "      - uses: actions/checkout@v4\n        with: {persist-credentials: false}\n" for _ in range(15_000)), []),
    ("ORG-GHA-016", "a 2,000 by 2,000 matrix", "on: push\njobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix:\n"
     + "".join(f"        {axis}: [{GHA_AXIS}]\n" for axis in "ab")
     + "    container: node:${{ matrix.a }}-${{ matrix.b }}-${{ matrix.a }}\n    steps: [{run: x}]\n", [9] * 64),
    ("ORG-GHA-017", "a 100 KB line of cmdlets", "on: push\n" + GHA_JOB + "      - shell: pwsh\n        run: echo "
     + "Out-File " * 12_000 + "\n", []),
    ("ORG-GHA-017", "20,000 writing steps", "on: pull_request_target\n" + GHA_JOB + "".join(
        f"      - run: echo \"N=$N{i}\" >> \"$GITHUB_ENV\"\n" for i in range(20_000)), [6 + i for i in range(20_000)]),
    ("ORG-GHA-017", "3,000 nested groups", "on: pull_request_target\n" + GHA_JOB + "      - run: |\n"
     + "          {\n" * 3000 + "          } >> \"$GITHUB_ENV\"\n" * 3000, []),
    ("ORG-GHA-017", "25,000 here-documents on a line", "on: pull_request_target\n" + GHA_JOB + "      - run: cat "
     + "<<a " * 25_000 + ">> $GITHUB_ENV\n", []),
]


@pytest.mark.parametrize(("rule_id", "name", "text", "lines"), GHA_HOSTILE, ids=[f"{c[0]} {c[1]}" for c in GHA_HOSTILE])
def test_gha_checks_work_grows_with_the_file_not_faster(rule_id: str, name: str, text: str, lines: list[int]) -> None:
    found, seconds = gha_timed(rule_id, text)
    assert found == lines, f"{rule_id} {name}"
    assert seconds < 2.0, f"{rule_id} {name}: {seconds:.1f} s for {len(text) // 1000} KB"


@pytest.mark.parametrize(("condition", "lines"), [
    ("(" * 200 + "github.actor == 'a[bot]'" + ")" * 200, []),  # past the parser's depth: not read, no crash
    ("!" * 1000 + "(github.actor == 'a[bot]')", []),
    ("(" * 20 + "github.actor == 'a[bot]'" + ")" * 20, [5]),
    ("!!" * 10 + "(github.actor == 'a[bot]')", [5]),  # an even number of `!` lets the bot in
    ("!" * 21 + "(github.actor == 'a[bot]')", []),
])
def test_gha011_deep_conditions_neither_crash_nor_lose_their_sense(condition: str, lines: list[int]) -> None:
    text = f"on: pull_request_target\njobs:\n  a:\n    runs-on: x\n    if: \"{condition}\"\n    steps: [{{run: x}}]\n"
    assert gha_timed("ORG-GHA-011", text)[0] == lines


def test_gha001_reads_a_docker_digest_whole() -> None:
    """`@sha256:` alone is no digest: a docker action is pinned only by 64 hex digits after it."""
    digest = "0" * 64
    text = "on: push\n" + GHA_JOB + "".join(f"      - uses: {uses}\n" for uses in (
        "docker://alpine@sha256:latest", '"docker://alpine:3.20@sha256:"', f"docker://alpine@sha256:{digest[:63]}",
        f"docker://alpine:3.20@sha256:{digest}", f"docker://ghcr.io/o/i@sha256:{digest}"))
    assert gha_timed("ORG-GHA-001", text)[0] == [6, 7, 8]


def test_gha014_a_version_of_thousands_of_digits_is_no_version() -> None:
    """int() refuses strings of more than 4,300 digits: such a tag or comment reads as no version (which
    caches), not as a crash."""
    digits = "9" * 5000
    text = (f"on: release\njobs:\n  rel:\n    steps:\n      - uses: actions/setup-go@v{digits}\n"
            f"      - uses: actions/setup-go@{'a' * 40}  # v{digits}\n")
    assert [line for line, _ in gha014(text)] == [5, 6]


# ORG-GHA-003, ORG-GHA-008, ORG-GITLAB-005 and ORG-AZP-004 on hostile files: long lines of unclosed
# expressions and shell quoting (a regular expression retried from each `${{`), thousands of steps and
# aliases (the source split, or a sequence walked, once per step), expressions nested past a parser's stack,
# and sources that read each other (traced again for every reader), `extends:` and variable chains.


INJECTION_PATHS = {"ORG-GHA": ".github/workflows/w.yml", "ORG-GITLAB": ".gitlab-ci.yml",
                   "ORG-AZP": "azure-pipelines.yml"}


def timed(rule_id: str, text: str) -> tuple[list[int], float]:
    """The lines of a check's findings on a file of its kind and the seconds it took (the YAML load not counted)."""
    import time

    policy = load_policies()[rule_id]
    doc = Document(INJECTION_PATHS[rule_id.rsplit("-", 1)[0]], policy.kinds[0].value, load_yaml(text)[0], text)
    started = time.perf_counter()
    lines = [v.line for v in policy.run(doc, context(policy, [doc]))]
    return lines, time.perf_counter() - started


INJECTION_JOB = "jobs:\n  a:\n    runs-on: x\n    steps:\n"
RUN = INJECTION_JOB + "      - run: echo "  # a step whose script goes on from here


def expr(inside: str) -> str:
    return "${{ " + inside + " }}"


TITLE = expr("github.event.issue.title")


def outputs_reading(width: int, depth: int, source: str) -> str:
    """Steps s0..s<depth> each writing output x from `width` reads of the next one's, the last from `source`."""
    return "".join(f"      - id: s{i}\n        run: echo \"x=" + expr(f"steps.s{i + 1}.outputs.x") * width
                   + "\" >> $GITHUB_OUTPUT\n" for i in range(depth)) + (
        f"      - id: s{depth}\n        run: echo \"x={source}\" >> $GITHUB_OUTPUT\n")


INJECTION_HOSTILE = [
    ("ORG-GHA-003", "a 100 KB line of unclosed expressions", RUN + "${{ " * 25_000 + "\n", []),
    ("ORG-GHA-003", "a 100 KB line of unclosed sources", RUN + "${{ github.event.issue.title " * 3500 + "\n", []),
    ("ORG-GHA-003", "3,000 sources on a line", RUN + f"{TITLE} " * 3000 + "\n", [5]),
    ("ORG-GHA-003", "10,000 steps", INJECTION_JOB + "".join(f"      - run: echo {TITLE}\n" for _ in range(10_000)),
     [5 + i for i in range(10_000)]),
    ("ORG-GHA-003", "a script of 10,000 lines", INJECTION_JOB + "      - run: |\n"
     + "".join(f"          echo {TITLE} {i}\n" for i in range(10_000)), [6 + i for i in range(10_000)]),
    ("ORG-GHA-003", "a step used through 10,000 aliases", INJECTION_JOB + f"      - &s {{run: 'echo {TITLE}'}}\n"
     + "      - *s\n" * 10_000, [5 + i for i in range(10_001)]),
    ("ORG-GHA-003", "3,000 jobs merged in", "x: &more\n" + "".join(
        f"  m{i}: {{runs-on: x, steps: [{{run: 'echo {TITLE}'}}]}}\n" for i in range(3000)) + "jobs:\n" + "".join(
        f"  a{i}: {{runs-on: x, steps: [{{run: echo}}]}}\n" for i in range(3000)) + "  <<: *more\n", [6003]),
    ("ORG-GHA-003", "a 20 KB expression used through 2,000 aliases, each step with its own env",
     INJECTION_JOB + "      - run: &r '" + expr(" || ".join(f"env.a{i}" for i in range(2000))) + "'\n"
     + "      - {run: *r, env: {X: y}}\n" * 2000, []),
    # GitHub refuses expressions nested deeper than 50 (parentheses, calls, keys, `!`); those, and paths of
    # more than 50 fields, are read as text, for the sources they name.
    *[("ORG-GHA-003", name, RUN + expr(inside) + "\n", lines) for name, inside, lines in [
        ("200 parentheses", "(" * 200 + "github.event.issue.title" + ")" * 200, [5]),
        ("50,000 parentheses", "(" * 50_000 + "github.event.issue.title" + ")" * 50_000, [5]),
        ("45 parentheses around a test", "(" * 45 + "contains(github.event.issue.title, 'x')" + ")" * 45, []),
        ("60 parentheses around a test", "(" * 60 + "contains(github.event.issue.title, 'x')" + ")" * 60, [5]),
        ("10,000 calls", "format(" * 10_000 + "github.event.issue.title" + ")" * 10_000, [5]),
        ("10,000 computed keys", "github.event[" * 10_000 + "0" + "]" * 10_000, []),
        ("a 10,000-field path", "github.event.issue.title" + ".x" * 10_000, [5]),
        ("a 100-field path", "github.event" + ".x" * 100, []),
        ("1,400 operands of ||", "github.sha || " * 1400 + "github.event.issue.title", [5]),
        ("1,400 operands of || and a test", "github.sha || " * 1400 + "contains(github.event.issue.title, 'x')", []),
        ("100,000 negations", "!" * 100_000 + "github.sha", []),
    ]],
    ("ORG-GHA-003", "outputs that read ten others, eight deep", INJECTION_JOB + outputs_reading(10, 7, TITLE)
     + "      - run: echo ${{ steps.s0.outputs.x }}\n", [6 + 2 * i for i in range(8)] + [21]),
    ("ORG-GHA-003", "outputs that read ten others, twelve deep", INJECTION_JOB
     + outputs_reading(10, 12, expr("github.sha")) + "      - run: echo ${{ steps.s0.outputs.x }}\n", []),
    ("ORG-GHA-003", "job outputs that read ten others", "jobs:\n" + "".join(
        f"  j{i}:\n    runs-on: x\n    needs: [j{i + 1}]\n    outputs:\n      x: "
        + expr(f"needs.j{i + 1}.outputs.x") * 10 + "\n    steps:\n      - run: echo "
        + expr(f"needs.j{i + 1}.outputs.x") + "\n" for i in range(12)), []),
    ("ORG-GHA-003", "5,000 matrix entries read by 2,000 steps", "jobs:\n  a:\n    runs-on: x\n    strategy:\n"
     "      matrix:\n        include:\n"
     + "".join(f"          - {{x: '{expr('matrix.x')}', y: {i}}}\n" for i in range(5000))
     + "    steps:\n" + "      - run: echo ${{ matrix.x }}\n" * 2000, []),
    ("ORG-GHA-003", "5,000 unclosed output blocks", INJECTION_JOB + "      - id: a\n        run: |\n" + "".join(
        f"          echo \"x<<EOF{i}\" >> $GITHUB_OUTPUT\n" for i in range(5000))
     + "      - run: echo ${{ steps.a.outputs.x }}\n", []),
    ("ORG-GHA-008", "10,000 printing steps", INJECTION_JOB + "      - run: echo \"${{ secrets.A }}\"\n" * 10_000,
     [5 + i for i in range(10_000)]),
    ("ORG-GHA-008", "a 100 KB line of unclosed secrets", RUN + "${{ secrets " * 8000 + "\n", []),
    ("ORG-GHA-008", "5,000 secret variables, 2,000 printing steps", "env:\n" + "".join(
        f"  A{i}: ${{{{ secrets.A }}}}\n" for i in range(5000)) + INJECTION_JOB + "      - run: echo $A4999\n" * 2000,
     [5006 + i for i in range(2000)]),
    ("ORG-GHA-008", "a script used through 10,000 aliases", INJECTION_JOB + "      - run: &r |\n"
     + "".join(f"          make {i}\n" for i in range(5000)) + "          echo \"${{ secrets.A }}\"\n"
     + "      - run: *r\n" * 10_000,
     [5006] + [5007 + i for i in range(10_000)]),
    ("ORG-GITLAB-005", "a 100 KB line of quotes, backslashes and here-document markers",
     "job:\n  script:\n    - echo " + "'\"\\\\<<EOF \"'" * 8000 + " eval $CI_COMMIT_TITLE\n", []),
    ("ORG-GITLAB-005", "a 100 KB line of `su` after a source", "job:\n  script:\n    - echo $CI_COMMIT_TITLE "
     + "su " * 33_000 + "\n", []),
    ("ORG-GITLAB-005", "a 100 KB line of `pwsh` after a source", "job:\n  script:\n    - echo $CI_COMMIT_TITLE "
     + "pwsh " * 20_000 + "\n", []),
    ("ORG-GITLAB-005", "`su` and its -c 60 KB apart", "job:\n  script:\n    - su " + "x " * 30_000
     + "-c \"echo $CI_COMMIT_TITLE\"\n", [3]),
    ("ORG-GITLAB-005", "10,000 here-document lines read by a shell named 50 KB before",
     "job:\n  script:\n    - |\n      " + "x " * 25_000 + "sh <<EOF\n"
     + "".join(f"      echo $CI_COMMIT_TITLE {i}\n" for i in range(10_000))
     + "      EOF\n", [5 + i for i in range(10_000)]),
    ("ORG-GITLAB-005", "10,000 here-documents on a line", "job:\n  script:\n    - |\n      sh " + "<<E " * 10_000
     + "\n      $CI_COMMIT_TITLE\n", [5]),
    ("ORG-GITLAB-005", "a 100 KB line of unclosed inputs", "job:\n  script:\n    - echo "
     + "$[[ inputs.a | x " * 6000 + "\n", []),
    ("ORG-GITLAB-005", "10,000 script items", "job:\n  script:\n" + "".join(
        f"    - eval \"echo $CI_COMMIT_TITLE {i}\"\n" for i in range(10_000)), [3 + i for i in range(10_000)]),
    ("ORG-GITLAB-005", "a chain of 3,000 variables", "variables:\n" + "".join(
        f"  V{i}: $V{i + 1}\n" for i in range(3000)) + "  V3000: $CI_COMMIT_TITLE\njob:\n  script: [eval \"$V0\"]\n",
     [3004]),
    ("ORG-GITLAB-005", "2,000 jobs over 2,000 variables", "variables:\n"
     + "".join(f"  V{i}: x{i}\n" for i in range(2000))
     + "".join(f"j{i}:\n  variables: {{W: $V{i}}}\n  script: [eval \"$W\"]\n" for i in range(2000)), []),
    ("ORG-GITLAB-005", "templates that extend the next eight times, nine deep", "".join(
        f".h{i}:\n  extends: [{', '.join([f'.h{i + 1}'] * 8)}]\n  variables: {{A{i}: x}}\n" for i in range(9))
     + ".h9: {variables: {B: $CI_COMMIT_TITLE}}\nj:\n  extends: .h0\n  script: [eval \"$B\"]\n", [31]),
    ("ORG-GITLAB-005", "a script merged into 2,000 jobs", ".s: &s\n  script:\n    - |\n" + "".join(
        f"      M=\"$CI_COMMIT_TITLE\" && echo \"$M {i}\" | tee f{i}\n" for i in range(150))
     + "      eval \"$M\"\n" + "".join(f"j{i}:\n  <<: *s\n" for i in range(2000)), [154] * 2001),  # .s and each job
    ("ORG-GITLAB-006", "templates that extend the next eight times, ten deep", "".join(
        f".h{i}:\n  extends: [{', '.join([f'.h{i + 1}'] * 8)}]\n" for i in range(10))
     + ".h10: {environment: production}\ndeploy:\n  extends: .h0\n  script: [kubectl apply -f prod]\n", []),
    ("ORG-AZP-004", "10,000 steps", "steps:\n" + "".join(
        f"- script: echo $(Build.SourceBranch) {i}\n" for i in range(10_000)), [2 + i for i in range(10_000)]),
    ("ORG-AZP-004", "a 100 KB line of unclosed templates", "steps:\n- script: echo " + "${{ " * 25_000 + "\n", []),
    ("ORG-AZP-004", "a chain of 3,000 variables", "variables:\n"
     + "".join(f"  v{i}: $(v{i + 1})\n" for i in range(3000))
     + "  v3000: $(Build.SourceBranch)\nsteps:\n- script: echo $(v0)\n", [3004]),
    ("ORG-AZP-004", "a script used through 10,000 aliases", "steps:\n- &s {script: 'echo $(Build.SourceBranch)'}\n"
     + "- *s\n" * 10_000, [2] * 10_001),
]


@pytest.mark.parametrize(("rule_id", "name", "text", "lines"), INJECTION_HOSTILE,
                         ids=[f"{c[0]} {c[1]}" for c in INJECTION_HOSTILE])
def test_injection_checks_work_grows_with_the_file_not_faster(rule_id: str, name: str, text: str,
                                                              lines: list[int]) -> None:
    found, seconds = timed(rule_id, text)
    same = found == lines  # compared apart: pytest's diff of two long lists would take minutes
    assert same, f"{name}: {len(found)} findings, from line {found[:1]} to {found[-1:]}"
    assert seconds < 2.0, f"{rule_id} {name}: {seconds:.1f} s for {len(text) // 1000} KB"


# Documents that reach every path of the four checks (aliases, merges, `parallel:`, env, matrix, step and job
# outputs, inputs, docker args; `extends:`, `rules:` variables, here-documents; variable lists and templates),
# with keys that are not strings, for the odd-shape walk below.
GHA_RICH = """on:
  workflow_dispatch: {inputs: {i: {type: string}}}
  workflow_call: {inputs: {j: {type: string}}}
env: {A: "${{ github.event.issue.title }}", 1: x, null: y, true: "${{ secrets.T }}"}
x-step: &step {id: s, run: "echo \\"o=${{ env.A }}\\" >> $GITHUB_OUTPUT"}
x-jobs: &more
  c: {runs-on: x, steps: [{run: "echo ${{ github.head_ref }}"}]}
jobs:
  a:
    runs-on: x
    outputs: {o: "${{ steps.s.outputs.o }}", 2: z}
    strategy: {matrix: {m: ["${{ inputs.i }}"], include: [{m: x, 3: y}], exclude: [{m: x}]}}
    env: {B: "${{ matrix.m }}", T: "${{ secrets.T }}"}
    steps:
      - *step
      - parallel:
          - {run: "echo ${{ env.B }}"}
          - {id: p, run: "echo \\"q<<EOF\\" >> $GITHUB_OUTPUT\\necho ${{ toJSON(env) }}\\nEOF"}
      - {uses: actions/github-script@v7, with: {script: "${{ toJSON(github.event) }}"}}
      - {uses: docker://alpine, with: {entrypoint: sh, args: "-c ${{ inputs.j }}"}}
      - {uses: o/a@v1, with: {t: "${{ secrets.T }}"}, env: {U: "${{ secrets.T }}"}}
      - run: |
          echo "$T" | base64
          echo "${{ secrets.T }}" > f
          echo ${{ github.event.inputs.i }} ${{ steps.p.outputs.q }}
  b:
    needs: [a]
    steps:
      - run: "echo ${{ needs.a.outputs.o }}"
      - {shell: pwsh, run: "echo ${{ github.event['pull_request'].title }}"}
  <<: *more
"""
GITLAB_RICH = """variables:
  TITLE: $CI_MERGE_REQUEST_TITLE
  RAW: {value: $CI_COMMIT_MESSAGE, expand: false}
  1: x
default:
  before_script: [eval "$TITLE"]
.base:
  variables: {NOTE: "x $TITLE", 2: y}
  rules: [{variables: {R: $CI_COMMIT_TAG}}]
  script:
    - sh -c "echo $NOTE"
job:
  extends: [.base, .base]
  script:
    - - eval "$R"
      - echo "$RAW" | sh
    - |
      MSG="$CI_COMMIT_TITLE"
      ssh host <<EOF
      echo $MSG
      EOF
      su root -c "echo $CI_COMMIT_BRANCH"
      pwsh -NoProfile -Command "echo $CI_COMMIT_TAG"
    - ./x $[[ inputs.a | expand_vars ]]
  after_script: echo %CI_COMMIT_TAG%
"""
AZP_RICH = """variables:
  - name: note
    value: $(Build.SourceVersionMessage)
  - {name: 4, value: x}
stages:
  - stage: s
    variables: {branch: "$[ variables['Build.SourceBranch'] ]", 5: y}
    jobs:
      - job: j
        steps:
          - script: echo $(note) ${{ variables['Build.SourceBranch'] }}
          - bash: echo $(branch)
          - task: Bash@3
            inputs: {targetType: inline, script: "echo $(Build.SourceBranchName)", 6: z}
          - ${{ if eq(1, 1) }}:
            - script: echo %BUILD_SOURCEBRANCH%
"""


@pytest.mark.parametrize(("rule_id", "text", "lines"), [
    ("ORG-GHA-003", GHA_RICH, [31, 15, 17, 18, 19, 20, 25, 25, 29, 30]),  # job c at the `<<:` that merges it
    ("ORG-GHA-008", GHA_RICH, [21, 21, 23]),
    ("ORG-GITLAB-005", GITLAB_RICH, [6, 11, 15, 20, 22, 23, 24, 25]),
    ("ORG-AZP-004", AZP_RICH, [11, 11, 12, 14, 16]),
], ids=["ORG-GHA-003", "ORG-GHA-008", "ORG-GITLAB-005", "ORG-AZP-004"])
def test_injection_checks_survive_odd_shapes_anywhere(rule_id: str, text: str, lines: list[int]) -> None:
    """Every node of a document that takes each check down all its paths (its findings show it does) is
    replaced, one at a time, by values of the wrong shape."""
    policy = load_policies()[rule_id]
    path, kind, data = INJECTION_PATHS[rule_id.rsplit("-", 1)[0]], policy.kinds[0].value, load_yaml(text)[0]
    doc = Document(path, kind, data, text)
    assert [v.line for v in policy.run(doc, context(policy, [doc]))] == lines
    tried = 0
    for variant in replacements(data):
        odd = Document(path, kind, variant, text)
        list(policy.run(odd, context(policy, [odd])))
        tried += 1
    assert tried > 250
