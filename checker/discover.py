"""Paths -> targets with their kinds, honouring .gitignore files and the ruleset's ignores.

Classification is by path first, then by content: a YAML file is Kubernetes only if one of its
documents has `apiVersion` and `kind`; a workflow only under `.github/workflows`; Helm chart
templates are Go templates, not YAML, and are never parsed. YAML that does not parse is a
problem (fail closed), not a silent skip.
"""
from __future__ import annotations

import dataclasses
import json
import os
import posixpath
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pathspec
import yaml

from checker.documents import load_yaml, yaml_error_line, yaml_error_text
from checker.errors import ConfigError
from checker.model import Kind, Problem

YAML_SUFFIXES = (".yaml", ".yml")
SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".terraform", "node_modules", "__pycache__", ".venv"})
# `Dockerfile.<variant>` is a Dockerfile; `dockerfile.py` or `Dockerfile.md` is not.
NOT_DOCKERFILES = (".dockerignore", ".py", ".md", ".txt", ".rst", ".sh", ".go", ".js", ".ts", ".rs", ".java",
                   ".json", ".yaml", ".yml", ".toml", ".j2", ".tpl", ".orig", ".bak", ".swp")
_AZURE_MARKERS = frozenset({"trigger", "pr", "pool", "schedules", "resources"})
_PIPELINE_BODY = frozenset({"stages", "jobs", "steps", "extends"})


@dataclasses.dataclass(frozen=True)
class Source:
    """A file the scan covers: its kind and, for YAML kinds, its parsed documents."""

    path: str
    kind: Kind
    documents: tuple[Any, ...] = ()
    text: str = ""


@dataclasses.dataclass(frozen=True)
class Discovery:
    """What discovery found under the scan root."""

    root: Path
    sources: tuple[Source, ...]
    files: tuple[str, ...]
    problems: tuple[Problem, ...]
    notes: tuple[str, ...]
    explicit_files: tuple[str, ...] = ()  # set unless exactly the root folder was scanned
    ignored: tuple[str, ...] = ()  # folders and files pruned by .gitignore or the ruleset

    def of_kind(self, *kinds: Kind) -> list[Source]:
        return [s for s in self.sources if s.kind in kinds]


def discover(root: Path, paths: Sequence[Path], ignore: Sequence[str] = (), ignore_base: str = "") -> Discovery:
    """Walk `paths` (directories or files under `root`) and classify every file.

    `ignore` holds gitignore-style patterns relative to `ignore_base` (the ruleset's folder),
    or to `root` when the root is not inside it.
    """
    ignored = _Ignores(root, ignore, ignore_base)
    files: list[str] = []
    whole_root = len(paths) == 1 and paths[0].is_dir() and paths[0].resolve() == root.resolve()
    for path in paths:
        if not path.exists():
            raise ConfigError(f"{path}: no such file or directory")
        if path.is_dir():
            files.extend(_walk(root, path, ignored))
        else:
            rel = _relative(root, path)
            files.append(rel)  # a file named explicitly is scanned even when ignored
    files = sorted(set(files))
    charts = _chart_roots(files)
    sources: list[Source] = []
    problems: list[Problem] = []
    notes: list[str] = []
    unknown_json = []
    for rel in files:
        kind, docs, text, problem = _classify(root, rel, charts)
        if problem:
            problems.append(problem)
        elif kind is not None:
            sources.append(Source(rel, kind, docs, text))
        elif rel.endswith(".json") and text is None:
            unknown_json.append(rel)
    if unknown_json:
        notes.append(f"{len(unknown_json)} .json file(s) are not plain JSON (comments?) and match no kind: "
                     + ", ".join(unknown_json[:5]) + (" ..." if len(unknown_json) > 5 else ""))
    return Discovery(root, tuple(sources), tuple(files), tuple(problems), tuple(notes),
                     () if whole_root else tuple(files), tuple(ignored.pruned))


def _relative(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise ConfigError(f"{path}: is outside the scan root {root}; scan it from a folder that holds it") from None


class _Ignores:
    """gitignore files (nested, each relative to its folder) plus the ruleset's ignore globs."""

    def __init__(self, root: Path, patterns: Sequence[str], base: str) -> None:
        self.root = root
        self.pruned: list[str] = []
        self.specs: list[tuple[str, pathspec.PathSpec]] = []
        self.prefix = ""  # the root's path below the ruleset's folder
        real_root, real_base = root.resolve(), Path(base).resolve() if base else None
        if real_base and real_root != real_base and real_root.is_relative_to(real_base):
            self.prefix = real_root.relative_to(real_base).as_posix() + "/"
        self.ruleset_spec = pathspec.GitIgnoreSpec.from_lines(patterns) if patterns else None

    def load(self, rel_dir: str) -> None:
        gitignore = self.root / rel_dir / ".gitignore"
        if gitignore.is_file():
            lines = gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
            self.specs.append((rel_dir, pathspec.GitIgnoreSpec.from_lines(lines)))

    def __call__(self, rel: str, is_dir: bool) -> bool:
        if self.ruleset_spec and self.ruleset_spec.match_file(self.prefix + rel + ("/" if is_dir else "")):
            self.pruned.append(rel)
            return True
        for base, spec in self.specs:
            if base and not rel.startswith(base + "/"):
                continue
            sub = rel[len(base) + 1:] if base else rel
            if spec.match_file(sub + "/" if is_dir else sub):
                self.pruned.append(rel)
                return True
        return False


def _walk(root: Path, start: Path, ignored: _Ignores) -> Iterator[str]:
    start_rel = _relative(root, start)
    start_rel = "" if start_rel == "." else start_rel
    # .gitignore files above the start folder apply too
    parts = start_rel.split("/") if start_rel else []
    for depth in range(len(parts) + 1):
        ignored.load("/".join(parts[:depth]))
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(start.resolve(), onerror=_raise):
        rel_dir = Path(dirpath).relative_to(real_root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        if rel_dir != start_rel:
            ignored.load(rel_dir)
        keep = []
        for name in sorted(dirnames):
            rel = posixpath.join(rel_dir, name)
            if name in SKIP_DIRS or ignored(rel, True) or os.path.islink(os.path.join(dirpath, name)):
                continue
            keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = posixpath.join(rel_dir, name)
            if not ignored(rel, False) and not os.path.islink(os.path.join(dirpath, name)):
                yield rel


def _raise(error: OSError) -> None:
    raise ConfigError(f"{error.filename}: cannot be read: {error.strerror}")


def _chart_roots(files: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(posixpath.dirname(f) for f in files if posixpath.basename(f) == "Chart.yaml"))


def _chart_of(rel: str, charts: Sequence[str]) -> str | None:
    for chart in charts:
        if not chart or rel.startswith(chart + "/"):
            return chart
    return None


def path_kind(rel: str) -> Kind | None:
    """The kind a path alone decides, or None when content must decide."""
    name = posixpath.basename(rel)
    lower = name.lower()
    if lower.endswith(".tf") or lower.endswith(".tf.json"):
        return Kind.TERRAFORM
    if (lower in ("dockerfile", "containerfile") or lower.startswith("dockerfile.")
            or lower.endswith(".dockerfile")) and not lower.endswith(NOT_DOCKERFILES):
        return Kind.DOCKERFILE
    if not lower.endswith(YAML_SUFFIXES):
        return None
    if lower.startswith(("docker-compose", "compose.")):
        return Kind.DOCKER_COMPOSE
    if "/.github/workflows/" in "/" + rel:
        return Kind.GITHUB_ACTIONS
    if lower.endswith(".gitlab-ci.yml") or lower == ".gitlab-ci.yml" or "/.gitlab/ci/" in "/" + rel:
        return Kind.GITLAB_CI
    if lower.startswith("azure-pipelines") or "/.azure-pipelines/" in "/" + rel or "/.azuredevops/" in "/" + rel:
        return Kind.AZURE_PIPELINES
    if lower in ("kustomization.yaml", "kustomization.yml"):
        return Kind.KUSTOMIZE
    return None


def _classify(root: Path, rel: str, charts: Sequence[str]) -> tuple[Kind | None, tuple[Any, ...], Any, Problem | None]:
    """(kind, documents, text, problem) of one file."""
    chart = _chart_of(rel, charts)
    if chart is not None and (rel.startswith(f"{chart}/templates/".lstrip("/")) or rel.endswith(".tpl")):
        return Kind.HELM, (), "", None
    kind = path_kind(rel)
    lower = rel.lower()
    is_yaml = lower.endswith(YAML_SUFFIXES)
    if not is_yaml and not lower.endswith(".json") and kind is None:
        return None, (), "", None
    try:
        text = (root / rel).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        if is_yaml or kind is not None:
            return None, (), "", Problem("is not UTF-8 text (a binary file?), so it could not be checked", rel)
        return None, (), None, None
    except OSError as error:
        return None, (), "", Problem(f"cannot be read: {error.strerror}", rel)
    if "\x00" in text and (is_yaml or kind is not None):
        return None, (), "", Problem("holds NUL bytes (a binary file?), so it could not be checked", rel)
    if kind in (Kind.TERRAFORM, Kind.DOCKERFILE) and not lower.endswith(".json"):
        return kind, (), text, None
    if is_yaml:
        try:
            docs = tuple(load_yaml(text))
        except yaml.YAMLError as error:
            return None, (), "", Problem(
                f"is not valid YAML ({yaml_error_text(error)}), so it could not be checked; "
                "fix it, or list it under `ignore` in the ruleset", rel, yaml_error_line(error))
    else:
        try:
            json.loads(text)
        except ValueError:
            return kind, (), None, None
        try:
            docs = tuple(load_yaml(text))
        except yaml.YAMLError:
            docs = ()
    if chart is not None:
        return Kind.HELM, docs, text, None
    if kind is None:
        kind = content_kind(docs)
    return kind, docs, text, None


def content_kind(docs: Sequence[Any]) -> Kind | None:
    """The kind the content of a YAML/JSON file shows."""
    maps = [d for d in docs if isinstance(d, dict)]
    if any("apiVersion" in d and "kind" in d for d in maps):
        return Kind.KUBERNETES
    for d in maps:
        if "AWSTemplateFormatVersion" in d or isinstance(d.get("Resources"), dict):
            return Kind.CLOUDFORMATION  # as Checkov decides: a mapping of Resources
        keys = set(d)
        if keys & _AZURE_MARKERS and keys & _PIPELINE_BODY and "on" not in keys and True not in keys:
            return Kind.AZURE_PIPELINES
    return None
