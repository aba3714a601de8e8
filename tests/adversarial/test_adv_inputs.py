"""C. Every input fails closed, in bounded time and memory.

Files that are not regular files, YAML that explodes (aliases, merge keys) or nests without
end, impossible dates, huge files, files of many documents, odd encodings and binary garbage:
each is checked or named as a problem (exit 3), never a hang, a traceback, a silent pass or a
worker the machine has to kill. In a ruleset the same inputs are configuration errors (exit 2).
A malformed or unknown CHECKER_* variable is exit 2 through both entry points.
"""
from __future__ import annotations

import codecs
import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path

import pytest
from hostile import (
    BAD,
    BAD_LINE,
    CLEAN,
    ORG_ONLY,
    WITH_CHECKOV,
    Run,
    alias_bomb,
    deep_block,
    deep_flow,
    deep_json,
    make_deep_folders,
    mapping_bomb,
    put,
    remove_tree,
    rules_file,
    ruleset,
    run_cli,
    seeded_garbage,
)

WITHIN = 60.0  # a hostile file may cost its own parse, never minutes
K8S_HEAD = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n"


def _scan(tmp_path: Path, repo: Path, rules: Sequence[str] = WITH_CHECKOV,
          timeout: float = WITHIN + 5) -> tuple[Run, Path]:
    """Scan `repo` with a ruleset of `rules`, writing SARIF."""
    sarif = tmp_path / "out.sarif"
    run = run_cli("scan", ".", "-r", rules_file(tmp_path, rules), "--sarif-output", sarif, cwd=repo, timeout=timeout)
    return run, sarif


# --------------------------------------------------------------------------------------------
# Not regular files
# --------------------------------------------------------------------------------------------
FIFOS = [("manifest", "k8s/x.yaml", WITH_CHECKOV), ("manifest-our-checks-only", "k8s/x.yaml", ORG_ONLY),
         ("dockerfile", "Dockerfile", WITH_CHECKOV), ("terraform", "main.tf", WITH_CHECKOV),
         ("workflow", ".github/workflows/ci.yml", WITH_CHECKOV), ("text-file", "notes.txt", WITH_CHECKOV)]


@pytest.mark.parametrize(("rel", "rules"), [c[1:] for c in FIFOS], ids=[c[0] for c in FIFOS])
def test_a_fifo_is_named_and_never_opened(tmp_path, rel, rules):
    """A FIFO with a config file's name fails the scan closed; one with another name (notes.txt) is noted."""
    repo = tmp_path / "repo"
    put(repo, "k8s/real.yaml", CLEAN)
    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(repo / rel)
    run, sarif = _scan(tmp_path, repo, rules)
    run.expect({0, 3} if rel == "notes.txt" else {3}, within=WITHIN, sarif=sarif, names=(rel,))


def test_a_unix_socket_named_like_a_manifest_is_named(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "k8s/real.yaml", CLEAN)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.getcwd()
    os.chdir(repo / "k8s")  # bind by a short relative name: socket paths are limited to ~108 bytes
    try:
        server.bind("x.yaml")
        run, sarif = _scan(tmp_path, repo, ORG_ONLY)
    finally:
        os.chdir(old)
        server.close()
    run.expect({3}, within=WITHIN, sarif=sarif, names=("k8s/x.yaml",))


# --------------------------------------------------------------------------------------------
# YAML that explodes or nests without end
# --------------------------------------------------------------------------------------------
# Checkov's runners join where the file would reach one of them; our own checks alone elsewhere (cheaper)
BOMBS = [
    ("alias-bomb-manifest", "k8s/bomb.yaml", alias_bomb(K8S_HEAD, indent="  "), WITH_CHECKOV),
    ("alias-bomb-workflow", ".github/workflows/bomb.yml",
     alias_bomb("on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps: [{run: echo}]\nx:\n", indent="  "),
     WITH_CHECKOV),
    ("alias-bomb-plain-yaml", "config/bomb.yaml", alias_bomb(), WITH_CHECKOV),
    ("alias-bomb-compose", "docker-compose.yml", alias_bomb("services:\n  web: {image: nginx}\nx:\n", indent="  "),
     ORG_ONLY),
    ("mapping-bomb-with-merge-key-manifest", "k8s/merge.yaml", mapping_bomb(), WITH_CHECKOV),
    ("alias-bomb-10-levels-wide", "k8s/wide.yaml", alias_bomb(K8S_HEAD, levels=10, width=12, indent="  "), ORG_ONLY),
]


@pytest.mark.parametrize(("rel", "text", "rules"), [c[1:] for c in BOMBS], ids=[c[0] for c in BOMBS])
def test_a_yaml_bomb_is_named_in_bounded_time_and_memory(tmp_path, rel, text, rules):
    repo = tmp_path / "repo"
    put(repo, "k8s/real.yaml", BAD)
    put(repo, rel, text)
    run, sarif = _scan(tmp_path, repo, rules)
    run.expect({3}, within=WITHIN, sarif=sarif, names=(rel,))
    assert "ORG-K8S-001" in run.stdout, "the other file's findings were lost"


DEEP = [
    ("yaml-flow-1000", "k8s/deep.yaml", lambda: deep_flow(1_000), ORG_ONLY),
    ("yaml-flow-100000", "k8s/deep.yaml", lambda: deep_flow(100_000), WITH_CHECKOV),
    ("yaml-block-1000", "k8s/deep.yaml", lambda: deep_block(1_000), ORG_ONLY),
    ("json-1000", "k8s/deep.json", lambda: deep_json(1_000), WITH_CHECKOV),
    ("json-100000", "k8s/deep.json", lambda: deep_json(100_000), WITH_CHECKOV),
    ("workflow-100000", ".github/workflows/deep.yml", lambda: deep_flow(100_000, "on: push\njobs: "), WITH_CHECKOV),
    ("terraform-json-100000", "main.tf.json", lambda: '{"resource": ' + "[" * 100_000 + "]" * 100_000 + "}",
     WITH_CHECKOV),
]


@pytest.mark.parametrize(("rel", "make", "rules"), [c[1:] for c in DEEP], ids=[c[0] for c in DEEP])
def test_deep_nesting_is_a_named_problem_not_a_recursion_error(tmp_path, rel, make, rules):
    repo = tmp_path / "repo"
    put(repo, "k8s/real.yaml", CLEAN)
    put(repo, rel, make())
    run, sarif = _scan(tmp_path, repo, rules)
    run.expect({3}, within=WITHIN, sarif=sarif, names=(rel,))


@pytest.mark.slow
def test_a_folder_1200_levels_deep_is_walked_or_named(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "k8s/real.yaml", CLEAN)
    top = make_deep_folders(repo, 1_200, "web.yaml", BAD)
    try:
        run, sarif = _scan(tmp_path, repo)
        run.expect({1, 3}, within=WITHIN, sarif=sarif)  # its violation is found, or the folder named
    finally:
        remove_tree(top)


# --------------------------------------------------------------------------------------------
# Constructor errors: impossible dates
# --------------------------------------------------------------------------------------------
DATES = [
    ("manifest-annotation", "k8s/dates.yaml",
     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n  annotations:\n    expires: 2025-02-30\ndata: {}\n"),
    ("workflow", ".github/workflows/ci.yml",
     ("on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n"
      "        when: 2025-02-30\n")),
    ("plain-yaml", "config/app.yaml", "release:\n  date: 2025-13-01\n"),
    ("timestamp-hour-25", "k8s/ts.yaml",
     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\ndata:\n  at: 2025-01-01 25:00:00\n"),
]


@pytest.mark.parametrize(("rel", "text"), [c[1:] for c in DATES], ids=[c[0] for c in DATES])
def test_an_impossible_date_is_a_parse_problem_naming_file_and_line(tmp_path, rel, text):
    repo = tmp_path / "repo"
    put(repo, rel, text)
    run, sarif = _scan(tmp_path, repo, ORG_ONLY)
    line = next(i for i, text_line in enumerate(text.splitlines(), 1) if "2025-" in text_line)
    run.expect({3}, within=WITHIN, sarif=sarif, names=(f"{rel}:{line}",))


# --------------------------------------------------------------------------------------------
# Hostile rulesets and repository layers: exit 2 with a message
# --------------------------------------------------------------------------------------------
HEAD = "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: hostile, version: '1'}\n"
RULESETS = [
    ("alias-bomb", HEAD + alias_bomb("organisation:\n  bomb:\n", indent="    "), "rules.yaml"),
    ("mapping-bomb", mapping_bomb().replace("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\n", HEAD),
     "rules.yaml"),
    ("impossible-waiver-date", HEAD + "checks: {include: [ORG-K8S-001]}\nwaivers:\n  - rule: ORG-K8S-001\n"
     "    reason: r\n    approved_by: a@example.com\n    expires: 2025-02-30\n", "rules.yaml:9"),
    ("deep-nesting-1000", HEAD + "organisation:\n  x: " + "[" * 1_000 + "]" * 1_000 + "\n", "rules.yaml"),
    ("deep-nesting-100000", HEAD + "organisation:\n  x: " + "[" * 100_000 + "]" * 100_000 + "\n", "rules.yaml"),
    ("integer-key", HEAD + "checks:\n  severity:\n    1: high\n", "rules.yaml:6"),
    ("null-key", HEAD + "organisation:\n  null: x\n", "rules.yaml:5"),
    ("boolean-key", HEAD + "gate:\n  yes: high\n", "rules.yaml:5"),
    ("complex-key", HEAD + "? [a, b]\n: c\n", "rules.yaml:4"),
    ("date-key", HEAD + "organisation:\n  2025-01-01: x\n", "rules.yaml:5"),
    ("two-documents", HEAD + "---\n" + HEAD, "rules.yaml"),
    ("not-a-mapping", "- apiVersion\n- kind\n", "rules.yaml"),
    ("python-tag", HEAD + "organisation: !!python/object/apply:os.system ['touch PWNED']\n", "rules.yaml"),
    ("binary", seeded_garbage(4096, 7), "rules.yaml"),
    ("utf-16-without-bom", HEAD.encode("utf-16-le"), "rules.yaml"),
]


@pytest.mark.parametrize("command", ["validate", "scan"])
@pytest.mark.parametrize(("text", "named"), [c[1:] for c in RULESETS], ids=[c[0] for c in RULESETS])
def test_a_hostile_ruleset_is_exit_2_with_a_message(tmp_path, text, named, command):
    put(tmp_path, "rules.yaml", text)
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", CLEAN)
    args = ("ruleset", "validate", tmp_path / "rules.yaml") if command == "validate" else \
        ("scan", ".", "-r", tmp_path / "rules.yaml")
    run = run_cli(*args, cwd=repo)
    run.expect({2}, within=WITHIN, names=(named,))
    assert not (repo / "PWNED").exists()


@pytest.mark.parametrize("where", ["repository-layer", "base"])
def test_a_bomb_as_the_repository_layer_or_the_base_is_exit_2(tmp_path, where):
    bomb = HEAD + alias_bomb("organisation:\n  bomb:\n", indent="    ")
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", CLEAN)
    if where == "base":
        put(tmp_path, "base.yaml", bomb)
        run = run_cli("scan", ".", "--base", tmp_path / "base.yaml", cwd=repo)
        run.expect({2}, within=WITHIN, names=("base.yaml",))
    else:
        put(repo, ".checker.yaml", bomb)
        run_cli("scan", ".", cwd=repo).expect({2}, within=WITHIN, names=(".checker.yaml",))


# --------------------------------------------------------------------------------------------
# Size and count
# --------------------------------------------------------------------------------------------
def test_a_repository_raising_its_own_limits_still_cannot_exhaust_memory(tmp_path):
    """The judged repository's .checker.yaml lifts every limit and adds a bomb: refused (2) or named (3),
    never 1 GiB."""
    repo = tmp_path / "repo"
    put(repo, "k8s/bomb.yaml", alias_bomb(K8S_HEAD, indent="  "))
    put(repo, ".checker.yaml", ruleset(WITH_CHECKOV, extra="limits: {max_yaml_nodes: 2000000000, max_file_bytes: "
                                                          "2000000000, max_yaml_documents: 100000000}\n"))
    sarif = tmp_path / "out.sarif"
    run = run_cli("scan", ".", "--sarif-output", sarif, cwd=repo, timeout=WITHIN + 5)
    run.expect({2, 3}, within=WITHIN, sarif=sarif, names=(".checker.yaml",) if run.code == 2 else ("k8s/bomb.yaml",))


@pytest.mark.slow
def test_a_60_mb_yaml_is_named_fast(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "k8s/real.yaml", BAD)
    line = "  k{:07d}: " + "x" * 88 + "\n"
    body = "".join(line.format(i) for i in range(600_000))
    put(repo, "k8s/huge.yaml", K8S_HEAD.replace("bomb", "huge") + body)
    assert (repo / "k8s" / "huge.yaml").stat().st_size > 60_000_000
    run, sarif = _scan(tmp_path, repo)
    run.expect({3}, within=WITHIN, sarif=sarif, names=("k8s/huge.yaml",))
    assert "ORG-K8S-001" in run.stdout, "the other file's findings were lost"


@pytest.mark.slow
def test_50000_documents_in_one_file_are_refused_or_checked_within_bounds(tmp_path):
    repo = tmp_path / "repo"
    docs = [f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\ndata: {{k: v}}\n" for i in range(49_999)]
    put(repo, "k8s/many.yaml", "---\n".join([*docs, BAD]))
    run, sarif = _scan(tmp_path, repo, timeout=2 * WITHIN + 5)
    run.expect({1, 3}, within=2 * WITHIN, sarif=sarif)  # never 0: the last document violates
    if run.code == 3:
        assert "k8s/many.yaml" in run.output


# --------------------------------------------------------------------------------------------
# Encodings and garbage
# --------------------------------------------------------------------------------------------
BAD_JSON = json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                       "spec": {"template": {"spec": {"containers": [{"name": "web",
                                                                      "image": "docker.io/nginx:1.27"}]}}}}, indent=2)
BOM_WORKFLOW = b"on: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: evil/action@main\n"
ENCODED = [  # our own checks alone show whether discovery reads the file; Checkov's runners are added for two
    ("utf-8-bom-json", "k8s/web.json", codecs.BOM_UTF8 + BAD_JSON.encode(), ORG_ONLY),
    ("utf-8-bom-json-with-checkov", "k8s/web.json", codecs.BOM_UTF8 + BAD_JSON.encode(), WITH_CHECKOV),
    ("utf-8-bom-yaml", "k8s/web.yaml", codecs.BOM_UTF8 + BAD.encode(), ORG_ONLY),
    ("utf-8-bom-yaml-with-checkov", "k8s/web.yaml", codecs.BOM_UTF8 + BAD.encode(), WITH_CHECKOV),
    ("utf-16-le-bom-yaml", "k8s/web.yaml", codecs.BOM_UTF16_LE + BAD.encode("utf-16-le"), ORG_ONLY),
    ("utf-16-be-bom-yaml", "k8s/web.yaml", codecs.BOM_UTF16_BE + BAD.encode("utf-16-be"), ORG_ONLY),
    ("utf-16-le-bom-json", "k8s/web.json", codecs.BOM_UTF16_LE + BAD_JSON.encode("utf-16-le"), ORG_ONLY),
    ("utf-8-bom-workflow", ".github/workflows/ci.yml", codecs.BOM_UTF8 + BOM_WORKFLOW, ORG_ONLY),
]


@pytest.mark.parametrize(("rel", "data", "rules"), [c[1:] for c in ENCODED], ids=[c[0] for c in ENCODED])
def test_a_bom_encoded_manifest_is_checked_or_named_never_passed(tmp_path, rel, data, rules):
    repo = tmp_path / "repo"
    put(repo, rel, data)
    run, sarif = _scan(tmp_path, repo, rules)
    run.expect({1, 3}, within=WITHIN, sarif=sarif)
    if run.code == 3:
        assert rel in run.output, f"exit 3 without naming {rel}\n{run.describe()}"


GARBAGE = [
    ("random-bytes-yaml", "k8s/blob.yaml", seeded_garbage(64 * 1024, 1), WITH_CHECKOV),
    ("png-named-yaml", "k8s/logo.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + seeded_garbage(2048, 2), ORG_ONLY),
    ("nul-inside-valid-yaml", "k8s/nul.yaml", BAD.encode().replace(b"name: web\n", b"name: web\x00\n", 1),
     WITH_CHECKOV),
    ("latin-1-inside-yaml", "k8s/latin.yaml", BAD.encode().replace(b"name: web\n", b"name: caf\xe9\n", 1), ORG_ONLY),
    ("random-bytes-workflow", ".github/workflows/ci.yml", seeded_garbage(8192, 3), ORG_ONLY),
    ("random-bytes-json", "k8s/blob.json", b"{" + seeded_garbage(8192, 4), ORG_ONLY),  # noted, like JSON with comments
    ("lone-surrogate-escape-json", "k8s/sur.json", BAD_JSON.replace('"web"', '"\\ud800"', 1).encode(), ORG_ONLY),
]


@pytest.mark.parametrize(("rel", "data", "rules"), [c[1:] for c in GARBAGE], ids=[c[0] for c in GARBAGE])
def test_garbage_is_named_never_passed(tmp_path, rel, data, rules):
    repo = tmp_path / "repo"
    put(repo, rel, data)
    run, sarif = _scan(tmp_path, repo, rules)
    codes = {1, 3} if b"\\ud800" in data else {0, 3} if rel == "k8s/blob.json" else {3}
    run.expect(codes, within=WITHIN, sarif=sarif, names=() if b"\\ud800" in data else (rel,))


def test_crlf_line_endings_are_checked_with_the_right_lines(tmp_path):
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", BAD.replace("\n", "\r\n"))
    run = run_cli("scan", ".", "-r", rules_file(tmp_path), "--format", "json", cwd=repo)
    run.expect({1}, within=WITHIN)
    assert [(f["rule"], f["start_line"]) for f in json.loads(run.stdout)["findings"]] == [("ORG-K8S-001", BAD_LINE)]


# --------------------------------------------------------------------------------------------
# The environment
# --------------------------------------------------------------------------------------------
VARIABLES = [
    ("CHECKER_WARM_IDLE", "twenty minutes"),
    ("CHECKER_WARM_IDLE", "-1"),
    ("CHECKER_CHECKOV_TIMEOUT", "abc"),
    ("CHECKER_CHECKOV_TIMEOUT", "1e3"),
    ("CHECKER_WORKER_MEMORY_MB", "lots"),
    ("CHECKER_WORKER_MEMORY_MB", "0"),
    ("CHECKER_WARM", "banana"),
    ("CHECKER_BASE", ""),
    ("CHECKER_FAIL_ON", "never"),  # unknown: a typo or a wish, never silently ignored
    ("CHECKER_BASEE", "org-baseline"),
]


@pytest.mark.parametrize("console_script", [True, False], ids=["console-script", "python-m"])
@pytest.mark.parametrize(("name", "value"), VARIABLES, ids=[f"{n}={v or 'empty'}" for n, v in VARIABLES])
def test_a_malformed_or_unknown_variable_is_exit_2(tmp_path, name, value, console_script):
    repo = tmp_path / "repo"
    put(repo, "k8s/web.yaml", CLEAN)
    put(repo, ".checker.yaml", ruleset(ORG_ONLY))
    # CI=1 keeps a warm server from ever starting, whatever becomes of CHECKER_WARM
    run = run_cli("scan", ".", cwd=repo, env={name: value, "CI": "1"}, console_script=console_script)
    run.expect({2}, within=WITHIN, names=(name,))


def test_the_variables_are_checked_for_every_command(tmp_path):
    run = run_cli("rules", "list", "-r", "org-baseline", cwd=tmp_path, env={"CHECKER_WARM_IDLE": "soon", "CI": "1"})
    run.expect({2}, within=WITHIN, names=("CHECKER_WARM_IDLE",))
