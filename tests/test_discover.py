"""Discovery: kinds by path and content, .gitignore honoured, nothing unparseable passed over silently."""
from __future__ import annotations

from pathlib import Path

from checker.discover import discover


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
        "main.tf": "terraform", "app/Dockerfile": "dockerfile", "app/build.dockerfile": "dockerfile", "app/Dockerfile.alpine": "dockerfile",
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
