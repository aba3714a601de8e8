"""The Checkov engine: runs real Checkov runners for the frameworks present and normalises results.

Each framework's runner runs in its own forked worker process (checker.engines.workers):
Checkov's global state stays out of ours, frameworks run in parallel (at most one worker per
CPU), and every worker runs under a memory cap and a deadline, so a runner that crashes, hangs
or balloons costs its own results only, named with the cause. A framework Checkov runs file by
file is then re-run one file per worker, so every other file keeps its results and only the
culprit is named. A runner that
raises is narrowed down to the file the same way, inside its worker. Parse errors Checkov
counts and skips become Problems (the scan fails closed). Paths discovery refused (symbolic
links, FIFOs, files past our limits) are kept away from every runner.
"""
from __future__ import annotations

import collections
import copy
import dataclasses
import importlib
import importlib.metadata
import json
import logging
import operator
import os
import posixpath
import re
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from checker import fixes, settings
from checker.cache import Cache, Digests, default_folder, key
from checker.discover import Discovery, within
from checker.documents import TaggedStr, YamlMap
from checker.engines import workers
from checker.engines.base import Outcome
from checker.model import Finding, Kind, Location, Problem, Rule, Severity, Suppression
from checker.progress import Progress
from checker.ruleset import Ruleset
from checker.settings import checkov_environment

# Checkov framework -> runner class; each also names the files that make it worth running.
RUNNERS: Mapping[str, str] = {
    "terraform": "checkov.terraform.runner:Runner",
    "terraform_json": "checkov.terraform_json.runner:TerraformJsonRunner",
    "terraform_plan": "checkov.terraform.plan_runner:Runner",
    "cloudformation": "checkov.cloudformation.runner:Runner",
    "serverless": "checkov.serverless.runner:Runner",
    "kubernetes": "checkov.kubernetes.runner:Runner",
    "helm": "checkov.helm.runner:Runner",
    "kustomize": "checkov.kustomize.runner:Runner",
    "arm": "checkov.arm.runner:Runner",
    "bicep": "checkov.bicep.runner:Runner",
    "ansible": "checkov.ansible.runner:Runner",
    "openapi": "checkov.openapi.runner:Runner",
    "dockerfile": "checkov.dockerfile.runner:Runner",
    "secrets": "checkov.secrets.runner:Runner",
    "github_actions": "checkov.github_actions.runner:Runner",
    "gitlab_ci": "checkov.gitlab_ci.runner:Runner",
    "azure_pipelines": "checkov.azure_pipelines.runner:Runner",
    "circleci_pipelines": "checkov.circleci_pipelines.runner:Runner",
    "bitbucket_pipelines": "checkov.bitbucket_pipelines.runner:Runner",
    "argo_workflows": "checkov.argo_workflows.runner:Runner",
}
# Checkov's catalogue labels -> the frameworks whose runners evaluate those checks.
LABEL_FRAMEWORKS: Mapping[str, tuple[str, ...]] = {
    "Terraform": ("terraform", "terraform_json", "terraform_plan"),
    "Cloudformation": ("cloudformation", "serverless"),
    "serverless": ("serverless",),
    "Kubernetes": ("kubernetes", "helm", "kustomize"),
    "arm": ("arm", "bicep"),
    "Bicep": ("bicep",),
    "Ansible": ("ansible",),
    "OpenAPI": ("openapi",),
    "dockerfile": ("dockerfile",),
    "secrets": ("secrets",),
    "github_actions": ("github_actions",),
    "gitlab_ci": ("gitlab_ci",),
    "Azure Pipelines": ("azure_pipelines",),
    "circleci_pipelines": ("circleci_pipelines",),
    "bitbucket_pipelines": ("bitbucket_pipelines",),
    "Argo Workflows": ("argo_workflows",),
}
_DATA = (".yaml", ".yml", ".json")
_CANDIDATES: Mapping[str, tuple[str, ...]] = {
    "terraform_plan": (".json",), "serverless": ("serverless.yml", "serverless.yaml"), "arm": (".json",),
    "bicep": (".bicep",), "ansible": (".yaml", ".yml"), "openapi": _DATA, "circleci_pipelines": ("config.yml",),
    "bitbucket_pipelines": ("bitbucket-pipelines.yml",), "argo_workflows": (".yaml", ".yml"),
}
# Frameworks whose files our discovery recognises at least as broadly as Checkov does: they
# run only when such a file is present (others run when a file with a fitting name is).
_GATES: Mapping[str, tuple[Kind, ...]] = {
    "terraform": (Kind.TERRAFORM,), "terraform_json": (Kind.TERRAFORM,), "cloudformation": (Kind.CLOUDFORMATION,),
    "kubernetes": (Kind.KUBERNETES, Kind.KUSTOMIZE, Kind.HELM), "kustomize": (Kind.KUSTOMIZE,),
    "helm": (Kind.HELM,), "dockerfile": (Kind.DOCKERFILE,), "github_actions": (Kind.GITHUB_ACTIONS,),
    "gitlab_ci": (Kind.GITLAB_CI,), "azure_pipelines": (Kind.AZURE_PIPELINES,),
}
# Our kinds that a framework's parse errors are about (other files are not its to parse:
# Helm templates are Go templates, and a Kubernetes manifest is no CloudFormation template).
_PARSED: Mapping[str, tuple[Kind, ...]] = {
    **_GATES, "kubernetes": (Kind.KUBERNETES, Kind.KUSTOMIZE), "terraform_plan": (),
}
# Files Checkov 3.3's runners skip without a parse error, or lose part of, by encoding and the
# endings they apply to (found by trying each runner on a plain and an encoded copy of a file
# with findings: CloudFormation, GitLab CI, Terraform JSON read all of them, and Terraform
# reports a UTF-16 or UTF-32 .tf file as a parse error, which fails the scan already).
_MISREAD: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "kubernetes": {"UTF-8 with a byte-order mark": (".json",)},
    "dockerfile": {"UTF-8 with a byte-order mark": ("",), "UTF-16": ("",), "UTF-32": ("",)},
    "github_actions": {"UTF-16": ("",), "UTF-32": ("",)},
}
# The files a runner reads, where its framework's kind is broader: neither Terraform runner reads
# the other's files, so a tree with none of them needs no worker and no import of that runner.
_READS: Mapping[str, tuple[str, ...]] = {"terraform": (".tf", ".hcl"), "terraform_json": (".tf.json",)}
# Frameworks Checkov runs file by file, so a crash can be narrowed down to the file.
_PER_FILE = frozenset(RUNNERS) - {"terraform", "terraform_json", "kustomize", "helm"}
# Each framework's page in Checkov's policy index: the files of docs/5.Policy Index/ in bridgecrewio/checkov
# (listed with find_files, and at the commit 03d5fdad of 2026-08-20: all, ansible, argo_workflows, arm,
# azure_pipelines, bicep, bitbucket_configuration, bitbucket_pipelines, circleci_pipelines, cloudformation,
# dockerfile, github_actions, github_configuration, gitlab_ci, gitlab_configuration, kubernetes, openapi,
# secrets, serverless, terraform; the *_configuration pages are the VCS checks we never run, and a few stale
# capitalised pages, AWS.md, Docker.md, Kubernetes.md, exist in old commits only). A page is a table with a row
# per check and entity; the frameworks without a page of their own are listed on the page of the files
# they read: Terraform JSON and plans on terraform's, Helm and Kustomize (rendered manifests) on kubernetes'.
_INDEX_PAGES: Mapping[str, str] = {
    "terraform": "terraform", "terraform_json": "terraform", "terraform_plan": "terraform",
    "cloudformation": "cloudformation", "serverless": "serverless", "kubernetes": "kubernetes",
    "helm": "kubernetes", "kustomize": "kubernetes", "arm": "arm", "bicep": "bicep", "ansible": "ansible",
    "openapi": "openapi", "dockerfile": "dockerfile", "secrets": "secrets", "github_actions": "github_actions",
    "gitlab_ci": "gitlab_ci", "azure_pipelines": "azure_pipelines", "circleci_pipelines": "circleci_pipelines",
    "bitbucket_pipelines": "bitbucket_pipelines", "argo_workflows": "argo_workflows",
}


def policy_index(check_id: str, framework: str) -> str:
    """The check's row in Checkov's policy index page of the framework: the page's address with a text
    fragment (`#:~:text=CKV_AWS_20`), which Chromium, Safari and Firefox scroll to and highlight. A fragment
    matches whole words only, so CKV_AWS_2 never lands on CKV_AWS_20; check ids need no escaping in it."""
    return f"https://www.checkov.io/5.Policy%20Index/{_INDEX_PAGES[framework]}.html#:~:text={check_id}"


def rule_of(check_id: str, title: str, frameworks: Sequence[str], fix: fixes.Fix | None) -> Rule:
    """A Checkov check as a rule: its title, frameworks (the rule's kinds) and its page in the policy index
    for each; our fix (checker/fixes) as its remediation and examples, or else the pointer to that page.
    Medium until the ruleset says otherwise (Checkov publishes no severities)."""
    kinds = tuple(frameworks)
    pages = tuple((kind, policy_index(check_id, kind)) for kind in kinds)
    return Rule(
        id=check_id, title=title, severity=Severity.MEDIUM, engine=CheckovEngine.name, description=title,
        help_uri=pages[0][1], help_uris=pages,
        remediation=fix.prose if fix else f"See the Checkov policy index for {check_id}:",
        examples=fix.examples(kinds) if fix else (),
        tags=("security", "checkov", *kinds), kinds=kinds,
    )


class CheckovEngine:
    """Checkov's own checks, run by Checkov's runners (see the module docstring)."""

    name = "checkov"
    distribution = "checkov"
    lists_every_rule = False

    def catalogue(self, ruleset: Ruleset) -> dict[str, Rule]:
        ours = fixes.bundled()
        return {rule_id: rule_of(rule_id, meta["title"], meta["frameworks"], ours.get(rule_id))
                for rule_id, meta in catalogue().items()}

    def run(self, discovery: Discovery, rules: Mapping[str, Rule], ruleset: Ruleset, cache: Cache,
            progress: Progress) -> Outcome:
        outcome = Outcome()
        checks_by_framework: dict[str, list[str]] = {}
        for rule in rules.values():
            if rule.engine == self.name:
                for framework in rule.kinds:
                    checks_by_framework.setdefault(framework, []).append(rule.id)
        unrunnable = _unrunnable(discovery) if "cloudformation" in checks_by_framework else []
        outcome.problems.extend(unrunnable)
        if "terraform" in checks_by_framework:
            outcome.problems.extend(_modules_outside(discovery))
        jobs = []
        for framework in (f for f in RUNNERS if f in checks_by_framework):
            misread = _misread(framework, discovery)
            outcome.problems.extend(misread)
            skip = {p.path for p in (*misread, *(unrunnable if framework == "cloudformation" else ()))}
            jobs.extend(_job(framework, discovery, tuple(checks_by_framework[framework]), skip))
        if not jobs:
            return outcome
        kinds = {s.path: s.kind for s in discovery.sources}
        for result in _run_cached(jobs, discovery, ruleset, cache, progress):
            outcome.notes.extend(result.notes)
            outcome.problems.extend(result.problems)
            for path in result.parse_errors:
                if kinds.get(path) in _PARSED.get(result.framework, ()) or (
                        path not in kinds and path in discovery.files and not path.endswith(".json")):
                    outcome.problems.append(Problem(
                        f"Checkov's {result.framework} parser could not read it, so it was not checked", path, 0,
                        "checkov"))
            for record in result.records:
                outcome.findings.append(_finding(record, rules, result.framework))
        return outcome


def _job(framework: str, discovery: Discovery, checks: tuple[str, ...], skip: set[str]) -> list[_Job]:
    """The job running one framework, or none when it has no file to look at.

    Nothing discovery refused (symbolic links, FIFOs, files past our limits) and nothing left out
    may reach the runner: such paths leave the explicit file list and the candidates, and become
    exclusions for runners that walk the root themselves (Checkov follows file links on its walk).
    """
    barred = frozenset((*discovery.refused, *skip))
    allowed = tuple(f for f in _candidates(framework, discovery) if not _barred(f, barred))
    readable = _READS.get(framework, ())
    reads = not readable or any(f.endswith(readable) and not _barred(f, barred) for f in discovery.files)
    if not allowed or not reads:
        return []
    root = str(discovery.root.resolve())
    files = None
    if discovery.explicit_files:
        files = tuple(f for f in discovery.explicit_files if not _barred(f, barred))
    return [_Job(framework, root, files, checks, allowed, _exclusions(root, (*discovery.ignored, *barred)))]


def _barred(path: str, barred: frozenset[str]) -> bool:
    """Whether `path` or a folder above it is barred."""
    parts = path.split("/")
    return any("/".join(parts[:depth]) in barred for depth in range(1, len(parts) + 1))


def _exclusions(root: str, paths: Sequence[str]) -> tuple[str, ...]:
    """Paths as Checkov's excluded-path regexes: one alternation, as Checkov tries every pattern on every entry."""
    if not paths:
        return ()
    return (f"^(?:{'|'.join(re.escape(posixpath.join(root, p)) for p in sorted(set(paths)))})$",)


def _unrunnable(discovery: Discovery) -> list[Problem]:
    """CloudFormation templates Checkov's runner is known to crash on, found before it runs.

    A resource whose `Type` is not a plain string (an AWS Rain module reference, written as a
    mapping or with a `!Rain::Module` tag) makes the whole runner raise TypeError; such
    templates are named with the line and left out of its run.
    """
    found = []
    for source in discovery.of_kind(Kind.CLOUDFORMATION):
        for doc in source.documents:
            resources = doc.get("Resources") if isinstance(doc, dict) else None
            for name, body in (resources or {}).items() if isinstance(resources, dict) else ():
                kind = body.get("Type", "") if isinstance(body, dict) else ""
                if not isinstance(kind, str) or isinstance(kind, TaggedStr):
                    line = body.line_of("Type") if isinstance(body, YamlMap) else 0
                    found.append(Problem(f"resource {name} has a Type that is not a string (an AWS Rain module?), "
                                         "which Checkov cannot check, so this template was not checked by Checkov",
                                         source.path, line, "checkov"))
                    break
    return found


def _misread(framework: str, discovery: Discovery) -> list[Problem]:
    """The framework's files in an encoding its runner would skip or misread, each named.

    Checkov reports no parse error for them: left in, a file with violations would pass.
    """
    encodings = _MISREAD.get(framework, {})
    found = []
    encoding_of = {s.path: s.encoding for s in discovery.sources} if encodings else {}
    for path in _candidates(framework, discovery) if encodings else ():  # sources of the framework's kinds
        encoding = encoding_of.get(path, "")
        if encoding in encodings and path.endswith(encodings[encoding]):
            found.append(Problem(f"Checkov cannot read {framework} files encoded as {encoding}; it was not checked "
                                 "by Checkov (save it as UTF-8 without a byte-order mark)", path, 0, "checkov"))
    return found


# A module's local `source` ("./x", "../x"; Terraform reads any other form as a registry or URL).
_LOCAL_SOURCE = re.compile(r'^\s*"?source"?\s*[=:]\s*"(\.\.?/[^"]*)"', re.MULTILINE)


def _modules_outside(discovery: Discovery) -> list[Problem]:
    """Terraform modules whose local source leaves the scan root (directly or through a link).

    Checkov's Terraform runner would load them and report their resources as if they were
    ours; the worker refuses to load them (see `_confine_modules`), and each is named here,
    with its line, so the gate fails closed rather than judging part of a configuration.
    """
    root = os.path.realpath(discovery.root)
    found = []
    for source in discovery.of_kind(Kind.TERRAFORM):
        for match in _LOCAL_SOURCE.finditer(source.text):
            target = os.path.realpath(os.path.join(root, posixpath.dirname(source.path), match.group(1)))
            if not within(root, target):
                line = source.text.count("\n", 0, match.start(1)) + 1
                found.append(Problem(f"a module's source {match.group(1)!r} leaves the scan root, so Checkov did not "
                                     "load it and the module was not checked; scan from a folder that holds it",
                                     source.path, line, "checkov"))
    return found


@dataclasses.dataclass(frozen=True)
class _Job:
    framework: str
    root: str
    files: tuple[str, ...] | None  # None: let the runner walk `root` itself
    checks: tuple[str, ...]
    candidates: tuple[str, ...]  # files to retry one by one if the runner crashes
    excluded: tuple[str, ...] = ()  # regexes of paths left out or refused: runners walking the root skip them
    key: str = ""  # its result's key in the result cache ("" when it is not to be cached)


@dataclasses.dataclass
class _Result:
    framework: str
    key: str = ""  # the key of the job that made it (a re-run of part of a job shares it)
    settled: bool = False  # its worker ran the job to the end: the same inputs give the same result, problems too
    modules: list[str] = dataclasses.field(default_factory=list)  # Terraform: folders it looked for modules in
    records: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    parse_errors: list[str] = dataclasses.field(default_factory=list)
    problems: list[Problem] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def as_data(self) -> dict[str, Any]:
        """As JSON data, for the result cache."""
        return dataclasses.asdict(self)

    @classmethod
    def from_data(cls, data: Any, job: _Job) -> _Result | None:
        """Back from `as_data`, or None when it is not a result of `job` in the shape `as_data` writes
        (an entry whole and under its key may still have been planted)."""
        try:
            result = cls(data["framework"], data["key"], data["settled"], list(data["modules"]),
                         list(data["records"]), list(data["parse_errors"]), [Problem(**p) for p in data["problems"]],
                         list(data["notes"]))
            texts_of = ("check_id", "check_name", "path", "resource", "guideline")
            shaped = all(isinstance(r, dict) and set(r) == {*texts_of, "start", "end", "skip"}
                         and all(isinstance(r[name], str) for name in texts_of) and r["check_id"] in job.checks
                         and type(r["start"]) is int and type(r["end"]) is int
                         and isinstance(r["skip"], (str, type(None)))
                         for r in result.records)
            texts = all(isinstance(t, str) for t in (*result.parse_errors, *result.notes, *result.modules)) and all(
                isinstance(p.message, str) and isinstance(p.path, str) and isinstance(p.line, int)
                and isinstance(p.source, str) and isinstance(p.rule, str) for p in result.problems)
        except (KeyError, TypeError, ValueError):
            return None
        if result.framework != job.framework or result.key != job.key or result.settled is not True or not (
                shaped and texts):
            return None
        return result


def _candidates(framework: str, discovery: Discovery) -> tuple[str, ...]:
    """The files a framework could report on; none means it need not run."""
    if framework in _GATES:
        return tuple(s.path for s in discovery.sources if s.kind in _GATES[framework])
    if framework == "secrets":
        return discovery.files
    endings = _CANDIDATES[framework]
    return tuple(f for f in discovery.files if f.endswith(endings))


def _run_cached(jobs: Sequence[_Job], discovery: Discovery, ruleset: Ruleset, cache: Cache,
                progress: Progress) -> list[_Result]:
    """Each job's result from the cache when it holds one under the job's key, the others run.

    A result is stored only when its job ran to the end in one worker (a worker that died or timed
    out may not do so next time) and its inputs did not change while it ran. What Checkov could not
    check in a settled run is part of the result: a check that crashes on a template crashes on the
    same bytes again, so that result (and its exit 3) is as much a result as a finding.
    """
    digests = Digests(discovery.root)
    scan = _context(ruleset) if cache.enabled else ()
    keyed = [dataclasses.replace(job, key=_key(job, discovery, scan, digests)) if cache.enabled else job
             for job in jobs]
    results = []
    for job in keyed:
        value = cache.get(job.key) if job.key else None
        cached = _Result.from_data(value, job) if value is not None else None
        if value is not None and cached is None:
            cache.discard(job.key)  # whole, under its key, but not a result of this job: never trusted
        if cached is not None:
            results.append(cached)
    done = {r.key for r in results}
    watch = progress.watcher("Checkov", "frameworks", [job.framework for job in keyed],
                             operator.attrgetter("framework"))
    fresh = _run_jobs([job for job in keyed if not job.key or job.key not in done], settings.current(), watch)
    by_key = collections.Counter(result.key for result in fresh)
    inputs = {job.key: _inputs(job, discovery) for job in keyed if job.key}
    storable = [r for r in fresh if r.key and by_key[r.key] == 1 and r.settled and not _reads_unseen(r, discovery)]
    before = {r.key: digests.of(inputs[r.key]) for r in storable}
    digests.of({path for r in storable for path in inputs[r.key]}, again=True)  # each file read again once
    for result in storable:
        if digests.of(inputs[result.key]) == before[result.key]:
            cache.put(result.key, result.as_data())
    return _in_order([*results, *fresh])


def _context(ruleset: Ruleset) -> tuple[Any, ...]:
    """What every job's result of this scan depends on besides its own inputs: the Python, Checkov and
    checker versions, the ruleset's digest and every variable Checkov reads (read once a scan)."""
    return ("checkov-job", sys.version, checkov_version(), importlib.metadata.version("checker"), ruleset.digest,
            checkov_environment({"BC_SKIP_MAPPING": "TRUE", **os.environ}))


def _key(job: _Job, discovery: Discovery, scan: tuple[Any, ...], digests: Digests) -> str:
    """Everything a job's result depends on (`scan`: what all of this scan's jobs share, `_context`), or ""
    when that cannot be said (then it is not cached).

    A runner walking the root reads only files discovery kept (refused and ignored paths are excluded
    from its walk), whatever kind discovery gave them, so their bytes are its inputs. Not cached:
    Helm and Kustomize (they may fetch charts and bases over the network); and a runner that is not
    file by file given explicit files (it may load modules or bases from disk). A Terraform result
    whose runner looked for a module where the scan left something out is not stored either
    (`_reads_unseen`).
    """
    if job.framework in ("helm", "kustomize"):
        return ""
    if job.framework not in _PER_FILE and job.files is not None:
        return ""
    tools = {name: _tool(name) for name in _TOOLS.get(job.framework, ())}
    return key(*scan, tools, dataclasses.asdict(job), digests.of(_inputs(job, discovery)))


def _reads_unseen(result: _Result, discovery: Discovery) -> bool:
    """Whether a Terraform runner looked for a module where the scan left something out (ignored or
    refused): then its result depends on bytes no key covers, and is not stored.

    Its walk skips what was left out, but it loads a module's folder wherever a `source` points
    (`_confine_modules` records each folder it looked for, found or not). A folder that is, holds
    or lies in a left-out path, or is the root itself, is such a read; compared in lower case, as
    a file system may not tell `./GEN` from an ignored `gen`. A left-out folder no module reaches (a
    restored `.checker-cache`, an ignored `build/`) costs the cache nothing.
    """
    unseen = [path.lower() for path in (*discovery.ignored, *discovery.refused)]
    if not unseen:
        return False
    for folder in (f.lower() for f in result.modules):
        if folder == "." or any(path == folder or path.startswith(f"{folder}/") or folder.startswith(f"{path}/")
                                for path in unseen):
            return True
    return False


def _inputs(job: _Job, discovery: Discovery) -> Sequence[str]:
    """The files a job's runner may read: the files it is given, else every file kept (a runner walking
    the root reads files of any kind: a Kubernetes manifest in a file discovery took for compose),
    except where Checkov's parser reads files by their ending alone (_PARSES)."""
    if job.files is not None:
        return job.files
    endings = _PARSES.get(job.framework)
    return discovery.files if endings is None else tuple(f for f in discovery.files if f.lower().endswith(endings))


# The endings of every file a runner walking the root may open, where its parser chooses files by
# ending alone (Checkov 3.3: terraform/tf_parser.py loads .tf, .tf.json and .hcl files and the
# .tfvars/.tfvars.json variable files, and module_finder.py .terraform/modules/modules.json;
# terraform_json/utils.py takes .tf.json; kubernetes/kubernetes_utils.py K8_POSSIBLE_ENDINGS;
# github_actions/utils.py is_workflow_file), so that an edited Dockerfile does not re-run the
# Terraform graph. Compared in lower case, and any .json for Terraform whatever its name: a
# superset costs a needless re-run, a missed file a stale result.
_TERRAFORM_READS = (".tf", ".hcl", ".tfvars", ".json")
_PARSES: Mapping[str, tuple[str, ...]] = {
    "terraform": _TERRAFORM_READS, "terraform_json": _TERRAFORM_READS, "kubernetes": (".yaml", ".yml", ".json"),
    "github_actions": (".yaml", ".yml"),
}


# Programs a framework's runner runs (Checkov renders charts and overlays with them): their
# identity is part of the key, as another version may render other manifests.
_TOOLS: Mapping[str, tuple[str, ...]] = {"helm": ("helm",), "kustomize": ("kustomize", "kubectl")}


def _tool(name: str) -> str:
    """A program on the PATH as its real path, size and modification time ("" when there is none)."""
    found = shutil.which(name)
    if not found:
        return ""
    real = os.path.realpath(found)
    status = os.stat(real)
    return f"{real}:{status.st_size}:{status.st_mtime_ns}"


def _run_jobs(jobs: Sequence[_Job], limits: settings.Settings,
              watch: Callable[[Sequence[_Job], Sequence[_Job]], None]) -> list[_Result]:
    """Run every job in its own fenced worker (checker.engines.workers), the longest first.

    A worker that dies costs its own results, named; a framework Checkov runs file by file is
    then re-run one file per worker, so only the culprit goes unchecked. `watch` sees the workers
    come and go (the progress line).
    """
    for job in jobs:  # imported once here, shared by every forked worker
        importlib.import_module(RUNNERS[job.framework].split(":")[0])
    fence = workers.Fence(limits.worker_memory_mb, limits.checkov_timeout)
    callbacks = workers.Callbacks(work=_run_job, lost=_lost, unstarted=_unstarted, failed=_failed)
    results = workers.run_all(sorted(jobs, key=_expected_cost, reverse=True), fence, callbacks, watch)
    return _in_order(results)


def _in_order(results: Sequence[_Result]) -> list[_Result]:
    """Results in the order of RUNNERS, whichever worker finished first and whether or not they were cached."""
    return sorted(results, key=lambda r: list(RUNNERS).index(r.framework))


def _lost(job: _Job, cause: str) -> tuple[_Result, list[_Job]]:
    """What a worker that died costs (its file named, or its framework), and the per-file re-runs."""
    framework, lone, retries = job.framework, _lone_file(job), _retries(job)
    if lone:
        return _Result(framework, problems=[Problem(
            f"Checkov's {framework} runner {cause} on it, so it was not checked", lone, 0, "checkov")]), []
    if retries:
        return _Result(framework, notes=[(f"Checkov's {framework} runner {cause}; its files were re-run one at a "
                                          "time so that only the culprit goes unchecked")]), retries
    return _Result(framework, problems=[Problem(
        f"Checkov's {framework} runner {cause}, so no {framework} file was checked", "", 0, "checkov")]), []


def _unstarted(job: _Job, why: str) -> _Result:
    """What a job costs when the time for all workers ran out before it could start."""
    framework, lone = job.framework, _lone_file(job)
    if lone:
        return _Result(framework, problems=[Problem(
            f"Checkov's {framework} runner was not run on it: {why}, so it was not checked", lone, 0, "checkov")])
    return _Result(framework, problems=[Problem(
        f"Checkov's {framework} runner was not run: {why}, so no {framework} file was checked", "", 0, "checkov")])


def _failed(job: _Job, error: BaseException) -> _Result:
    """What a worker reports when running its framework raised outside Checkov's runner."""
    return _Result(job.framework, problems=[Problem(
        f"Checkov's {job.framework} runner failed ({type(error).__name__}: {error}); its files were not checked",
        "", 0, "checkov")])


def _lone_file(job: _Job) -> str | None:
    """The one file a job is about, for a framework Checkov runs file by file: a death is that file's."""
    return job.candidates[0] if job.framework in _PER_FILE and len(job.candidates) == 1 else None


def _retries(job: _Job) -> list[_Job]:
    """One job per file for a framework Checkov runs file by file (none when it had one file only);
    without the job's cache key, as part of a job's work is never stored as the job's result."""
    if job.framework not in _PER_FILE or _lone_file(job):
        return []
    return [dataclasses.replace(job, files=(rel,), candidates=(rel,), key="") for rel in job.candidates]


def _expected_cost(job: _Job) -> tuple[int, int]:
    """Terraform's module graph and the secrets scan of every file dominate; then the most files."""
    return ({"terraform": 2, "secrets": 1}.get(job.framework, 0), len(job.candidates))


def _run_job(job: _Job) -> _Result:
    """Run one framework (inside a worker): whole tree first, file by file if the runner raises.

    A MemoryError goes up to the worker, whose death the parent names and narrows down; one
    Checkov catches and logs ends the worker too (see `_CrashLog`): that file lost its results.
    """
    os.environ.setdefault("BC_SKIP_MAPPING", "TRUE")
    os.environ.setdefault("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false")
    _in_this_process()
    modules = _confine_modules(job.root) if job.framework == "terraform" else []
    if job.framework in _EVALUATES:
        _Memo.install()
    if job.framework == "secrets":
        _ParseOnce.install()
    _OneGrammar.install()
    crashes = _CrashLog()
    module_name, class_name = RUNNERS[job.framework].split(":")
    runner_class = getattr(importlib.import_module(module_name), class_name)
    result = _Result(job.framework, key=job.key, settled=True)  # unless the system failed it (OSError)
    if _new_runner(runner_class) is None:
        tool = {"helm": "helm", "kustomize": "kubectl or kustomize"}.get(job.framework, "the tool it needs")
        roots = [posixpath.dirname(f) or "." for f in job.candidates
                 if posixpath.basename(f) in ("Chart.yaml", "kustomization.yaml", "kustomization.yml")]
        result.notes.append(f"{tool} is not installed, so Checkov did not render {len(roots)} {job.framework} "
                            f"folder(s) ({', '.join(roots[:5])}{', ...' if len(roots) > 5 else ''}); their values "
                            "files and plain manifests were still checked")
        return result
    root_logger = logging.getLogger()
    saved = root_logger.handlers[:], root_logger.level
    root_logger.handlers, root_logger.level = [crashes], logging.WARNING  # Checkov logs to stderr otherwise
    try:
        files = [os.path.join(job.root, f) for f in job.files] if job.files is not None else None
        try:
            _collect(result, job, _scan(runner_class, job, job.root if files is None else None, files))
        except MemoryError:
            raise
        except Exception as error:  # noqa: BLE001 - Checkov raises anything; narrow it down to the file
            result.settled = not isinstance(error, OSError)
            if job.framework not in _PER_FILE:
                result.problems.append(Problem(f"Checkov's {job.framework} runner crashed: {type(error).__name__}: "
                                               f"{error}; no {job.framework} file was checked", "", 0, "checkov"))
                return result
            for rel in job.files if job.files is not None else job.candidates:
                try:
                    _collect(result, job, _scan(runner_class, job, None, [os.path.join(job.root, rel)]))
                except MemoryError:
                    raise
                except Exception as file_error:  # noqa: BLE001
                    result.settled = result.settled and not isinstance(file_error, OSError)
                    result.problems.append(Problem(
                        f"Checkov's {job.framework} runner crashed on it ({type(file_error).__name__}: "
                        f"{file_error}), so it was not checked", rel, 0, "checkov"))
        result.problems.extend(crashes.problems(job.root))
    finally:
        root_logger.handlers, root_logger.level = saved
        result.modules = sorted(set(modules))
    return result


def _in_this_process() -> None:
    """Make Checkov parse in this worker rather than fork helpers of its own.

    Its helpers would each get a memory cap of their own, and one that dies takes its files'
    results with it silently (Checkov's parallel runner stops reading a pipe at EOF and moves
    on). Frameworks already run in parallel, one worker each.
    """
    from checkov.common.models.enums import ParallelizationType
    from checkov.common.parallelizer.parallel_runner import parallel_runner

    parallel_runner.type = ParallelizationType.NONE


def _confine_modules(root: str) -> list[str]:
    """Make Checkov's Terraform parser (in this worker only) skip modules whose folder leaves `root`,
    and record every folder it looks for a module in: the list returned, filled as it parses.

    It loads a local module wherever its `source` points, even outside the scan root, and
    reports what it finds there; `_modules_outside` names each such module instead. A folder is
    recorded (relative to `root`) whether or not it held a module, as one that appears later may
    be in a path the scan leaves out (see `_reads_unseen`); one outside `root` is never loaded.
    """
    from checkov.terraform.tf_parser import TFParser

    locate = TFParser.get_content_path
    sought: list[str] = []

    def confined(registry: Any, root_dir: str, source: str, version: str) -> str | None:
        path = locate(registry, root_dir, source, version)
        folder = path if path is not None else os.path.join(root_dir, source) if source.startswith((".", "/")) else None
        if folder is not None:
            relative = posixpath.normpath(Path(os.path.relpath(os.path.normpath(folder), root)).as_posix())
            if relative != ".." and not relative.startswith("../"):
                sought.append(relative)
        return path if path is None or within(root, os.path.realpath(path)) else None

    TFParser.get_content_path = staticmethod(confined)  # type: ignore[method-assign,assignment]
    return sought


# Frameworks whose runners render Terraform expressions (checkov.terraform.graph_builder).
_EVALUATES = frozenset({"terraform", "terraform_json", "terraform_plan"})
_PLAIN = frozenset({str, int, float, bool, type(None)})


class _Table:
    """The symbol table every Terraform expression evaluation shares, and how often it has changed.

    An evaluation depends on its text and on this table, nothing else. Only an evaluation can
    change it (a text such as `PORT=8080` assigns into it), and every evaluation goes through the
    one `_Memo` wrapping Checkov's `evaluate`, which asks `check` after each: so `generation`
    moves exactly when the table did, and what was kept under another generation is dropped.
    """

    def __init__(self, table: dict[str, Any]) -> None:
        self.table = table
        self.builtin = frozenset(table)
        self.now = self.state()
        self.generation = 0

    def state(self) -> tuple[tuple[str, int, str | None], ...]:
        """The table's names, what each is bound to, and the value of each it did not start with."""
        return tuple((name, id(value), None if name in self.builtin else repr(value))
                     for name, value in self.table.items() if name != "print")  # each interpreter rebinds print

    def check(self) -> None:
        now = self.state()
        if now != self.now:
            self.now = now
            self.generation += 1


class _Memo:
    """A Terraform expression function of Checkov's (in this worker only), each text evaluated once.

    Profiled: rendering variables evaluates the same few thousand texts hundreds of thousands
    of times, each in a new asteval interpreter (terraform-aws-vpc: 369,000 evaluations of
    13,800 texts), half of the Terraform runner's time; and the string work around each
    evaluation (`evaluate_terraform`: maps, conditionals, for loops, a second evaluation) was a
    quarter of terraform-aws-eks's once evaluations were kept. Both depend on their arguments and
    the shared symbol table alone (`_Table`), so an outcome (plain data, handed out as a copy, or
    a plain ValueError) is kept per text and arguments while the table stays as it was. Never
    kept: texts with an effect or a clock (`print`, `timestamp`), other outcomes (sets, whose
    order a copy may not keep; errors of the moment such as MemoryError), and nothing at all in
    Checkov's debug mode (it prints each error) or with its threaded rendering.
    """

    def __init__(self, function: Callable[..., Any], table: _Table, evaluates: bool = False) -> None:
        self.function = function
        self.table = table
        self.evaluates = evaluates  # it wraps the evaluation itself, the one thing that changes the table
        self.generation = table.generation
        self.kept: dict[Any, tuple[bool, Any]] = {}

    @classmethod
    def install(cls) -> None:
        if os.getenv("LOG_LEVEL") == "DEBUG" or os.getenv("RENDER_VARIABLES_ASYNC") == "True":
            return
        rendering = "checkov.terraform.graph_builder.variable_rendering"
        terraform: Any = importlib.import_module(f"{rendering}.evaluate_terraform")
        evaluation = importlib.import_module(f"{rendering}.safe_eval_functions")
        foreach: Any = importlib.import_module("checkov.terraform.graph_builder.foreach.abstract_handler")
        if terraform.evaluate is not evaluation.evaluate:
            return  # installed already
        table = _Table(evaluation.SAFE_EVAL_DICT)
        terraform.evaluate = cls(evaluation.evaluate, table, evaluates=True)  # its one caller: _try_evaluate
        # the renderer calls it through the module, the for_each handlers by a name of their own
        terraform.evaluate_terraform = foreach.evaluate_terraform = cls(terraform.evaluate_terraform, table)

    def __call__(self, text: Any, *args: Any, **kwargs: Any) -> Any:
        if self.generation != self.table.generation:
            self.kept.clear()
            self.generation = self.table.generation
        keep = isinstance(text, str) and "print" not in text and "timestamp" not in text and all(
            type(a) in _PLAIN for a in (*args, *kwargs.values()))
        at = (text, args, tuple(sorted(kwargs.items()))) if keep else None
        kept = self.kept.get(at) if keep else None
        if kept is not None:
            if kept[0]:
                return copy.deepcopy(kept[1])
            raise ValueError(*kept[1])
        try:
            value = self.function(text, *args, **kwargs)
        except ValueError as error:
            self.after(at, (False, error.args) if _of_the_text(error) else None)
            raise
        except BaseException:
            self.after(None, None)
            raise
        self.after(at, (True, copy.deepcopy(value)) if _plain(value) else None)
        return value

    def after(self, at: Any, outcome: tuple[bool, Any] | None) -> None:
        """Keep an outcome, unless the call changed the table: then drop all kept. Only the memo of the
        evaluation looks at the table; every other one learns of a change from its generation."""
        if self.evaluates:
            self.table.check()
        if self.generation != self.table.generation:
            self.kept.clear()
            self.generation = self.table.generation
        elif at is not None and outcome is not None:
            self.kept[at] = outcome


class _OneGrammar:
    """PLY's parser generator (in this worker only) run once per JSONPath grammar, not once per path.

    Profiled: bc_jsonpath_ng builds the LR tables of its grammar anew for every attribute path
    Checkov parses ("we regenerate the parse table every time; it doesn't actually take that
    long!"), 9 % of terraform-aws-eks's Terraform runner. The tables depend on the grammar (the
    parser class's rules, which keep nothing in the instance) and the arguments, so one parser per
    class and arguments serves every parse. Any other caller of PLY is passed through.
    """

    def __init__(self, yacc: Callable[..., Any], grammar: type) -> None:
        self.yacc, self.grammar = yacc, grammar
        self.built: dict[Any, Any] = {}

    @classmethod
    def install(cls) -> None:
        generator: Any = importlib.import_module("ply.yacc")  # no type stubs
        from bc_jsonpath_ng.parser import JsonPathParser

        if not isinstance(generator.yacc, cls):
            generator.yacc = cls(generator.yacc, JsonPathParser)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module = kwargs.get("module")
        if args or not isinstance(module, self.grammar):
            return self.yacc(*args, **kwargs)
        at = (type(module), *sorted((name, id(value) if name == "errorlog" else value)
                                    for name, value in kwargs.items() if name != "module"))
        if at not in self.built:
            self.built[at] = self.yacc(**kwargs)
        return self.built[at]


class _ParseOnce:
    """PyYAML's safe_load (in the secrets worker only), a text parsed once however often it is asked for.

    Profiled: for every secret it finds with no suppression comment beside it, Checkov's secrets
    runner reads and parses the whole file again with PyYAML's pure-Python loader, to look for
    suppressions in its metadata (checkov/secrets/runner.py, search_for_suppression): on
    cfngoat.yaml that was 60 % of the worker's time. A parse of a text depends on the text alone,
    and the runner asks file after file, so the last text's outcome (its value, handed out as a
    copy, or its YAML error) is kept. A stream, or any other outcome, goes to PyYAML every time.
    """

    def __init__(self, load: Callable[[Any], Any], error: type[Exception]) -> None:
        self.load, self.error = load, error
        self.text: str | None = None
        self.outcome: tuple[bool, Any] = (False, None)

    @classmethod
    def install(cls) -> None:
        import yaml

        if not isinstance(yaml.safe_load, cls):
            yaml.safe_load = cls(yaml.safe_load, yaml.YAMLError)

    def __call__(self, stream: Any) -> Any:
        if not isinstance(stream, str):
            return self.load(stream)
        if stream != self.text:
            try:
                self.outcome = (True, self.load(stream))
            except self.error as error:
                self.outcome = (False, error)
            self.text = stream
        if self.outcome[0]:
            return copy.deepcopy(self.outcome[1])
        raise self.outcome[1]


# What Checkov's evaluator reports (asteval's error names) that a text gives again, whatever the stack
# or memory: asteval reports a RecursionError or MemoryError the same way, and those depend on both.
_TEXT_ERRORS = frozenset({"NameError", "SyntaxError", "TypeError", "KeyError", "IndexError", "AttributeError",
                          "ValueError", "ZeroDivisionError", "NotImplementedError"})
_ERROR_NAMES = re.compile(r"\('(\w+)',")


def _of_the_text(error: ValueError) -> bool:
    """Whether an evaluation's error fails the same text again: Checkov's `Safe evaluation error: [(NAME,
    message), ...]` naming only errors of the text itself (a plain ValueError, nothing else)."""
    text = str(error)
    names = _ERROR_NAMES.findall(text)
    return (type(error) is ValueError and text.startswith("Safe evaluation error: ") and bool(names)
            and set(names) <= _TEXT_ERRORS)


def _plain(value: Any) -> bool:
    """Whether a value is made of text, numbers, lists, tuples and dicts only (which a copy reproduces)."""
    if type(value) in _PLAIN:
        return True
    if type(value) in (list, tuple):
        return all(_plain(v) for v in value)
    if type(value) is dict:
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return False


def _new_runner(runner_class: Any) -> Any:
    """A runner whose external tools (kubectl/kustomize, helm) were found; None when they are missing."""
    runner = runner_class()
    return None if getattr(runner, "check_system_deps", lambda: None)() else runner


def _scan(runner_class: Any, job: _Job, root: str | None, files: list[str] | None) -> list[Any]:
    from checkov.runner_filter import RunnerFilter

    runner_filter = RunnerFilter(framework=[job.framework], checks=list(job.checks), show_progress_bar=False,
                                 excluded_paths=list(job.excluded))
    reports = _new_runner(runner_class).run(root_folder=root, files=files, runner_filter=runner_filter)
    return reports if isinstance(reports, list) else [reports]


def _collect(result: _Result, job: _Job, reports: list[Any]) -> None:
    for report in reports:
        result.parse_errors.extend(_relative(job.root, p) for p in report.parsing_errors)
        for record in report.failed_checks:
            result.records.append(_record_of(record, job.root, None))
        for record in report.skipped_checks:
            comment = (record.check_result or {}).get("suppress_comment", "")
            result.records.append(_record_of(record, job.root, comment or "no reason given"))


def _record_of(record: Any, root: str, skip_comment: str | None) -> dict[str, Any]:
    """A Checkov Record as plain data (it crosses a process boundary)."""
    real_root = os.path.realpath(root)
    found = (_existing(root, p) for p in (record.file_abs_path, record.file_path) if p)
    inside = next((f for f in found if f and f.startswith(real_root + os.sep)), None)
    # rendered into a temporary folder (kustomize, helm): Checkov's own path
    path = Path(os.path.relpath(inside, real_root)).as_posix() if inside else (record.file_path or "").lstrip("/")
    start, end = [*(record.file_line_range or ()), 0, 0][:2]
    return {
        "check_id": record.check_id, "check_name": record.check_name, "path": path,
        "start": int(start or 0), "end": int(end or 0), "resource": record.resource or "",
        "guideline": record.guideline or "", "skip": skip_comment,
    }


def _existing(root: str, path: str) -> str | None:
    """A path Checkov reports (absolute, root-relative with a leading '/', or cwd-relative) as it exists."""
    candidates = [path, os.path.join(root, path.lstrip("/")), os.path.join(os.getcwd(), path.lstrip("/"))]
    return next((os.path.realpath(c) for c in candidates if os.path.isabs(c) and os.path.exists(c)), None)


def _relative(root: str, path: str) -> str:
    found = _existing(root, path) or os.path.join(root, path.lstrip("/"))
    return Path(os.path.relpath(found, os.path.realpath(root))).as_posix()


def _finding(record: Mapping[str, Any], rules: Mapping[str, Rule], framework: str) -> Finding:
    """A record of the framework's runner as a finding of that kind (its rule's page and fix depend on it)."""
    rule = rules[record["check_id"]]
    start = max(record["start"], 1)
    suppression = None
    if record["skip"] is not None:
        suppression = Suppression("inSource", record["skip"], "checkov:skip")
    return Finding(
        rule_id=rule.id, severity=rule.severity, message=record["check_name"] or rule.title,
        location=Location(record["path"], start, max(record["end"], start)),
        resource=record["resource"], suppression=suppression, kind=framework,
    )


class _CrashLog(logging.Handler):
    """Catches Checkov's 'Failed to run check X on file' log lines (a check that raised), and ends
    the worker when Checkov logs a MemoryError it caught: that file's results are gone."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and isinstance(record.exc_info[1], MemoryError):
            os._exit(workers.OUT_OF_MEMORY)  # Checkov caught it and would carry on without that file's results
        message = record.getMessage()
        if message.startswith("Failed to run check "):
            self.messages.append(message)

    def problems(self, root: str) -> list[Problem]:
        out = []
        for message in dict.fromkeys(self.messages):
            check, _, target = message[len("Failed to run check "):].partition(" on ")
            path, _, entity = target.partition(":")  # entity types may hold colons (AWS::S3::Bucket)
            out.append(Problem(f"Checkov check {check} crashed on {entity}, so that resource was not checked by it",
                               _relative(root, path), 0, "checkov", rule=check))
        return out


def _is_catalogue(data: Any) -> bool:
    """Whether `data` has the shape `catalogue` writes (a damaged file is rebuilt, never trusted). The file
    is the user's own, in their cache folder, and never restored from CI caches."""
    return isinstance(data, dict) and bool(data) and all(
        isinstance(meta, dict) and isinstance(meta.get("title"), str)
        and isinstance(meta.get("frameworks"), list) and meta["frameworks"]
        and all(f in RUNNERS for f in meta["frameworks"])
        for meta in data.values())


def checkov_version() -> str:
    return importlib.metadata.version("checkov")


def catalogue() -> dict[str, dict[str, Any]]:
    """Every Checkov check: title and frameworks, cached per Checkov version."""
    cache = default_folder() / f"checkov-{checkov_version()}.json"
    try:
        cached: dict[str, dict[str, Any]] = json.loads(cache.read_text())
        if _is_catalogue(cached):
            return cached
    except (OSError, ValueError, RecursionError):
        pass  # absent, unreadable or damaged: built again from Checkov below
    os.environ.setdefault("BC_SKIP_MAPPING", "TRUE")
    from checkov.docs_generator import get_checks

    found: dict[str, dict[str, Any]] = {}
    for check_id, _type, _entity, title, label, _link in get_checks():
        frameworks = LABEL_FRAMEWORKS.get(label)
        if not frameworks:
            continue  # checks of VCS-configuration frameworks need a platform API; never run here
        entry = found.setdefault(check_id, {"title": title, "frameworks": []})
        entry["frameworks"] = sorted({*entry["frameworks"], *frameworks}, key=list(RUNNERS).index)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(found, sort_keys=True))
        tmp.replace(cache)
    except OSError:
        pass  # a read-only home only costs the next run the same two seconds
    return found


ENGINE = CheckovEngine()
