"""Azure Pipelines policies."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from ._helpers import is_approved, is_variable, mappings

_SHA = re.compile(r"^[0-9a-f]{40}$")
DEPLOY_TASKS = re.compile(
    r"^(?:AzureWebApp|AzureRmWebAppDeployment|AzureFunctionApp|AzureFunctionAppContainer|AzureWebAppContainer|"
    r"AzureResourceManagerTemplateDeployment|AzureResourceGroupDeployment|SqlAzureDacpacDeployment|"
    r"AzureSpringCloud|AzureContainerApps|AzureStaticWebApp|IISWebAppDeploymentOnMachineGroup|ServiceFabricDeploy|"
    r"AzureCloudPowerShellDeployment|AzureMysqlDeployment|MysqlDeploymentOnMachineGroup|WindowsMachineFileCopy)@",
    re.IGNORECASE,
)
# Tasks that deploy only for some commands: task name -> input names -> deploying values.
COMMAND_TASKS = {
    "kubernetesmanifest": (("action",), {"deploy", "patch", "scale", "delete", "promote", "reject"}, "deploy"),
    "helmdeploy": (("command",), {"install", "upgrade", "rollback", "delete"}, "ls"),
    "kubernetes": (("command",), {"apply", "create", "replace", "set", "delete", "patch", "rollout"}, "apply"),
    "terraformtaskv1": (("command",), {"apply", "destroy"}, "init"),
    "terraformtaskv2": (("command",), {"apply", "destroy"}, "init"),
    "terraformtaskv3": (("command",), {"apply", "destroy"}, "init"),
    "terraformtaskv4": (("command",), {"apply", "destroy"}, "init"),
    "terraformcli": (("command",), {"apply", "destroy"}, "init"),
}
DEPLOY_COMMANDS = re.compile(
    r"\b(?:kubectl\s+(?:apply|create|replace|patch|rollout\s+restart|set\s+image)|"
    r"helm(?:file)?\s+(?:upgrade|install|apply|sync)|"
    r"skaffold\s+(?:run|deploy)|argocd\s+app\s+sync|eb\s+deploy|fly(?:ctl)?\s+deploy|firebase\s+deploy|"
    r"netlify\s+deploy|wrangler\s+(?:deploy|publish)|"
    r"terraform\s+(?:apply|destroy)|tofu\s+apply|pulumi\s+up|cdk\s+deploy|"
    r"az\s+(?:webapp|functionapp)\s+deploy|az\s+deployment\s+\w+\s+create)",
    re.IGNORECASE,
)
SCRIPT_KEYS = ("script", "bash", "powershell", "pwsh")


def jobs(pipeline: object) -> Iterator[tuple[YamlMap, str]]:
    """Every job and deployment job (in `stages[].jobs` or top-level `jobs`) with a resource path."""
    if not isinstance(pipeline, YamlMap):
        return
    for s, stage in enumerate(mappings(pipeline.get("stages"))):
        name = stage.get("stage", s)
        for j, job in enumerate(mappings(stage.get("jobs"))):
            yield job, f"stages[{name}].jobs[{job.get('deployment', job.get('job', j))}]"
    for j, job in enumerate(mappings(pipeline.get("jobs"))):
        yield job, f"jobs[{job.get('deployment', job.get('job', j))}]"


def job_steps(job: YamlMap) -> Iterator[YamlMap]:
    """The steps of a job, and of every lifecycle hook of a deployment job's strategy."""
    yield from mappings(job.get("steps"))
    todo: list[Any] = [job.get("strategy")]
    while todo:
        node = todo.pop()
        if isinstance(node, YamlMap):
            for key, value in node.items():
                if key == "steps":
                    yield from mappings(value)
                else:
                    todo.append(value)


def deploying_step(step: YamlMap) -> str:
    """Why a step deploys ('' when it does not)."""
    task = step.get("task")
    if isinstance(task, str):
        if DEPLOY_TASKS.match(task):
            return f"task {task}"
        spec = COMMAND_TASKS.get(task.partition("@")[0].lower())
        if spec is not None:
            keys, deploying, default = spec
            inputs = step.get("inputs")
            inputs = inputs if isinstance(inputs, YamlMap) else {}
            value = next((inputs[k] for k in keys if k in inputs), default)
            if str(value).strip().lower() in deploying:
                return f"task {task} ({value})"
    for key in SCRIPT_KEYS:
        if isinstance(step.get(key), str):
            match = DEPLOY_COMMANDS.search(step[key])
            if match:
                return f"{key} `{' '.join(match.group(0).split())}`"
    return ""


@policy(
    id="ORG-AZP-001",
    title="Deployments run as deployment jobs bound to an environment",
    kinds=["azure-pipelines"],
    severity="high",
    rationale=(
        "Approvals, checks, exclusive locks and the deployment history live on Azure DevOps environments; "
        "only a `deployment` job that names an environment is subject to them."
    ),
    remediation="""
        Deploy from a deployment job that targets an environment with approvals and checks:

            jobs:
              - deployment: DeployWeb
                environment: production
                strategy:
                  runOnce:
                    deploy:
                      steps:
                        - task: AzureWebApp@1
                          inputs: {azureSubscription: prod, appName: web}
    """,
    controls=["PCI-DSS-4.0:6.5.1", "PCI-DSS-4.0:6.5.4"],
    tags=["change-control"],
)
def deployments_use_environments(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every `deployment:` job declares an `environment:`, and no plain `job:` deploys (a deploy task
    such as `AzureWebApp@1`, `KubernetesManifest@1` with action deploy, `HelmDeploy@0` upgrade,
    `TerraformTaskV4@4` apply, or `kubectl apply`/`helm upgrade`/`terraform apply` in a script).

    The finding points at the `deployment:` or `job:` key.
    """
    for job, resource in jobs(doc.data):
        if "deployment" in job:
            env = job.get("environment")
            if isinstance(env, YamlMap):
                env = env.get("name")
            if not (isinstance(env, str) and env.strip()):
                yield Violation(f"deployment job {job.get('deployment')} declares no environment:",
                                job.line_of("deployment"), resource)
            continue
        for step in job_steps(job):
            why = deploying_step(step)
            if why:
                yield Violation(f"job {job.get('job', '?')} deploys ({why}) outside a deployment job with an "
                                "environment", job.line_of("job") if "job" in job else job.line, resource)
                break


def _repository_issue(repo: YamlMap) -> tuple[str, str] | None:
    if str(repo.get("type", "git")).lower() not in ("git", "github", "githubenterprise", "bitbucket"):
        return None
    name = repo.get("name", repo.get("repository"))
    ref = repo.get("ref")
    if ref is None:
        return f"repository {name} has no ref, so templates come from its default branch", "repository"
    ref = str(ref).strip()
    if "$(" in ref or "${{" in ref:
        return None
    if ref.startswith("refs/tags/") or _SHA.match(ref):
        return None
    return f"repository {name} is pinned to {ref}, a branch; use refs/tags/<tag> or a commit SHA", "ref"


@policy(
    id="ORG-AZP-002",
    title="Repository resources are pinned to a tag or commit",
    kinds=["azure-pipelines"],
    severity="high",
    rationale=(
        "Templates and code from another repository run inside this pipeline with its service connections; "
        "a branch ref lets anyone who can push there change what this pipeline does."
    ),
    remediation="""
        Pin each repository resource to a release tag or a full commit SHA:

            resources:
              repositories:
                - repository: templates
                  type: git
                  name: platform/pipeline-templates
                  ref: refs/tags/v3.2.0
    """,
    controls=["PCI-DSS-4.0:6.3.2", "PCI-DSS-4.0:6.5.1"],
    tags=["supply-chain"],
)
def repositories_pinned(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every entry of `resources.repositories` (the source of `template: x@alias` and of extra checkouts)
    has a `ref:` that is `refs/tags/...` or a 40-character commit SHA. Refs written with variables are
    not judged.

    The finding points at the `ref:`, or at the `repository:` key when there is no ref.
    """
    resources = doc.data.get("resources") if isinstance(doc.data, YamlMap) else None
    repositories = resources.get("repositories") if isinstance(resources, YamlMap) else None
    for i, repo in enumerate(mappings(repositories)):
        issue = _repository_issue(repo)
        if issue:
            message, key = issue
            yield Violation(message, repo.line_of(key), f"resources.repositories[{repo.get('repository', i)}]")


def _images(pipeline: object) -> Iterator[tuple[str, int, str]]:
    if not isinstance(pipeline, YamlMap):
        return
    resources = pipeline.get("resources")
    containers = resources.get("containers") if isinstance(resources, YamlMap) else None
    aliases = set()
    for i, declared in enumerate(mappings(containers)):
        if isinstance(declared.get("container"), str):
            aliases.add(declared["container"])
        if isinstance(declared.get("image"), str):
            resource = f"resources.containers[{declared.get('container', i)}]"
            yield declared["image"], declared.line_of("image"), resource
    scopes: list[tuple[YamlMap, str]] = [(pipeline, "")] + [(job, resource + ".") for job, resource in jobs(pipeline)]
    for scope, prefix in scopes:
        container = scope.get("container")
        if isinstance(container, str) and container not in aliases:
            yield container, scope.line_of("container"), f"{prefix}container"
        elif isinstance(container, YamlMap) and isinstance(container.get("image"), str):
            yield container["image"], container.line_of("image"), f"{prefix}container.image"
        services = scope.get("services")
        if isinstance(services, YamlMap):
            for name, value in services.items():
                if isinstance(value, str) and value not in aliases:
                    yield value, services.line_of(name), f"{prefix}services.{name}"


@policy(
    id="ORG-AZP-003",
    title="Container jobs use images from an approved registry",
    kinds=["azure-pipelines"],
    severity="medium",
    rationale=(
        "Pipeline containers run with service connections; only the organisation's registries are scanned "
        "and mirrored."
    ),
    remediation="""
        Use images mirrored into an approved registry (organisation.approved_registries):

            resources:
              containers:
                - container: build
                  image: registry.example.com/ci/dotnet-sdk:8.0
    """,
    controls=["PCI-DSS-4.0:6.3.2", "PCI-DSS-4.0:6.3.3"],
    tags=["supply-chain"],
    requires=["approved_registries"],
)
def container_images_approved(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Images of `resources.containers`, of the pipeline's and every job's `container:` and of `services:`
    are pulled from a registry in `organisation.approved_registries`. Images named with variables
    (`$(image)`, `${{ parameters.image }}`) are not judged.
    """
    registries = list(ctx.organisation["approved_registries"])
    for image, line, resource in _images(doc.data):
        if not is_variable(image) and not is_approved(image, registries):
            yield Violation(f"image {image} is not from an approved registry ({', '.join(registries)})", line, resource)


