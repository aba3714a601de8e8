"""GitLab CI pipeline policies."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from ._helpers import as_list, image_tag, is_approved, is_variable, item_line

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
    controls=["PCI-DSS-4.0:6.3.2"],
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
    merged: dict[str, Any] = {}
    if depth < 10:
        for parent in as_list(job.get("extends")):
            base = pipeline.get(parent) if isinstance(parent, str) else None
            if isinstance(base, YamlMap):
                merged.update(effective(pipeline, base, depth + 1))
    merged.update(job)
    return merged


def environment_name(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    if isinstance(env, dict):
        env = env.get("name")
    return str(env) if isinstance(env, (str, int)) and str(env).strip() else None


def scripts(job: dict[str, Any]) -> str:
    lines = [s for key in ("before_script", "script") for s in as_list(job.get(key)) if isinstance(s, str)]
    return "\n".join(lines)


# --- checks ---------------------------------------------------------------------------------

def _include_issue(entry: object) -> tuple[str, str] | None:
    """(what, key) when an include entry is not pinned; None when it is, or is local/template."""
    if isinstance(entry, str):
        entry = {"remote": entry} if entry.startswith(("http://", "https://")) else {"local": entry}
    if not isinstance(entry, dict):
        return None
    remote = entry.get("remote")
    if isinstance(remote, str) and not is_variable(remote) and not _SHA_IN_URL.search(remote + "/"):
        return f"remote include {remote} is not pinned to a commit SHA", "remote"
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
        if not (_SHA.match(version) or _TAG.match(version)):
            return f"component {component} is not pinned to a released version or commit SHA", "component"
    return None


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
        Include from a project at a tag or commit SHA (or a CI/CD component at a released version) instead
        of a remote URL or a branch:

            include:
              - project: platform/ci-templates
                ref: v2.3.1
                file: /templates/build.yml
              - component: $CI_SERVER_FQDN/platform/components/scan@1.4.0
    """,
    controls=["PCI-DSS-4.0:6.3.2", "PCI-DSS-4.0:6.5.1"],
    tags=["supply-chain"],
)
def includes_pinned(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every `include:` of another project names a `ref:` that is a tag (`v1.2.3`, `refs/tags/...`) or a
    full commit SHA; CI/CD components name a version or SHA; remote URLs are allowed only when the URL
    holds a commit SHA. Local files and GitLab's own templates are exempt.

    The finding points at the `ref:`, the `remote:`/`component:` value or the list item.
    """
    if not isinstance(doc.data, YamlMap) or "include" not in doc.data:
        return
    node = doc.data["include"]
    entries = list(enumerate(node)) if isinstance(node, list) else [(None, node)]
    for index, entry in entries:
        issue = _include_issue(entry)
        if issue is None:
            continue
        message, key = issue
        if isinstance(entry, YamlMap):
            line = entry.line_of(key)
        elif index is not None:
            line = item_line(node, index, doc.data.line_of("include"))
        else:
            line = doc.data.line_of("include")
        yield Violation(message, line, "include" if index is None else f"include[{index}]")


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
    controls=["PCI-DSS-4.0:6.5.1", "PCI-DSS-4.0:6.5.4"],
    tags=["change-control"],
)
def production_deploys_controlled(doc: Document, ctx: Context) -> Iterator[Violation]:
    """A production deploy job (an `environment:` named like prod/production/live, a job whose name
    says production and deploys, or a script line that deploys to production such as
    `helm upgrade ... --namespace production`) is `when: manual`, or has `rules:` that run it only on protected refs
    (`$CI_COMMIT_REF_PROTECTED == "true"`, `$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH`, `$CI_COMMIT_TAG`,
    or `when: manual`), and declares an `environment:`.

    Keys inherited through `extends:` from templates in the same file count; jobs that stop, prepare,
    verify or access an environment (`environment:action`) are not deployments. The finding points at
    the job's name.
    """
    if not isinstance(doc.data, YamlMap):
        return
    for name, raw, line in jobs(doc.data):
        job = effective(doc.data, raw)
        env = environment_name(job)
        environment = job.get("environment")
        action = environment.get("action") if isinstance(environment, dict) else None
        if action in ("stop", "prepare", "verify", "access"):
            continue  # tears down or only reads an environment: not a deployment
        deploy_lines = [line for line in scripts(job).splitlines() if DEPLOY_COMMANDS.search(line)]
        is_prod = bool(env and PROD.search(env)) or (
            bool(PROD.search(name)) and bool(DEPLOY_WORD.search(name) or deploy_lines)) or (
            any(PROD.search(line) for line in deploy_lines))
        if not is_prod:
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
    controls=["PCI-DSS-4.0:6.3.2", "PCI-DSS-4.0:6.3.3"],
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
