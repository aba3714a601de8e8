"""Discovery: kinds by path and content, .gitignore honoured, nothing unparseable passed over silently."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from checker.discover import discover
from checker.documents import Limits
from checker.errors import ConfigError


def kinds(root: Path, ignore=()) -> dict[str, str]:
    found = discover(root, [root], ignore)
    return {s.path: s.kind.value for s in found.sources}


def test_classification(write, tmp_path):
    write("main.tf", 'resource "x" "y" {}\n')
    write("app/Dockerfile", "FROM scratch\n")
    write("app/build.dockerfile", "FROM scratch\n")
    write("app/Dockerfile.alpine", "FROM scratch\n")
    write("src/dockerfile.py", "import os\n")
    write("docs/Dockerfile.md", "# how we build\n")
    write("docker-compose.yml", "services: {web: {image: nginx}}\n")
    write(".github/workflows/ci.yml", "on: push\njobs: {}\n")
    write("workflows/not-a-workflow.yml", "on: push\njobs: {}\n")
    write(".gitlab-ci.yml", "test: {script: [x]}\n")
    write(".gitlab/ci/lint.gitlab-ci.yml", "lint: {script: [x]}\n")
    write("pipelines/build.yml", "trigger: [main]\npool: {vmImage: ubuntu-latest}\nsteps: [{script: x}]\n")
    write("k8s/pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n")
    write("k8s/kustomization.yaml", "resources: [pod.yaml]\n")
    write("cfn/stack.yaml", "AWSTemplateFormatVersion: '2010-09-09'\nResources: {B: {Type: AWS::S3::Bucket}}\n")
    write("cfn/short.yaml", "Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties: {BucketName: !Ref N}\n")
    write("chart/Chart.yaml", "apiVersion: v2\nname: c\nversion: 1.0.0\n")
    write("chart/values.yaml", "image: {repository: nginx}\n")
    write("chart/templates/deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\n{{- if .Values.x }}\n")
    write("config/settings.yaml", "just: data\n")
    write("k8s/list.json", '{"apiVersion": "v1", "kind": "List", "items": []}\n')
    assert kinds(tmp_path) == {
        "main.tf": "terraform", "app/Dockerfile": "dockerfile", "app/build.dockerfile": "dockerfile",
        "app/Dockerfile.alpine": "dockerfile",
        "docker-compose.yml": "docker-compose", ".github/workflows/ci.yml": "github-actions",
        ".gitlab-ci.yml": "gitlab-ci", ".gitlab/ci/lint.gitlab-ci.yml": "gitlab-ci",
        "pipelines/build.yml": "azure-pipelines", "k8s/pod.yaml": "kubernetes", "k8s/kustomization.yaml": "kustomize",
        "cfn/stack.yaml": "cloudformation", "cfn/short.yaml": "cloudformation", "chart/Chart.yaml": "helm",
        "chart/values.yaml": "helm", "chart/templates/deploy.yaml": "helm", "k8s/list.json": "kubernetes",
    }


def test_gitignore_nested_and_ruleset_ignores(write, tmp_path):
    write(".gitignore", "build/\n*.tmp.yaml\n")
    write("build/pod.yaml", "apiVersion: v1\nkind: Pod\n")
    write("keep/pod.yaml", "apiVersion: v1\nkind: Pod\n")
    write("keep/x.tmp.yaml", "apiVersion: v1\nkind: Pod\n")
    write("keep/.gitignore", "generated.yaml\n")
    write("keep/generated.yaml", "apiVersion: v1\nkind: Pod\n")
    write("vendor/pod.yaml", "apiVersion: v1\nkind: Pod\n")
    write(".git/config.yaml", "apiVersion: v1\nkind: Pod\n")
    found = discover(tmp_path, [tmp_path], ["vendor/"])
    assert [s.path for s in found.sources] == ["keep/pod.yaml"]
    assert sorted(found.ignored) == ["build", "keep/generated.yaml", "keep/x.tmp.yaml", "vendor"]


def test_unparseable_yaml_is_a_problem_with_its_line(write, tmp_path):
    write("bad.yaml", "key: value\nother: [1, 2\n")
    found = discover(tmp_path, [tmp_path])
    (problem,) = found.problems
    assert (problem.path, problem.line) == ("bad.yaml", 3)
    assert problem.message.startswith("is not valid YAML")


def test_yaml_nodes_know_their_lines(write, tmp_path):
    write("pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n"
          "    - name: a\n      image: nginx\n")
    (source,) = discover(tmp_path, [tmp_path]).sources
    container = source.documents[0]["spec"]["containers"][0]
    assert container.line_of("image") == 8
    assert source.documents[0]["spec"]["containers"].lines == [7]


def test_the_repository_ruleset_applies_to_a_subfolder_scan_with_its_ignores(write, tmp_path, cli):
    (tmp_path / ".git").mkdir()
    write(".checker.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: repo-rules}\n"
          "organisation: {approved_registries: [r.example.com]}\nchecks: {include: [ORG-K8S-001]}\n"
          "ignore: [services/api/generated/]\n")
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - {name: a, image: nginx:1}\n"
    write("services/api/pod.yaml", pod)
    write("services/api/generated/pod.yaml", pod)
    result = cli("scan", str(tmp_path / "services" / "api"), "--format", "json")
    import json

    doc = json.loads(result.output)
    assert doc["ruleset"]["name"] == "repo-rules"
    assert [f["path"] for f in doc["findings"]] == ["pod.yaml"]
    assert "1 path(s) left out by .gitignore or the ruleset's ignore: generated" in doc["notes"]


# --- nothing outside the root, nothing but regular files, nothing past the limits --------------------------

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"


@contextlib.contextmanager
def within(seconds: int):
    """Fail instead of hanging (a FIFO opened for reading blocks until a writer comes)."""
    def expire(*_):
        raise TimeoutError(f"discovery did not finish in {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def problems(found) -> dict[str, str]:
    return {p.path: p.message for p in found.problems}


def test_a_fifo_is_never_opened_and_one_by_a_checked_name_is_a_problem(write, tmp_path):
    write("pod.yaml", POD)
    os.mkfifo(tmp_path / "x.yaml")
    os.mkfifo(tmp_path / "pipe")
    with within(10):
        found = discover(tmp_path, [tmp_path])
    assert [s.path for s in found.sources] == ["pod.yaml"]
    assert problems(found) == {"x.yaml": "is a FIFO (named pipe), not a regular file; it was not read, so not checked"}
    assert found.refused == ("pipe", "x.yaml")
    assert "pipe" in " ".join(found.notes) and "x.yaml" not in found.files


def test_a_fifo_named_on_the_command_line_is_not_opened(tmp_path):
    os.mkfifo(tmp_path / "x.yaml")
    with within(10):
        found = discover(tmp_path, [tmp_path / "x.yaml"])
    assert list(problems(found)) == ["x.yaml"] and found.refused == ("x.yaml",)


def test_a_socket_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a socket's path must be short
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("kustomization.yaml")
        found = discover(tmp_path, [tmp_path])
    assert problems(found) == {"kustomization.yaml": "is a socket, not a regular file; it was not read, so not checked"}


def test_symbolic_links_are_never_followed(write, tmp_path):
    outside = tmp_path / "outside"
    root = tmp_path / "root"
    (outside / "k8s").mkdir(parents=True)
    (outside / "k8s" / "pod.yaml").write_text(POD)
    (outside / "notes.txt").write_text("x\n")
    (root / "real").mkdir(parents=True)
    (root / "real" / "pod.yaml").write_text(POD)
    (root / "folder").symlink_to(outside / "k8s")
    (root / "secret.yaml").symlink_to(outside / "k8s" / "pod.yaml")
    (root / "readme.txt").symlink_to(outside / "notes.txt")
    (root / "gone.yaml").symlink_to(tmp_path / "missing.yaml")
    (root / "alias.yaml").symlink_to(root / "real" / "pod.yaml")
    (root / "real-link").symlink_to("real")
    found = discover(root, [root])
    assert [s.path for s in found.sources] == ["real/pod.yaml"]
    assert problems(found) == {
        "folder": "is a symbolic link to outside the scanned root; not followed, so not checked",
        "secret.yaml": "is a symbolic link to outside the scanned root; not followed, so not checked",
        "gone.yaml": "is a symbolic link to a missing path; not followed, so not checked",
    }
    assert found.refused == ("alias.yaml", "folder", "gone.yaml", "readme.txt", "real-link", "secret.yaml")
    assert any("readme.txt" in note for note in found.notes)
    inside = next(note for note in found.notes if "inside the scanned root were not followed" in note)
    assert "alias.yaml" in inside and "real-link" in inside
    assert found.files == ("real/pod.yaml",)


def test_a_path_named_on_the_command_line_that_links_outside_is_a_config_error(tmp_path):
    (tmp_path / "outside.yaml").write_text(POD)
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.yaml").symlink_to(tmp_path / "outside.yaml")
    with pytest.raises(ConfigError, match="symbolic link to outside the scanned root"):
        discover(root, [root / "link.yaml"])


def test_the_gitignore_file_itself_is_not_followed_through_a_link(write, tmp_path):
    write("outside/ignore", "*.yaml\n")
    write("root/pod.yaml", POD)
    (tmp_path / "root" / ".gitignore").symlink_to(tmp_path / "outside" / "ignore")
    found = discover(tmp_path / "root", [tmp_path / "root"])
    assert [s.path for s in found.sources] == ["pod.yaml"] and ".gitignore" in found.refused


def git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
def test_in_a_git_checkout_tracked_files_are_scanned_whatever_gitignore_says(write, tmp_path):
    write(".gitignore", "build/\n*.local.yaml\n")
    write("build/tracked.yaml", POD)
    write("build/untracked.yaml", POD)
    write("app.local.yaml", POD)
    write("other.local.yaml", POD)
    write("vendor/pod.yaml", POD)
    write("build/.gitignore", "*.yaml\n")  # the only .gitignore a scan of build/ reads
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".gitignore", "vendor/pod.yaml")
    git(tmp_path, "add", "-f", "build/tracked.yaml", "app.local.yaml")
    found = discover(tmp_path, [tmp_path], ["vendor/"])
    assert [s.path for s in found.sources] == ["app.local.yaml", "build/tracked.yaml"]
    assert sorted(found.ignored) == ["build/.gitignore", "build/untracked.yaml", "other.local.yaml", "vendor"]
    sub = discover(tmp_path / "build", [tmp_path / "build"])  # git answers for a subfolder root too
    assert [s.path for s in sub.sources] == ["tracked.yaml"] and sub.ignored == ("untracked.yaml",)


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
def test_a_checkout_git_cannot_list_applies_no_gitignore(write, tmp_path):
    write(".gitignore", "*.yaml\n")
    write("pod.yaml", POD)
    git(tmp_path, "init", "-q")
    (tmp_path / ".git" / "index").write_bytes(b"not an index")
    found = discover(tmp_path, [tmp_path])
    assert [s.path for s in found.sources] == ["pod.yaml"] and not found.ignored
    (note,) = found.notes
    assert note.startswith("`git ls-files` failed: ")
    assert note.endswith(", so .gitignore files were not applied: every file was scanned")


def test_outside_git_gitignore_applies_as_written(write, tmp_path):
    write(".gitignore", "*.local.yaml\n")
    write("a.local.yaml", POD)
    assert discover(tmp_path, [tmp_path]).ignored == ("a.local.yaml",)


def test_a_file_past_the_size_limit_is_refused_unread(write, tmp_path):
    write("big.yaml", POD + "#" * 2_000 + "\n")
    write("blob.bin", "x" * 2_000)
    write("pod.yaml", POD)
    found = discover(tmp_path, [tmp_path], limits=Limits(max_file_bytes=1_000))
    assert [s.path for s in found.sources] == ["pod.yaml"]
    (problem,) = found.problems
    assert problem.path == "big.yaml"
    size = (tmp_path / "big.yaml").stat().st_size
    assert problem.message == (f"is {size:,} bytes, over the limit of 1,000 bytes a file; it was not read, so not "
                               "checked (raise `limits.max_file_bytes` in the ruleset to check it)")
    assert found.refused == ("big.yaml", "blob.bin")
    assert any("blob.bin" in note and "limits.max_file_bytes" in note for note in found.notes)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_text_with_a_byte_order_mark_is_decoded_and_checked(tmp_path, encoding):
    bom = {"utf-16-be": b"\xfe\xff"}.get(encoding, b"")
    (tmp_path / "pod.yaml").write_bytes(bom + POD.encode(encoding))
    (tmp_path / "list.json").write_bytes(bom + '{"apiVersion": "v1", "kind": "List", "items": []}'.encode(encoding))
    found = discover(tmp_path, [tmp_path])
    assert kinds(tmp_path) == {"pod.yaml": "kubernetes", "list.json": "kubernetes"}
    assert not found.problems and not found.notes
    assert found.sources[1].documents[0]["metadata"].line == 3


def test_undecodable_yaml_stays_a_problem(tmp_path):
    (tmp_path / "pod.yaml").write_bytes(b"apiVersion: v1\nkind: \xff\xfe\xfd\n")
    assert list(problems(discover(tmp_path, [tmp_path]))) == ["pod.yaml"]


def test_json_nested_too_deep_is_a_problem(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "deeper.json").write_text('{"a": ' * 300 + "1" + "}" * 300)
    found = discover(tmp_path, [tmp_path])
    assert problems(found)["deep.json"] == "is JSON nested too deep to read, so it could not be checked"
    assert "limits.max_yaml_depth" in problems(found)["deeper.json"]
    assert found.refused == ("deep.json", "deeper.json")


def test_yaml_past_the_limits_is_a_problem_with_its_line_and_refused(write, tmp_path):
    write("bomb.yaml", "apiVersion: v1\nkind: ConfigMap\n"
          'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
          + "".join(f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)))
    write("date.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  annotations:\n    until: 2025-02-30\n")
    found = discover(tmp_path, [tmp_path])
    bomb, date = found.problems
    assert (bomb.path, bomb.line) == ("bomb.yaml", 8) and "alias bomb" in bomb.message
    assert (date.path, date.line) == ("date.yaml", 5) and "day is out of range for month" in date.message
    assert found.refused == ("bomb.yaml",)
    assert not found.sources


def test_kustomizations_naming_paths_outside_the_root_are_problems_and_refused(write, tmp_path):
    write("outside/base/kustomization.yaml", "resources: [pod.yaml]\n")
    write("outside/secret.env", "A=1\n")
    root = tmp_path / "root"
    write("root/overlay/kustomization.yaml", """
        resources:
          - ../base
          - ../../outside/base
          - https://github.com/org/repo//deploy?ref=v1
          - github.com/org/repo/deploy?ref=v1
        patches:
          - path: ../../outside/patch.yaml
        configMapGenerator:
          - name: c
            files: [app.conf, key=../../outside/secret.env]
        openapi:
          path: /etc/schema.json
        """)
    write("root/base/kustomization.yaml", "resources: [pod.yaml]\n")
    write("root/base/pod.yaml", POD)
    (root / "linked").symlink_to(tmp_path / "outside" / "base")
    write("root/via-link/kustomization.yaml", "bases: [../linked]\n")
    found = discover(root, [root])
    got = sorted((p.path, p.line, p.message.split(" outside")[0].split(";")[0])
                 for p in found.problems if "kustomization" in p.message)
    assert got == [
        ("overlay/kustomization.yaml", 3, "kustomization names ../../outside/base"),
        ("overlay/kustomization.yaml", 4, "kustomization names the remote base https://github.com/org/repo//deploy?ref=v1"),
        ("overlay/kustomization.yaml", 5, "kustomization names the remote base github.com/org/repo/deploy?ref=v1"),
        ("overlay/kustomization.yaml", 7, "kustomization names ../../outside/patch.yaml"),
        ("overlay/kustomization.yaml", 10, "kustomization names ../../outside/secret.env"),
        ("overlay/kustomization.yaml", 12, "kustomization names /etc/schema.json"),
        ("via-link/kustomization.yaml", 1, "kustomization names ../linked"),
    ]
    assert "it was not rendered" in found.problems[-1].message
    assert {"overlay/kustomization.yaml", "via-link/kustomization.yaml"} <= set(found.refused)
    assert "base/kustomization.yaml" not in found.refused
    assert {"base/kustomization.yaml", "overlay/kustomization.yaml"} <= {s.path for s in found.sources}


def test_a_kustomization_without_a_suffix_is_recognised(write, tmp_path):
    write("Kustomization", "resources: [../x]\n")
    found = discover(tmp_path, [tmp_path])
    assert [(p.path, p.line) for p in found.problems] == [("Kustomization", 1)]


def test_a_folder_1200_levels_deep_is_walked_without_recursion(tmp_path):
    deep = str(tmp_path)
    for _ in range(1_200):  # one level at a time: pathlib's and os.makedirs' parents=True recurse
        deep += "/d"
        os.mkdir(deep)
    with open(deep + "/pod.yaml", "w") as stream:
        stream.write(POD)
    (tmp_path / ".gitignore").write_text("*.tmp\n")
    try:
        found = discover(tmp_path, [tmp_path], ["other/"])
        assert [s.kind.value for s in found.sources] == ["kubernetes"]
        assert not found.problems
    finally:  # shutil.rmtree, which cleans pytest's temporary folders, recurses: take it down level by level
        os.remove(deep + "/pod.yaml")
        while deep != str(tmp_path):
            os.rmdir(deep)
            deep = os.path.dirname(deep)


def test_a_path_past_path_max_is_a_problem_not_a_crash(tmp_path):
    """Built with directory descriptors: the whole path is longer than the system accepts in one call."""
    name = "n" * 200
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        for _ in range(25):
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        written = os.open("pod.yaml", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
        os.write(written, POD.encode())
        os.close(written)
    finally:
        os.close(fd)
    found = discover(tmp_path, [tmp_path])
    (problem,) = found.problems
    assert "the path is longer than the system allows" in problem.message
    assert problem.path.startswith(name + "/") and problem.path in found.refused


def test_json_without_a_byte_order_mark_is_read_in_the_encoding_json_allows(tmp_path):
    (tmp_path / "list.json").write_bytes('{"apiVersion": "v1", "kind": "List", "items": []}'.encode("utf-16-le"))
    assert kinds(tmp_path) == {"list.json": "kubernetes"}


def test_many_files_just_under_the_file_limit_cannot_add_up_past_the_scan_budget(tmp_path: Path) -> None:
    """Every file's documents are held at once: the scan's YAML has a budget of its own, named when spent."""
    body = "".join(f"k{i}: v\n" for i in range(2_000))  # 4,000 node marks a file
    for i in range(5):
        (tmp_path / f"cm{i}.yaml").write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\ndata:\n"
                                              + body.replace("k", "  k"))
    found = discover(tmp_path, [tmp_path], limits=Limits(max_scan_yaml_nodes=10_000))
    assert [s.path for s in found.sources] == ["cm0.yaml", "cm1.yaml"]
    assert found.refused == ("cm2.yaml", "cm3.yaml", "cm4.yaml")
    assert [p.path for p in found.problems] == ["cm2.yaml", "cm3.yaml", "cm4.yaml"]
    assert "past the limit of 10,000 nodes in all" in found.problems[0].message
    assert "`limits.max_scan_yaml_nodes`" in found.problems[0].message


def test_a_dockerfile_past_the_line_limit_is_named_and_refused(tmp_path: Path) -> None:
    """Dockerfile parsers are quadratic in lines: a huge one is a named problem, not minutes of parsing."""
    (tmp_path / "Dockerfile").write_text("FROM nginx:1.25\nRUN true \\\n" + "  && true \\\n" * 200 + "  && true\n")
    (tmp_path / "ok.Dockerfile").write_text("FROM nginx:1.25\n")
    found = discover(tmp_path, [tmp_path], limits=Limits(max_dockerfile_lines=100))
    assert [(p.path, p.message) for p in found.problems] == [("Dockerfile", (
        "is a Dockerfile of more than 100 lines, so it was not checked (raise `limits.max_dockerfile_lines` in the "
        "ruleset to check it)"))]
    assert found.refused == ("Dockerfile",) and [s.path for s in found.sources] == ["ok.Dockerfile"]


def test_a_key_written_twice_is_a_parse_problem_but_a_merged_key_may_be_overridden(tmp_path: Path) -> None:
    """Which value wins differs between parsers, so the gate refuses the ambiguity instead of guessing."""
    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
                                       "    - name: a\n      image: docker.io/nginx\n"
                                       "      image: registry.example.com/n\n")
    (tmp_path / ".gitlab-ci.yml").write_text(".base: &base\n  image: a\n  stage: test\njob:\n  <<: *base\n  image: b\n")
    found = discover(tmp_path, [tmp_path])
    assert [(p.path, p.line) for p in found.problems] == [("pod.yaml", 8)]
    assert "found duplicate key 'image'" in found.problems[0].message
    (job,) = [s for s in found.sources if s.path == ".gitlab-ci.yml"]
    assert job.documents[0]["job"] == {"image": "b", "stage": "test"}


def test_valid_json_that_python_will_not_read_is_a_problem_not_a_note(tmp_path: Path) -> None:
    """An integer of 5,000 digits is valid JSON; dropping the template with a note would be a silent pass."""
    (tmp_path / "stack.json").write_text('{"AWSTemplateFormatVersion": "2010-09-09", "Metadata": {"Build": '
                                         + "1" * 5000 + '}, "Resources": {}}')
    found = discover(tmp_path, [tmp_path])
    (problem,) = found.problems
    assert problem.path == "stack.json" and problem.message.startswith("is JSON that could not be read (")
    assert found.refused == ("stack.json",) and not found.notes


def test_a_link_inside_the_root_whose_target_would_not_be_checked_as_that_kind_is_a_problem(tmp_path: Path) -> None:
    """kubectl and GitHub follow links: a manifest behind pod.yaml -> notes/pod.txt must not pass unseen."""
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "pod.txt").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n")
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "pod.yaml").symlink_to(tmp_path / "notes" / "pod.txt")
    (tmp_path / "k8s" / "same.yaml").symlink_to(tmp_path / "k8s" / "real.yaml")
    (tmp_path / "k8s" / "real.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: q}\n")
    (tmp_path / "ci" / "workflows").mkdir(parents=True)
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "workflows").symlink_to(tmp_path / "ci" / "workflows", target_is_directory=True)
    found = discover(tmp_path, [tmp_path])
    assert {p.path: p.message.split(",")[0] for p in found.problems} == {
        ".github/workflows": "is a symbolic link to ci/workflows",
        "k8s/pod.yaml": "is a symbolic link to notes/pod.txt"}
    assert any("k8s/same.yaml" in note for note in found.notes)


def test_committed_files_in_tool_folders_are_scanned(tmp_path: Path) -> None:
    """node_modules/ or .terraform/ are skipped as tool output, but what git tracks there is the repository's."""
    for rel in ("deploy/node_modules/pod.yaml", ".terraform/main.tf", "other/node_modules/x.yaml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n" if rel.endswith("yaml")
                                    else 'resource "aws_s3_bucket" "b" {}\n')
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "-f", "deploy", ".terraform"], check=True)
    found = discover(tmp_path, [tmp_path])
    assert {s.path for s in found.sources} == {"deploy/node_modules/pod.yaml", ".terraform/main.tf"}
    assert {".git", "other/node_modules"} <= set(found.refused)


def test_a_gitignore_line_that_does_not_compile_is_left_out_with_a_note(write, tmp_path):
    """The repository being judged wrote its .gitignore: a bad line neither stops the scan nor hides files."""
    write(".gitignore", "build/\n\\\n")
    write("build/pod.yaml", "apiVersion: v1\nkind: Pod\n")
    write("pod.yaml", "apiVersion: v1\nkind: Pod\n")
    found = discover(tmp_path, [tmp_path])
    assert [s.path for s in found.sources] == ["pod.yaml"]
    assert ".gitignore:2: '\\\\' is not a valid gitignore pattern, so it was not applied (what it meant to leave out " \
           "was scanned)" in found.notes
