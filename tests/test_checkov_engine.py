"""The Checkov engine with real Checkov: normalised findings, fail-closed parse errors, crash isolation,
capped workers, nothing read outside the root, encodings Checkov misreads named, parity."""
from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import corpus_folder, ruleset_text

from checker import settings
from checker.engines import checkov as checkov_engine
from checker.engines import workers
from checker.scan import Options, run

TF = """
resource "aws_security_group" "admin" {
  name = "admin"
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
"""
# AWS Rain module references give a resource a mapping (or a tagged scalar) as its Type: Checkov's
# CloudFormation runner raises TypeError on such a template (see ../shared/corpus/BASELINE.md).
RAIN = """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Site:
    Type: {"Rain::Module": "https://example.com/site.yaml"}
"""
RAIN_TAG = """
Resources:
  Bucket:
    Type: !Rain::Module "https://example.com/bucket.yaml"
"""
# CKV_AWS_361 compares BackupRetentionPeriod with an int: a string makes the check raise.
NEPTUNE = """
Resources:
  Cluster:
    Type: AWS::Neptune::DBCluster
    Properties:
      BackupRetentionPeriod: "7"
"""
CFN_BUCKET = """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: demo
"""


def scan(tmp_path: Path, include: list[str], folder: str = "repo", limits: str = "{}"):
    rules = tmp_path / "rules.yaml"
    rules.write_text(ruleset_text(include, gate="{fail_on: never}", limits=limits))
    return run(Options(paths=(str(tmp_path / folder),), ruleset=str(rules)))


def test_findings_are_relative_with_lines_and_resource(write, tmp_path):
    write("repo/infra/main.tf", TF)
    result = scan(tmp_path, ["CKV_AWS_24"])
    assert [(f.rule_id, f.location.path, f.location.start_line, f.location.end_line, f.resource)
            for f in result.findings] == [("CKV_AWS_24", "infra/main.tf", 1, 9, "aws_security_group.admin")]
    assert result.findings[0].message == "Ensure no security groups allow ingress from 0.0.0.0:0 to port 22"


def test_checkov_skip_comment_is_an_in_source_suppression(write, tmp_path):
    write("repo/main.tf", TF.replace('name = "admin"', 'name = "admin"\n  # checkov:skip=CKV_AWS_24:bastion only'))
    result = scan(tmp_path, ["CKV_AWS_24"])
    (finding,) = result.findings
    assert finding.suppression and finding.suppression.kind == "inSource"
    assert finding.suppression.justification == "bastion only"
    assert result.decision.exit_code == 0


def test_templates_checkov_would_crash_on_are_named_and_other_files_keep_their_results(write, tmp_path):
    write("repo/rain.yaml", RAIN)
    write("repo/rain-tag.yaml", RAIN_TAG)
    write("repo/bucket.yaml", CFN_BUCKET)
    result = scan(tmp_path, ["CKV_AWS_18", "CKV_AWS_21"])
    assert {(f.rule_id, f.location.path) for f in result.findings} == {
        ("CKV_AWS_18", "bucket.yaml"), ("CKV_AWS_21", "bucket.yaml")}
    assert [(p.path, p.line) for p in result.problems] == [("rain-tag.yaml", 3), ("rain.yaml", 4)]
    assert "has a Type that is not a string (an AWS Rain module?)" in result.problems[0].message
    assert result.decision.exit_code == 3


def test_a_checkov_check_that_raises_is_a_problem_not_a_pass(write, tmp_path):
    write("repo/neptune.yaml", NEPTUNE)
    result = scan(tmp_path, ["CKV_AWS_361"])
    assert [(p.path, p.message) for p in result.problems] == [(
        "neptune.yaml", ("Checkov check CKV_AWS_361 crashed on AWS::Neptune::DBCluster.Cluster, "
                         "so that resource was not checked by it"))]


def test_only_frameworks_with_selected_checks_and_files_run(write, tmp_path):
    write("repo/main.tf", TF)
    result = scan(tmp_path, ["CKV_K8S_*"])
    assert result.findings == () and result.problems == ()


POD = """
apiVersion: v1
kind: Pod
metadata: {name: NAME}
spec:
  containers: [{name: c, image: nginx}]
"""


BIG = "{max_dockerfile_lines: 200000}"  # the organisation lets big Dockerfiles through to Checkov


def big_dockerfile() -> str:
    """A valid Dockerfile under our size limit (2.2 MB) that takes Checkov's parser 5 s and 700 MiB."""
    return "FROM nginx:latest\n" + "".join(f"RUN echo {i}\n" for i in range(150_000))


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set CHECKER_* variables for one test: settings are read once per process, so re-read them."""
    settings.current.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    settings.current.cache_clear()


def paths_with_findings(result) -> set[str]:
    return {f.location.path for f in result.findings}


def test_a_worker_past_its_memory_cap_costs_only_the_file_that_needed_it(write, tmp_path, environment):
    """The Dockerfile worker runs out of its cap: re-run file by file, only the big file goes unchecked."""
    environment.setenv("CHECKER_WORKER_MEMORY_MB", "64")
    write("repo/big/Dockerfile", big_dockerfile())
    write("repo/small/Dockerfile", "FROM nginx:latest\n")
    write("repo/pod.yaml", POD.replace("NAME", "pod"))
    result = scan(tmp_path, ["CKV_K8S_*", "CKV_DOCKER_*"], limits=BIG)
    assert [(p.path, p.message) for p in result.problems] == [(
        "big/Dockerfile",
        "Checkov's dockerfile runner ran out of its memory cap of 64 MiB on it, so it was not checked")]
    assert paths_with_findings(result) == {"small/Dockerfile", "pod.yaml"}
    assert any("ran out of its memory cap of 64 MiB; its files were re-run one at a time" in n for n in result.notes)
    assert result.decision.exit_code == 3


def test_a_framework_with_one_file_names_it_at_once_without_running_it_again(write, tmp_path, environment):
    environment.setenv("CHECKER_WORKER_MEMORY_MB", "64")
    write("repo/Dockerfile", big_dockerfile())
    result = scan(tmp_path, ["CKV_DOCKER_*"], limits=BIG)
    assert [(p.path, p.message) for p in result.problems] == [(
        "Dockerfile", "Checkov's dockerfile runner ran out of its memory cap of 64 MiB on it, so it was not checked")]
    assert not any("re-run" in n for n in result.notes)


def test_a_worker_past_its_deadline_is_killed_and_named_and_the_scan_ends_in_time(write, tmp_path, environment):
    environment.setenv("CHECKER_CHECKOV_TIMEOUT", "1")
    write("repo/big/Dockerfile", big_dockerfile())
    write("repo/small/Dockerfile", "FROM nginx:latest\n")
    write("repo/pod.yaml", POD.replace("NAME", "pod"))
    started = time.monotonic()
    result = scan(tmp_path, ["CKV_K8S_*", "CKV_DOCKER_*"], limits=BIG)
    assert time.monotonic() - started < 15  # the first pass and the re-runs end within twice the limit
    problems = {p.path: p.message for p in result.problems}
    assert problems["big/Dockerfile"].startswith("Checkov's dockerfile runner did not finish within 1 s on it")
    assert "small/Dockerfile" in problems or "small/Dockerfile" in paths_with_findings(result)  # never dropped
    assert "pod.yaml" in paths_with_findings(result)
    assert result.decision.exit_code == 3


def test_checkov_never_reads_through_links_that_leave_the_root(write, tmp_path):
    """Checkov's own walk follows file links; refused paths are excluded from every runner."""
    write("outside/out.tf", TF.replace("admin", "outside"))
    write("outside/out.yaml", POD.replace("NAME", "outside"))
    write("outside/Dockerfile", "FROM nginx:latest\n")
    write("repo/in.tf", TF)
    write("repo/in.yaml", POD.replace("NAME", "inside"))
    for name, target in [("link.tf", "out.tf"), ("link.yaml", "out.yaml"), ("Dockerfile", "Dockerfile")]:
        (tmp_path / "repo" / name).symlink_to(tmp_path / "outside" / target)
    (tmp_path / "repo" / "linked").symlink_to(tmp_path / "outside", target_is_directory=True)
    result = scan(tmp_path, ["CKV_AWS_24", "CKV_K8S_*", "CKV_DOCKER_*", "CKV_SECRET_*"])
    assert paths_with_findings(result) == {"in.tf", "in.yaml"}
    assert not any(f.resource.endswith("outside") for f in result.findings)


@pytest.mark.parametrize("folder", ["__pycache__", ".venv", "node_modules", ".hg"])
def test_checkov_does_not_walk_the_tool_folders_discovery_skips(write, tmp_path, folder):
    """Discovery never enters these folders; Checkov's own walk would, and would follow the links in them."""
    write("outside/out.yaml", POD.replace("NAME", "outside"))
    write("repo/in.yaml", POD.replace("NAME", "inside"))
    write(f"repo/{folder}/real.yaml", POD.replace("NAME", "tooling"))
    (tmp_path / "repo" / folder / "link.yaml").symlink_to(tmp_path / "outside" / "out.yaml")
    result = scan(tmp_path, ["CKV_K8S_*", "CKV_SECRET_*"])
    assert paths_with_findings(result) == {"in.yaml"}


def test_a_kustomization_whose_base_leaves_the_root_is_not_rendered_by_checkov(write, tmp_path):
    """Checkov's kustomize runner would render the outside Pod and report it as the overlay's."""
    write("outside/pod.yaml", POD.replace("NAME", "outside"))
    write("outside/kustomization.yaml", "resources: [pod.yaml]\n")
    write("repo/overlay/kustomization.yaml", 'kind: Kustomization\nresources: ["../../outside"]\n')
    write("repo/in.yaml", POD.replace("NAME", "inside"))
    result = scan(tmp_path, ["CKV_K8S_*"])
    assert paths_with_findings(result) == {"in.yaml"}
    assert not any("outside" in f.resource for f in result.findings)


@pytest.mark.parametrize(("exitcode", "cause"), [
    (86, "ran out of its memory cap of 512 MiB"),
    (-11, "was killed by signal SIGSEGV"),
    (-9, "was killed by signal SIGKILL (the machine ran out of memory?)"),
    (1, "exited with status 1 without a result"),
])
def test_a_dead_worker_is_named_with_its_cause(exitcode, cause):
    assert workers.cause(exitcode, workers.Fence(settings.Settings().worker_memory_mb, 1)) == cause


def test_the_console_script_runs_without_the_collector_and_its_workers_with_it():
    """The parent's collector is off (checker/launch.py: start-up and exit cost it most); a worker, whose
    runner builds cyclic graphs, must have it back on, or Terraform's memory would grow unbounded."""
    probe = ("import gc, sys\nfrom checker import launch\nfrom checker.engines import workers\n"
             "sys.argv = ['checker', '--version']\n"
             "try:\n    launch.main()\nexcept SystemExit:\n    pass\n"
             "callbacks = workers.Callbacks(work=lambda job: (gc.isenabled(), gc.get_freeze_count() > 0),\n"
             "    lost=lambda job, why: why, unstarted=lambda job, why: why, failed=lambda job, error: repr(error))\n"
             "print(gc.isenabled(), *workers.run_all([1], workers.Fence(512, 60), callbacks))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "False (True, True)", done.stderr


def test_fifos_named_like_configuration_do_not_hang_any_runner(write, tmp_path):
    write("repo/in.yaml", POD.replace("NAME", "inside"))
    for rel in ("x.yaml", "x.tf", "sub/Dockerfile", "notes.txt"):
        (tmp_path / "repo" / rel).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(tmp_path / "repo" / rel)
    rules = tmp_path / "rules.yaml"
    rules.write_text(ruleset_text(["CKV_K8S_*", "CKV_AWS_*", "CKV_DOCKER_*", "CKV_SECRET_*"], gate="{fail_on: never}"))
    done = subprocess.run([str(Path(sys.executable).parent / "checker"), "scan", str(tmp_path / "repo"), "-r",
                           str(rules), "--format", "json"], capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in done.stderr
    assert {f["path"] for f in json.loads(done.stdout)["findings"]} == {"in.yaml"}


def test_a_terraform_module_outside_the_root_is_named_and_not_loaded(write, tmp_path):
    write("outside/main.tf", TF.replace("admin", "outside"))
    write("repo/a/b/main.tf", 'module "m" {\n  source = "../../../outside"\n}\n')
    write("repo/inside/main.tf", TF)
    write("repo/main.tf", 'module "ok" {\n  source = "./inside"\n}\n')
    result = scan(tmp_path, ["CKV_AWS_24"])
    assert [(p.path, p.line, p.message) for p in result.problems] == [(
        "a/b/main.tf", 2, ("a module's source '../../../outside' leaves the scan root, so Checkov did not load it "
                           "and the module was not checked; scan from a folder that holds it"))]
    # a module inside the root is still loaded (Checkov reports its resources under the module's name)
    assert {(f.location.path, f.resource) for f in result.findings} == {
        ("inside/main.tf", "module.ok.aws_security_group.admin")}


WORKFLOW = ("on: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n"
            "    - run: echo ${{ github.event.issue.title }}\n")
POD_JSON = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                       "spec": {"containers": [{"name": "c", "image": "nginx"}]}})


def test_files_in_an_encoding_checkov_skips_or_misreads_are_named_not_passed(tmp_path):
    """Measured: each of these Checkov skips without a parse error (or loses the first line of)."""
    files = {
        "pod-bom.json": codecs.BOM_UTF8 + POD_JSON.encode(),
        "docker/bom/Dockerfile": codecs.BOM_UTF8 + b"FROM nginx:latest\n",
        "docker/utf16/Dockerfile": "FROM nginx:latest\n".encode("utf-16"),
        ".github/workflows/utf16.yml": WORKFLOW.encode("utf-16"),
        # read correctly by Checkov: checked as usual
        "pod-bom.yaml": codecs.BOM_UTF8 + POD.replace("NAME", "bom").encode(),
        "pod-utf16.yaml": POD.replace("NAME", "utf16").encode("utf-16"),
        ".github/workflows/bom.yml": codecs.BOM_UTF8 + WORKFLOW.encode(),
    }
    for rel, data in files.items():
        (tmp_path / "repo" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "repo" / rel).write_bytes(data)
    result = scan(tmp_path, ["CKV_K8S_*", "CKV_DOCKER_*", "CKV_GHA_*", "CKV2_GHA_*"])
    assert sorted((p.path, p.message.split(";")[0]) for p in result.problems) == [
        (".github/workflows/utf16.yml", "Checkov cannot read github_actions files encoded as UTF-16"),
        ("docker/bom/Dockerfile", "Checkov cannot read dockerfile files encoded as UTF-8 with a byte-order mark"),
        ("docker/utf16/Dockerfile", "Checkov cannot read dockerfile files encoded as UTF-16"),
        ("pod-bom.json", "Checkov cannot read kubernetes files encoded as UTF-8 with a byte-order mark"),
    ]
    assert paths_with_findings(result) == {"pod-bom.yaml", "pod-utf16.yaml", ".github/workflows/bom.yml"}


RUNNER_MODULES = {spec.split(":")[0] for spec in checkov_engine.RUNNERS.values()}
IMPORTED = ("import sys\nfrom checker.scan import Options, run\n"
            "run(Options(paths=(sys.argv[1],), ruleset=sys.argv[2], cache=False))\n"
            "print(' '.join(m for m in sys.modules if m.startswith('checkov')))")


@pytest.mark.parametrize(("files", "include", "runners"), [
    ({"Dockerfile": "FROM nginx:latest\n"}, ["CKV_K8S_*"], set()),
    ({"main.tf": TF}, ["CKV_AWS_*"], {"checkov.terraform.runner"}),
    ({"main.tf.json": json.dumps({"resource": {"aws_s3_bucket": {"b": {"bucket": "b"}}}})}, ["CKV_AWS_*"],
     {"checkov.terraform_json.runner", "checkov.terraform.plan_runner"}),
])
def test_a_scan_imports_only_the_runners_of_the_jobs_it_runs(write, tmp_path, files, include, runners):
    """Cold start: Checkov's runners cost a second to import; none is imported for a framework with no file."""
    for rel, text in files.items():
        write(f"repo/{rel}", text)
    rules = tmp_path / "rules.yaml"
    rules.write_text(ruleset_text(include, gate="{fail_on: never}"))
    done = subprocess.run([sys.executable, "-c", IMPORTED, str(tmp_path / "repo"), str(rules)], capture_output=True,
                          text=True, timeout=300, check=True, env={**os.environ, "CHECKER_WARM": "0"})
    imported = set(done.stdout.split())
    assert imported & RUNNER_MODULES == runners
    if not runners:
        assert not any(m.startswith("checkov.common.runners") for m in imported)


@pytest.fixture
def evaluation(monkeypatch: pytest.MonkeyPatch):
    """Checkov's Terraform expression evaluator with a symbol table of this test's own (assignments stay here)."""
    from checkov.terraform.graph_builder.variable_rendering import safe_eval_functions

    monkeypatch.setattr(safe_eval_functions, "SAFE_EVAL_DICT", dict(safe_eval_functions.SAFE_EVAL_DICT))
    return safe_eval_functions


def outcome(evaluate, text: str):
    try:
        return "value", evaluate(text)
    except ValueError as error:
        return "error", str(error)


TEXTS = ["1 + 2", "'a' if 1 == 1 else 'b'", "[1, 'x', {'k': [2]}]", "lower('ABC')", "var.missing",
         "merge({'a': 1}, {'b': 2})", "1 +", "length([1, 2, 3])", "..."]


def test_terraform_expressions_are_evaluated_once_each_with_the_outcome_of_every_evaluation(evaluation):
    calls = []

    def counted(text):
        calls.append(text)
        return evaluation.evaluate(text)

    memo = checkov_engine._Memo(counted, checkov_engine._Table(evaluation.SAFE_EVAL_DICT), evaluates=True)
    fresh = [outcome(evaluation.evaluate, t) for t in TEXTS * 3]
    assert [outcome(memo, t) for t in TEXTS * 3] == fresh
    assert sorted(calls) == sorted(TEXTS)  # the second and third rounds came from what was kept
    value = memo("[1, 'x', {'k': [2]}]")
    value[2]["k"].append(3)  # a caller changing what it was given changes nothing kept
    assert memo("[1, 'x', {'k': [2]}]") == [1, "x", {"k": [2]}]


def test_an_expression_that_assigns_into_the_shared_symbol_table_drops_what_was_kept(evaluation):
    """Checkov's evaluator shares one symbol table: `foo=1` defines `foo` for every later evaluation."""
    memo = checkov_engine._Memo(evaluation.evaluate, checkov_engine._Table(evaluation.SAFE_EVAL_DICT), evaluates=True)
    assert outcome(memo, "foo")[0] == "error"
    assert memo("foo=1") is None
    assert memo("foo") == 1 == evaluation.evaluate("foo")
    memo("foo=[2]")
    assert memo("foo") == [2]


def test_a_whole_terraform_expression_is_kept_per_text_and_arguments_and_dropped_when_the_table_changes(evaluation):
    """The string work around an evaluation (evaluate_terraform) is kept too, sharing the table's generation:
    a text that assigns into the table, evaluated inside it, drops what the outer memo kept."""
    from checkov.terraform.graph_builder.variable_rendering import evaluate_terraform as module

    table = checkov_engine._Table(evaluation.SAFE_EVAL_DICT)
    inner = checkov_engine._Memo(evaluation.evaluate, table, evaluates=True)
    calls = []
    outer = checkov_engine._Memo(lambda text, **kw: calls.append((text, kw)) or module.evaluate_terraform(text, **kw),
                                 table)
    texts = ["${1 + 2}", "${true ? \"a\" : \"b\"}", "${merge({\"a\": 1}, {\"b\": 2})}", "abc-${var.x}-xyz"]
    fresh = [module.evaluate_terraform(t, keep_interpolations=k) for t in texts for k in (True, False)]
    original = module.evaluate
    module.evaluate = inner  # as installed: evaluate_terraform's evaluations go through the inner memo
    try:
        for _ in range(2):
            assert [outer(t, keep_interpolations=k) for t in texts for k in (True, False)] == fresh
        assert len(calls) == 2 * len(texts)  # the second round came from what was kept
        outer("${foo}")
        outer("foo=1")  # assigns: the table changed, everything kept is dropped
        assert outer("${foo}") == module.evaluate_terraform("${foo}") == 1
        assert calls.count(("${foo}", {})) == 2
    finally:
        module.evaluate = original


def test_an_error_of_the_stack_or_of_memory_is_never_kept_one_of_the_text_is():
    """asteval reports a RecursionError (how deep the caller's stack was) as it reports a NameError."""
    calls = []

    def failing(text):
        calls.append(text)
        raise ValueError(f"Safe evaluation error: [({text!r}, 'x')]")

    memo = checkov_engine._Memo(failing, checkov_engine._Table({}))
    for name in ("RecursionError", "MemoryError", "NameError", "SyntaxError"):
        for _ in range(2):
            with pytest.raises(ValueError, match=name):
                memo(name)
    assert calls == ["RecursionError", "RecursionError", "MemoryError", "MemoryError", "NameError", "SyntaxError"]


def test_expressions_with_a_clock_or_an_effect_are_evaluated_every_time(evaluation):
    calls = []
    memo = checkov_engine._Memo(lambda text: calls.append(text) or evaluation.evaluate(text),
                                checkov_engine._Table(evaluation.SAFE_EVAL_DICT), evaluates=True)
    for _ in range(2):
        memo("timestamp()")
        memo("toset(['a', 'b'])")  # a set: a copy need not iterate in the same order
    assert len(calls) == 4


def test_the_secrets_runner_parses_a_text_once_and_each_caller_gets_its_own_copy():
    import io

    import yaml

    calls = []
    parse = checkov_engine._ParseOnce(lambda text: calls.append(text) or yaml.safe_load(text), yaml.YAMLError)
    first = parse("a: [1, 2]\nb: {c: d}\n")
    first["a"].append(3)
    assert parse("a: [1, 2]\nb: {c: d}\n") == {"a": [1, 2], "b": {"c": "d"}}
    assert len(calls) == 1
    for _ in range(2):
        with pytest.raises(yaml.YAMLError):
            parse("a: [1, 2\n")
    assert len(calls) == 2  # the error is kept too
    assert parse("x: 1") == {"x": 1} and parse(io.StringIO("x: 1")) == {"x": 1} and parse(io.StringIO("x: 1"))
    assert len(calls) == 5  # another text, and streams, are parsed each time


def test_the_jsonpath_grammar_is_built_once_and_parses_every_path_as_a_fresh_parser_does(monkeypatch):
    import ply.yacc
    from bc_jsonpath_ng.ext import parse
    from bc_jsonpath_ng.parser import JsonPathParser

    paths = ["$.resource[0].aws_s3_bucket", "$.a.b[*].c", "$..tags", "$.x[?(@.y == 'z')]", "$.locals[1].name"]
    document = {"resource": [{"aws_s3_bucket": 1}], "a": {"b": [{"c": 2}, {"c": 3}]}, "tags": {"t": 1},
                "x": [{"y": "z"}, {"y": "q"}], "locals": [{}, {"name": "n"}]}
    fresh = [(str(parse(path)), [m.value for m in parse(path).find(document)]) for path in paths]
    built = []
    generate = ply.yacc.yacc
    monkeypatch.setattr(ply.yacc, "yacc", checkov_engine._OneGrammar(
        lambda *a, **k: built.append(k.get("start")) or generate(*a, **k), JsonPathParser))
    for _ in range(2):
        assert [(str(parse(path)), [m.value for m in parse(path).find(document)]) for path in paths] == fresh
    assert built == ["jsonpath"]  # one grammar, built once for 20 parses


PARITY_FOLDERS = ["terragoat", "cfngoat", "kustomizegoat", "gitlab-runner",
                  pytest.param("terraform-aws-vpc", marks=pytest.mark.slow),
                  pytest.param("terraform-aws-eks", marks=pytest.mark.slow)]


@pytest.mark.corpus
@pytest.mark.parametrize("name", PARITY_FOLDERS)
def test_parity_with_checkov_on_the_corpus(name, tmp_path):
    """With every Checkov check selected, our Checkov findings equal `checkov -d` (rule, file, resource)."""
    folder = corpus_folder(name).resolve()  # Checkov reports kustomize paths through symlinks differently
    rules = tmp_path / "all.yaml"
    rules.write_text(ruleset_text(["CKV*"], gate="{fail_on: never}"))
    ours = {(f.rule_id, f.location.path, f.resource)
            for f in run(Options(paths=(str(folder),), ruleset=str(rules))).findings if f.suppression is None}
    checkov = Path(sys.executable).parent / "checkov"
    done = subprocess.run([str(checkov), "-d", str(folder), "-o", "json", "--quiet", "--compact", "--skip-download"],
                          capture_output=True, text=True, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
                          timeout=600, check=False)
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    prefix = f"{folder}/"  # Checkov gives some kustomize graph findings an absolute path; ours are all relative
    theirs = {(c["check_id"], c["file_path"].removeprefix(prefix).lstrip("/"), c["resource"])
              for report in reports if isinstance(report, dict)
              for c in report.get("results", {}).get("failed_checks", [])}
    assert theirs, "Checkov found nothing: the comparison would prove nothing"
    assert ours == theirs
