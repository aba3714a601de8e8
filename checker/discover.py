"""Paths -> targets with their kinds, honouring .gitignore files and the ruleset's ignores.

Classification is by path first, then by content: a YAML file is Kubernetes only if one of its
documents has `apiVersion` and `kind`; a workflow only under `.github/workflows`; Helm chart
templates are Go templates, not YAML, and are never parsed. YAML that does not parse is a
problem (fail closed), not a silent skip.

Discovery is the gate's only reader of the tree, so it reads nothing it cannot bound: it never
follows a symbolic link, never opens anything but a regular file (a FIFO would block), never
reads a file past `Limits.max_file_bytes`, and hands every path it refused to the engines in
`Discovery.refused`, so no runner reads them either. In a git checkout every tracked file is
scanned whatever `.gitignore` says: `.gitignore` hides only untracked files.
"""
from __future__ import annotations

import codecs
import dataclasses
import errno
import json
import os
import posixpath
import re
import stat
import subprocess
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pathspec
import yaml

from checker.change import Change
from checker.documents import (
    DEFAULT_LIMITS,
    Limits,
    YamlLimitError,
    YamlMap,
    load_yaml,
    node_marks,
    yaml_error_line,
    yaml_error_text,
)
from checker.errors import ConfigError
from checker.model import Kind, Problem

YAML_SUFFIXES = (".yaml", ".yml")
SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".terraform", "node_modules", "__pycache__", ".venv", ".checker-cache"})
# `Dockerfile.<variant>` is a Dockerfile; `dockerfile.py` or `Dockerfile.md` is not.
NOT_DOCKERFILES = (".dockerignore", ".py", ".md", ".txt", ".rst", ".sh", ".go", ".js", ".ts", ".rs", ".java",
                   ".json", ".yaml", ".yml", ".toml", ".j2", ".tpl", ".orig", ".bak", ".swp")
# Names a check (ours or Checkov's) would read: a link, special file or oversized file by such a
# name may hide a configuration, so refusing it is a problem, not a note.
CHECKED_SUFFIXES = (*YAML_SUFFIXES, ".json", ".tf", ".hcl", ".tfvars", ".template", ".tpl", ".bicep")
KUSTOMIZATIONS = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})
GIT_TIMEOUT = 30  # seconds for `git ls-files`; a checkout too large for that fails closed (see _Tracked)
_AZURE_MARKERS = frozenset({"trigger", "pr", "pool", "schedules", "resources"})
_PIPELINE_BODY = frozenset({"stages", "jobs", "steps", "extends"})
# Byte-order marks, longest first (UTF-32 LE's begins like UTF-16 LE's): (mark, codec, name).
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32", "UTF-32"), (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
         (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 with a byte-order mark"),
         (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"), (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"))
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclasses.dataclass(frozen=True)
class Source:
    """A file the scan covers: its kind and, for YAML kinds, its parsed documents."""

    path: str
    kind: Kind
    documents: tuple[Any, ...] = ()
    text: str = ""
    encoding: str = ""  # the encoding its byte-order mark names ("UTF-16", ...); "" without one


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
    refused: tuple[str, ...] = ()  # files and folders no engine may read or walk (links, FIFOs, past limits)
    change: Change = dataclasses.field(default_factory=Change)  # the change judged (set by scan: change.detect)

    def of_kind(self, *kinds: Kind) -> list[Source]:
        return [s for s in self.sources if s.kind in kinds]


def discover(root: Path, paths: Sequence[Path], ignore: Sequence[str] = (), ignore_base: str = "",
             limits: Limits = DEFAULT_LIMITS) -> Discovery:
    """Walk `paths` (directories or files under `root`) and classify every file.

    `ignore` holds gitignore-style patterns relative to `ignore_base` (the ruleset's folder),
    or to `root` when the root is not inside it.
    """
    walk = _Walk(root, _Ignores(root, ignore, ignore_base), limits)
    whole_root = len(paths) == 1 and paths[0].is_dir() and paths[0].resolve() == root.resolve()
    for path in paths:
        walk.add(path)
    files = sorted(set(walk.files))
    charts = _chart_roots(files)
    sources: list[Source] = []
    unknown_json = []
    budget = _Budget(limits.max_scan_yaml_nodes)
    for rel in files:
        found = _classify(walk.real_root, rel, charts, limits, budget)
        if found.problem:
            walk.problems.append(found.problem)
        if found.refuse:
            walk.refused.append(rel)
        elif found.kind is not None and not found.problem:
            sources.append(Source(rel, found.kind, found.documents, found.text or "", found.encoding))
        elif rel.endswith(".json") and found.text is None:
            unknown_json.append(rel)
    for source in sources:
        if source.kind is Kind.KUSTOMIZE:
            escapes = list(_kustomize_escapes(walk.real_root, source))
            walk.problems.extend(escapes)
            if escapes:
                walk.refused.append(source.path)
    refused = set(walk.refused)  # a refused kustomization stays a source: our checks read only the file itself
    if unknown_json:
        walk.quiet.setdefault(".json file(s) are not plain JSON (comments?) and match no kind", []).extend(unknown_json)
    walk.notes.extend(walk.ignores.notes)
    if walk.ignores.failure:
        walk.notes.append(f"{walk.ignores.failure}, so .gitignore files were not applied: every file was scanned")
    notes = [*walk.notes, *(f"{len(rels)} {reason}: " + ", ".join(rels[:5]) + (" ..." if len(rels) > 5 else "")
                            for reason, rels in walk.quiet.items())]
    kept = tuple(f for f in files if f not in refused)
    return Discovery(root, tuple(sources), kept, tuple(walk.problems), tuple(notes),
                     () if whole_root else kept, tuple(walk.ignores.pruned), tuple(sorted(refused)))


def is_checked_name(rel: str) -> bool:
    """Whether a file by this name would be read by a check (ours or Checkov's)."""
    name = posixpath.basename(rel)
    return name in KUSTOMIZATIONS or name.lower().endswith(CHECKED_SUFFIXES) or path_kind(rel) is not None


def within(real_root: str, real: str) -> bool:
    """Whether `real` is `real_root` or below it (both with every link already resolved)."""
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


class _Walk:
    """One walk of the tree: the files to classify, and every path refused on the way."""

    def __init__(self, root: Path, ignores: _Ignores, limits: Limits) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.ignores = ignores
        self.limits = limits
        self.files: list[str] = []
        self.refused: list[str] = []
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.quiet: dict[str, list[str]] = {}  # reason -> paths refused with only a note

    def add(self, path: Path) -> None:
        """A path named on the command line: a folder is walked, a file is scanned even when ignored."""
        if not os.path.lexists(path):
            raise ConfigError(f"{path}: no such file or directory")
        real = os.path.realpath(path)
        if not within(self.real_root, real):
            if within(os.path.abspath(self.root), os.path.abspath(path)):
                raise ConfigError(f"{path}: is (or passes through) a symbolic link to outside the scanned root "
                                  f"{self.root}; not followed, so not checked")
            raise ConfigError(f"{path}: is outside the scan root {self.root}; scan it from a folder that holds it")
        rel = Path(os.path.relpath(real, self.real_root)).as_posix()
        if os.path.isdir(real):
            self._walk("" if rel == "." else rel)
            return
        try:
            self._file(rel, os.lstat(real))
        except OSError as error:
            self._unreadable(rel, error)

    def _walk(self, start: str) -> None:
        """Iterative, so any depth of folders costs no recursion; entries come from lstat, never open."""
        parts = start.split("/") if start else []
        for depth in range(len(parts) + 1):  # .gitignore files above the start folder apply too
            self.ignores.load("/".join(parts[:depth]))
        stack = [start]
        while stack:
            rel_dir = stack.pop()
            if rel_dir != start:
                self.ignores.load(rel_dir)
            try:
                with os.scandir(os.path.join(self.real_root, rel_dir)) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
            except OSError as error:
                self._unreadable(rel_dir or ".", error, folder=True)
                continue
            folders = []
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    if self._entry(entry, rel):
                        folders.append(rel)
                except OSError as error:
                    self._unreadable(rel, error)
            stack.extend(reversed(folders))

    def _entry(self, entry: os.DirEntry[str], rel: str) -> bool:
        """Sort one directory entry; True when it is a folder to walk."""
        if entry.is_symlink():
            if not self.ignores(rel, False):
                self._link(rel)
            return False
        if entry.is_dir(follow_symlinks=False):
            if entry.name in SKIP_DIRS and (entry.name == ".git" or self.ignores.tracked.hides(rel, True)):
                self.refused.append(rel)  # tool folders, unless committed: Checkov's walk must skip them too
                return False
            return not self.ignores(rel, True)
        if not self.ignores(rel, False):
            self._file(rel, entry.stat(follow_symlinks=False))
        return False

    def _file(self, rel: str, status: os.stat_result) -> None:
        if not stat.S_ISREG(status.st_mode):
            self._refuse(rel, is_checked_name(rel), f"is {_special(status.st_mode)}, not a regular file; it was "
                         "not read, so not checked", "special file(s) (FIFOs, sockets, devices) were not read")
        elif status.st_size > self.limits.max_file_bytes:
            limit = self.limits.max_file_bytes
            self._refuse(rel, is_checked_name(rel), _too_big(f"is {status.st_size:,} bytes, over", limit),
                         f"file(s) over the size limit of {limit:,} bytes (`limits.max_file_bytes`) were not read")
        else:
            self.files.append(rel)

    def _link(self, rel: str) -> None:
        """A symbolic link is never followed; one leaving the root may hide configuration."""
        target = os.path.realpath(os.path.join(self.real_root, rel))
        exists = os.path.exists(target)
        if exists and within(self.real_root, target):  # its target is scanned under its own name...
            mine = os.path.relpath(target, self.real_root).replace(os.sep, "/")
            if os.path.isdir(target):  # ...unless the link's path decides the kind (.github/workflows -> ci/)
                hides = path_kind(rel + "/x.yml") != path_kind(mine + "/x.yml")
            else:
                hides = is_checked_name(rel) and (not is_checked_name(mine) or path_kind(rel) != path_kind(mine))
            self._refuse(rel, hides, f"is a symbolic link to {mine}, which is not checked as the same kind of file "
                         "under its own name; not followed, so not checked", "symbolic link(s) inside the scanned "
                         "root were not followed (their targets are scanned under their own names)")
            return
        where = "outside the scanned root" if exists else "a missing path"
        self._refuse(rel, os.path.isdir(target) or is_checked_name(rel),
                     f"is a symbolic link to {where}; not followed, so not checked",
                     "symbolic link(s) to outside the scanned root or to missing paths were not followed")

    def _unreadable(self, rel: str, error: OSError, folder: bool = False) -> None:
        """A path the walk cannot list or stat (permissions, a path past PATH_MAX): a problem, never a crash."""
        cause = error.strerror or str(error)
        if error.errno == errno.ENAMETOOLONG:
            cause += ": the path is longer than the system allows"
        what = "nothing in it was" if folder else "it was not"
        self._refuse(rel, True, f"cannot be read ({cause}), so {what} checked", "")

    def _refuse(self, rel: str, problem: bool, message: str, reason: str) -> None:
        self.refused.append(rel)
        if problem:
            self.problems.append(Problem(message, rel))
        else:
            self.quiet.setdefault(reason, []).append(rel)


def _too_big(what: str, limit: int) -> str:
    """The problem of a file past `limits.max_file_bytes`, after `what` ("is N bytes, over")."""
    return (f"{what} the limit of {limit:,} bytes a file; it was not read, so not checked (raise "
            "`limits.max_file_bytes` in the ruleset to check it)")


def _special(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_bytes(path: str, limit: int) -> bytes:
    """A regular file's bytes, opened without following a link or blocking on a FIFO; at most `limit`+1."""
    descriptor = os.open(path, _OPEN_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(0, "not a regular file")
        with os.fdopen(descriptor, "rb", closefd=False) as stream:
            return stream.read(limit + 1)
    finally:
        os.close(descriptor)


def decode(data: bytes) -> str:
    """Text of a file: UTF-8, or UTF-8/16/32 led by a byte-order mark; raises UnicodeDecodeError."""
    mark = _byte_order_mark(data)
    return data.decode(mark[0] if mark else "utf-8")


def _byte_order_mark(data: bytes) -> tuple[str, str] | None:
    """(codec, name) of the byte-order mark `data` starts with, if any."""
    return next(((codec, name) for bom, codec, name in _BOMS if data.startswith(bom)), None)


class _Tracked:
    """Which paths git tracks under the root, asked once and only when a .gitignore rule matches.

    `.gitignore` hides only untracked files, so a tracked file it matches is still scanned.
    Outside a git checkout `.gitignore` applies as written; in one that git cannot list (git
    missing, timed out, or refusing the folder), `.gitignore` is not applied at all: scanning
    more fails closed, skipping a committed file would not.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.asked = False
        self.files: frozenset[str] | None = None
        self.folders: frozenset[str] = frozenset()
        self.failure = ""

    def ask(self) -> None:
        self.asked = True
        command = ["git", "-c", "core.fsmonitor=false", "-C", str(self.root), "ls-files", "-z", "--cached", "--", "."]
        try:
            done = subprocess.run(command, capture_output=True, timeout=GIT_TIMEOUT, check=False,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.failure = f"`git ls-files` took more than {GIT_TIMEOUT} s"
            return
        except OSError as error:
            if checkout_top(self.root) is not None:
                self.failure = f"git could not be run ({error.strerror})"
            return
        if done.returncode:
            stderr = done.stderr.decode("utf-8", "replace").strip()
            if "not a git repository" not in stderr:
                self.failure = f"`git ls-files` failed: {stderr.splitlines()[0] if stderr else done.returncode}"
            return
        self.files = frozenset(os.fsdecode(p) for p in done.stdout.split(b"\0") if p)
        self.folders = frozenset(posixpath.dirname(f)[:i] for f in self.files
                                 for i in _slashes(posixpath.dirname(f)))

    def hides(self, rel: str, is_dir: bool) -> bool:
        """Whether a .gitignore match may hide `rel`: it is untracked (holds nothing tracked)."""
        if not self.asked:
            self.ask()
        if self.failure:
            return False
        if self.files is None:
            return True
        return rel not in self.folders if is_dir else rel not in self.files


def _slashes(folder: str) -> Iterator[int]:
    """The lengths of `folder` and of each of its parents (`a/b/c` -> 1, 3, 5)."""
    for i, char in enumerate(folder):
        if char == "/":
            yield i
    if folder:
        yield len(folder)


def checkout_top(folder: Path) -> Path | None:
    """The top of the git checkout holding `folder` (links resolved), or None outside one."""
    real = Path(os.path.realpath(folder))
    return next((top for top in (real, *real.parents) if (top / ".git").exists()), None)


def gitignore(lines: Sequence[str]) -> tuple[pathspec.GitIgnoreSpec, list[int]]:
    """`lines` as one gitignore spec, and the indexes of the lines that are no valid pattern (a lone
    `\\`, say), which are left out: a bad pattern in a file the repository wrote must not stop the scan."""
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines), []
    except ValueError:  # pathspec's GitIgnorePatternError
        pass
    invalid = []
    for i, line in enumerate(lines):
        try:
            pathspec.GitIgnoreSpec.from_lines([line])
        except ValueError:
            invalid.append(i)
    return pathspec.GitIgnoreSpec.from_lines([x for i, x in enumerate(lines) if i not in invalid]), invalid


class _Ignores:
    """gitignore files (nested, each relative to its folder) plus the ruleset's ignore globs."""

    def __init__(self, root: Path, patterns: Sequence[str], base: str) -> None:
        self.root = os.path.realpath(root)
        self.pruned: list[str] = []
        self.notes: list[str] = []
        self.specs: list[tuple[str, pathspec.GitIgnoreSpec]] = []
        self.tracked = _Tracked(root)
        self.prefix = ""  # the root's path below the ruleset's folder
        real_root, real_base = Path(self.root), Path(base).resolve() if base else None
        if real_base and real_root != real_base and real_root.is_relative_to(real_base):
            self.prefix = real_root.relative_to(real_base).as_posix() + "/"
        self.ruleset_spec = gitignore(patterns)[0] if patterns else None  # checked when the ruleset loaded

    def load(self, rel_dir: str) -> None:
        """Read `rel_dir/.gitignore` if it is a regular file (a link to it is refused, never followed)."""
        path = os.path.join(self.root, rel_dir, ".gitignore")
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return
            data = read_bytes(path, DEFAULT_LIMITS.max_file_bytes)
        except OSError:
            return
        lines = data.decode("utf-8", errors="replace").splitlines()
        spec, invalid = gitignore(lines)
        self.specs.append((rel_dir, spec))
        shown = posixpath.join(rel_dir, ".gitignore")
        self.notes.extend(f"{shown}:{i + 1}: {lines[i][:80]!r} is not a valid gitignore pattern, so it was not "
                          "applied (what it meant to leave out was scanned)" for i in invalid)

    def __call__(self, rel: str, is_dir: bool) -> bool:
        if self.ruleset_spec and self.ruleset_spec.match_file(self.prefix + rel + ("/" if is_dir else "")):
            self.pruned.append(rel)
            return True
        for base, spec in self.specs:
            if base and not rel.startswith(base + "/"):
                continue
            sub = rel[len(base) + 1:] if base else rel
            if spec.match_file(sub + "/" if is_dir else sub):
                if not self.tracked.hides(rel, is_dir):
                    return False
                self.pruned.append(rel)
                return True
        return False

    @property
    def failure(self) -> str:
        """Why git could not say which files it tracks ('' when it could, or when this is no checkout)."""
        return self.tracked.failure


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
    if lower.endswith((".tf", ".tf.json")):
        return Kind.TERRAFORM
    if (lower in ("dockerfile", "containerfile") or lower.startswith("dockerfile.")
            or lower.endswith(".dockerfile")) and not lower.endswith(NOT_DOCKERFILES):
        return Kind.DOCKERFILE
    if name == "Kustomization":
        return Kind.KUSTOMIZE
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


@dataclasses.dataclass(frozen=True)
class _Classified:
    """What one file is: its kind and documents, or the problem that stops it being checked."""

    kind: Kind | None = None
    documents: tuple[Any, ...] = ()
    text: str | None = ""  # None: a .json file that is not plain JSON
    problem: Problem | None = None
    refuse: bool = False  # past a limit: no engine may read it
    encoding: str = ""  # see Source.encoding


@dataclasses.dataclass
class _Budget:
    """What is left of the scan's `max_scan_yaml_nodes`, spent file by file as they are parsed."""

    left: int

    def spend(self, text: str) -> bool:
        cost = node_marks(text)
        if cost > self.left:
            return False
        self.left -= cost
        return True


def _classify(real_root: str, rel: str, charts: Sequence[str], limits: Limits,
              budget: _Budget) -> _Classified:
    chart = _chart_of(rel, charts)
    if chart is not None and (rel.startswith(f"{chart}/templates/".lstrip("/")) or rel.endswith(".tpl")):
        return _Classified(Kind.HELM)
    kind = path_kind(rel)
    lower = rel.lower()
    is_yaml = lower.endswith(YAML_SUFFIXES) or kind is Kind.KUSTOMIZE
    if not is_yaml and not lower.endswith(".json") and kind is None:
        return _Classified()
    try:
        data = read_bytes(os.path.join(real_root, rel), limits.max_file_bytes)
    except OSError as error:
        return _Classified(problem=Problem(f"cannot be read: {error.strerror or error}", rel), refuse=True)
    if len(data) > limits.max_file_bytes:  # it grew since it was listed
        return _Classified(problem=Problem(_too_big("is over", limits.max_file_bytes), rel), refuse=True)
    try:
        text = decode(data) if is_yaml or not lower.endswith(".json") else data.decode(json.detect_encoding(data))
    except UnicodeDecodeError:
        if is_yaml or kind is not None:
            return _Classified(problem=Problem("is not UTF-8 (or UTF-16/32 with a byte-order mark) text, a binary "
                                               "file?, so it could not be checked", rel))
        return _Classified(text=None)
    if "\x00" in text and (is_yaml or kind is not None):
        return _Classified(problem=Problem("holds NUL bytes (a binary file?), so it could not be checked", rel))
    if kind is Kind.DOCKERFILE and text.count("\n") > limits.max_dockerfile_lines:
        return _Classified(problem=Problem(
            f"is a Dockerfile of more than {limits.max_dockerfile_lines:,} lines, so it was not checked (raise "
            "`limits.max_dockerfile_lines` in the ruleset to check it)", rel), refuse=True)
    encoding = (_byte_order_mark(data) or ("", ""))[1]
    if kind in (Kind.TERRAFORM, Kind.DOCKERFILE) and not lower.endswith(".json"):
        return _Classified(kind, (), text, encoding=encoding)
    if not is_yaml:
        try:
            json.loads(text)
        except RecursionError:
            return _Classified(problem=Problem("is JSON nested too deep to read, so it could not be checked", rel),
                               refuse=True)
        except json.JSONDecodeError:
            return _Classified(kind, (), None, encoding=encoding)
        except ValueError as error:  # valid JSON Python refuses: an integer of more than 4,300 digits
            return _Classified(problem=Problem(f"is JSON that could not be read ({str(error)[:120]}), so it could "
                                               "not be checked", rel), refuse=True)
    if not budget.spend(text):
        return _Classified(problem=Problem(
            f"was not read: the scan's YAML and JSON are past the limit of {limits.max_scan_yaml_nodes:,} nodes in "
            "all, so it was not checked; scan fewer folders at once, or raise `limits.max_scan_yaml_nodes` in the "
            "ruleset", rel), refuse=True)
    try:
        docs = tuple(load_yaml(text, strict=True, limits=limits))
    except YamlLimitError as error:
        return _Classified(problem=Problem(
            f"was refused, {yaml_error_text(error)}, so it was not checked; if the file is genuine, raise that "
            "limit in the ruleset's `limits`", rel, yaml_error_line(error)), refuse=True)
    except yaml.YAMLError as error:
        what = "is not valid YAML" if is_yaml else "is JSON that could not be read"
        return _Classified(problem=Problem(
            f"{what} ({yaml_error_text(error)}), so it could not be checked; "
            "fix it, or list it under `ignore` in the ruleset", rel, yaml_error_line(error)))
    if chart is not None:
        return _Classified(Kind.HELM, docs, text, encoding=encoding)
    return _Classified(kind or content_kind(docs), docs, text, encoding=encoding)


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


# Kustomization fields that name local files or folders kustomize reads while rendering
# (helmCharts are rendered by Helm, outside this check).
_KUSTOMIZE_LISTS = ("resources", "bases", "components", "crds", "patchesStrategicMerge", "generators",
                    "transformers", "validators")
_KUSTOMIZE_ENTRIES = ("patches", "patchesJson6902", "replacements")  # lists of {path: ...}
_KUSTOMIZE_GENERATORS = ("configMapGenerator", "secretGenerator")  # lists of {files, envs, env}


def _kustomize_escapes(real_root: str, source: Source) -> Iterator[Problem]:
    """A problem for every path a kustomization names that leaves the root, on disk or remote.

    A remote base (`https://...`, `git@host:...`, `github.com/org/repo//dir`) would be fetched
    at render time: content that is not in the repository, which the gate cannot vouch for.
    """
    folder = os.path.join(real_root, posixpath.dirname(source.path))
    for doc in source.documents:
        if isinstance(doc, YamlMap):
            for value, line in _kustomize_paths(doc):
                local = urllib.parse.urlsplit(value).path if value.startswith("file://") else value
                target = os.path.realpath(os.path.join(folder, local))
                if _remote(value) and not os.path.lexists(target):
                    yield Problem(f"kustomization names the remote base {value}; remote bases are not fetched, so "
                                  "it was not rendered and nothing it names was checked (vendor the base into the "
                                  "repository)", source.path, line)
                elif not within(real_root, target):
                    yield Problem(f"kustomization names {value} outside the scanned root; it was not rendered, "
                                  "so nothing it names was checked", source.path, line)


def _kustomize_paths(doc: YamlMap) -> Iterator[tuple[str, int]]:
    """(path, line) of every file or folder a kustomization names (remote addresses too)."""
    for key in _KUSTOMIZE_LISTS:
        yield from _strings(doc.get(key), doc.line_of(key))
    for key in (*_KUSTOMIZE_ENTRIES, "openapi"):
        entries = doc.get(key)
        for entry in entries if isinstance(entries, list) else [entries]:
            if isinstance(entry, YamlMap):
                yield from _strings([entry.get("path")], entry.line_of("path"))
    for key in _KUSTOMIZE_GENERATORS:
        generators = doc.get(key)
        for generator in generators if isinstance(generators, list) else ():
            if isinstance(generator, YamlMap):
                for field in ("files", "envs", "env"):
                    for value, line in _strings(generator.get(field), generator.line_of(field)):
                        yield (value.split("=", 1)[-1] if field == "files" else value), line  # `[key=]path`


def _strings(values: Any, line: int) -> Iterator[tuple[str, int]]:
    """The one-line strings among `values` (a list, or one value), each with its line (inline patches are not paths)."""
    items = values if isinstance(values, list) else [values]
    lines = getattr(items, "lines", None) or [line] * len(items)
    for value, at in zip(items, lines, strict=True):
        if isinstance(value, str) and value and "\n" not in value:
            yield value, at


def _remote(value: str) -> bool:
    """Whether kustomize would fetch `value` from elsewhere (a URL, `git@host:`, a `host.name/...` address)."""
    scheme = urllib.parse.urlsplit(value).scheme
    return (bool(scheme) and scheme != "file") or value.startswith("git@") or bool(_HOST_PATH.match(value))


_HOST_PATH = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:[0-9]+)?/")  # github.com/org/repo//dir?ref=v1
