"""ORG-GHA-006 and ORG-GHA-007: how deployments are recognised, protected and gated."""
from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .._helpers import EPHEMERAL_CLUSTER_COMMANDS, as_list
from .workflow import action_name, jobs, run_text, steps

DEPLOY_ACTIONS = re.compile(
    r"^(?:aws-actions/amazon-ecs-deploy-task-definition|aws-actions/aws-cloudformation-github-deploy|"
    r"azure/(?:webapps-deploy|k8s-deploy|functions-action|arm-deploy|container-apps-deploy-action|"
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
    r"gcloud\s+(?:run|app|functions)\s+deploy|az\s+(?:webapp|functionapp)\s+deploy|az\s+deployment\s+\w+\s+create)",
    re.IGNORECASE,
)
# A job that first creates a throwaway local cluster tests against it; `kubectl apply` there is no deployment.
EPHEMERAL_CLUSTER_ACTIONS = re.compile(
    r"^(?:helm/kind-action|engineerd/setup-kind|container-tools/kind-action|medyagh/setup-minikube|"
    r"manusa/actions-setup-minikube|absaoss/k3d-action|nolar/setup-k3d-k3s|debianmaintainers/setup-k3s)(?:@|$)",
    re.IGNORECASE,
)
TEARDOWN_COMMANDS = re.compile(
    r"\b(?:kubectl\s+delete|helm\s+(?:uninstall|delete)|terraform\s+destroy|tofu\s+destroy|pulumi\s+destroy|"
    r"cdk\s+destroy|az\s+group\s+delete|gcloud(?:\s+[\w-]+){0,6}?\s+delete)\b",
)
GATE_COMMAND = re.compile(r"\bchecker\s+scan\b")


def _closes(step: YamlMap) -> bool:
    """An Azure Static Web Apps step with `action: close`: it removes a pull request's staging site."""
    with_ = step.get("with")
    return action_name(step.get("uses")).lower() == "azure/static-web-apps-deploy" and isinstance(with_, YamlMap) \
        and str(with_.get("action", "")).strip().lower() == "close"


def deploys(job: YamlMap) -> str:
    """Why a job counts as a deployment ('' when it does not): a deploy action or a deploy command.

    Commands run after the job created a throwaway local cluster (kind, minikube, k3d) are tests, and a
    deploy action told to remove what it deployed (Azure Static Web Apps' `action: close`) is a teardown.
    """
    for _, step in steps(job):
        uses = step.get("uses")
        if (isinstance(uses, str) and EPHEMERAL_CLUSTER_ACTIONS.match(uses)) or \
                EPHEMERAL_CLUSTER_COMMANDS.search(run_text(step)):
            return ""
        if isinstance(uses, str) and DEPLOY_ACTIONS.match(uses) and not _closes(step):
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
    """The job removes a deployment (`kubectl delete`, `helm uninstall`, `terraform destroy`, a deploy
    action's close)."""
    return any(TEARDOWN_COMMANDS.search(run_text(step)) or _closes(step) for _, step in steps(job))


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
    tags=["change-control", "paved-road"],
    params={"approval_environments": []},
)
def deploy_needs_gate(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every job that deploys (see ORG-GHA-006) or runs in an `environment:` (GitHub records a deployment
    for it) depends, through `needs:` (directly or transitively), on a job that runs `checker scan` or
    the checker action/reusable workflow. A deploy job that runs `checker scan` itself also passes.

    An environment job that only tears a deployment down (`kubectl delete`, `helm uninstall`,
    `terraform destroy`, with no deploy command) ships nothing and is exempt. So is a job in one of the
    rule's `approval_environments` (environments used only to make a person approve a run, such as a scan
    of a fork's pull request) unless it deploys by action or command.

    The finding points at the job's `needs:` when it has one, else at the job id.
    """
    approval = {str(name) for name in ctx.params.get("approval_environments") or []}
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
        if not why and environment_name(job) and not _tears_down(job) and environment_name(job) not in approval:
            why = f"runs in environment {environment_name(job)}"
        if not why or job_id in gates or upstream(job_id) & gates:
            continue
        yield Violation(f"job {job_id} deploys ({why}) but does not need a job that runs `checker scan`",
                        job.line_of("needs") if "needs" in job else line, f"jobs.{job_id}")
