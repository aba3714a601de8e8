"""Repository-level policies: they look at which files the repository holds."""
from __future__ import annotations

import os
import re
from collections.abc import Iterator

import yaml

from checker.documents import Document, YamlMap, load_yaml
from checker.policy import Context, Violation, policy

CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS")


def has_file(doc: Document, ctx: Context, path: str, *, any_case: bool = False) -> bool:
    """Whether the repository holds `path`: listed in the scan, or on disk under the scan root (when
    pre-commit passes only the staged files, the listing is not the whole repository)."""
    files = doc.data if isinstance(doc.data, (tuple, list)) else ()
    if any_case:
        if path.lower() in {str(f).lower() for f in files}:
            return True
        folder, name = os.path.split(path)
        try:
            return any(entry.lower() == name.lower() and os.path.isfile(os.path.join(ctx.root, folder, entry))
                       for entry in os.listdir(os.path.join(ctx.root, folder) if folder else ctx.root))
        except OSError:
            return False
    return path in files or os.path.isfile(os.path.join(ctx.root, path))


@policy(
    id="ORG-REPO-001",
    title="The repository has a CODEOWNERS file",
    kinds=["repo"],
    severity="medium",
    rationale=(
        "Code owners make review by the accountable team a rule of the branch, not a habit: with code-owner "
        "review required on the default branch, no change merges without the owning team's approval. Without "
        "the file that requirement names nobody, and the review control has nothing to stand on. (The branch "
        "setting itself lives in the hosting platform, which a scan of the repository cannot see.)"
    ),
    remediation="""
        Create `.github/CODEOWNERS` that names an owning team for the whole tree, and require code-owner
        review on the default branch:

            *  @example-org/payments-team
    """,
    tags=["governance"],
)
def codeowners_present(doc: Document, ctx: Context) -> Iterator[Violation]:
    """The repository holds a CODEOWNERS file where GitHub or GitLab reads it
    (`.github/`, the root, `docs/` or `.gitlab/`).

    The finding points at `.github/CODEOWNERS`, line 1: where the file should be created.
    """
    if not any(has_file(doc, ctx, path) for path in CODEOWNERS_PATHS):
        yield Violation("the repository has no CODEOWNERS file", 1, "repository", path=CODEOWNERS_PATHS[0])


def read_text(ctx: Context, path: str, limit: int = 1_000_000) -> str | None:
    """The text of a repository file (None when it cannot be read); binary bytes are replaced."""
    try:
        with open(os.path.join(ctx.root, path), "rb") as handle:
            return handle.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return None


def codeowners_file(doc: Document, ctx: Context) -> str | None:
    """The CODEOWNERS file GitHub/GitLab would use (the first of .github/, root, docs/, .gitlab/)."""
    return next((path for path in CODEOWNERS_PATHS if has_file(doc, ctx, path)), None)


@policy(
    id="ORG-REPO-002",
    title="CODEOWNERS names an owner for the whole tree",
    kinds=["repo"],
    severity="low",
    rationale=(
        "Code-owner review only applies to paths a rule matches; without a catch-all, new folders "
        "(a new service, a new pipeline) are merged without their owners' review. Low, not medium: the paths "
        "that are listed keep their review, so the control has a gap rather than being absent."
    ),
    remediation="""
        Start CODEOWNERS with a catch-all rule; more specific rules below it win:

            *            @example-org/payments-team
            /infra/      @example-org/platform-team
    """,
    tags=["governance"],
)
def codeowners_catch_all(doc: Document, ctx: Context) -> Iterator[Violation]:
    """The CODEOWNERS file has a rule for the whole tree (`*`, `/`, `**` or `/**`) that names at least
    one owner.

    Repositories without CODEOWNERS are ORG-REPO-001's finding. The finding points at line 1 of the
    CODEOWNERS file.
    """
    path = codeowners_file(doc, ctx)
    if path is None:
        return
    text = read_text(ctx, path)
    if text is None:
        return
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] in ("*", "/", "**", "/**", "/*"):
            return
    yield Violation(f"{path} has no catch-all rule (`*  @owner`), so some paths have no code owner", 1,
                    "CODEOWNERS", path=path)


SECURITY_POLICY_PATHS = ("SECURITY.md", ".github/SECURITY.md", "docs/SECURITY.md")


@policy(
    id="ORG-REPO-003",
    title="The repository has a security policy (SECURITY.md)",
    kinds=["repo"],
    severity="info",
    rationale=(
        "A security policy tells researchers and colleagues how to report a vulnerability privately "
        "and who triages it, so reports reach the owners instead of public issues. A convenience, not a "
        "control: vulnerabilities are handled by the organisation's process, and GitHub shows the "
        "organisation's default SECURITY.md (from its `.github` repository) on every repository without "
        "one, so a repository lacking the file has not lost the control."
    ),
    remediation="""
        Add `SECURITY.md` at the root (or in `.github/`) saying how to report a vulnerability:

            # Security policy
            Report vulnerabilities to security@example.com or through GitHub private vulnerability
            reporting. We acknowledge within 2 working days.
    """,
    tags=["governance"],
)
def security_policy_present(doc: Document, ctx: Context) -> Iterator[Violation]:
    """The repository holds a `SECURITY.md` where GitHub reads it: the root, `.github/` or `docs/`
    (any letter case).

    The finding points at `SECURITY.md`, line 1: where the file should be created.
    """
    if not any(has_file(doc, ctx, path, any_case=True) for path in SECURITY_POLICY_PATHS):
        yield Violation("the repository has no SECURITY.md", 1, "repository", path=SECURITY_POLICY_PATHS[0])


PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"


@policy(
    id="ORG-REPO-004",
    title="pre-commit runs the compliance gate's hook",
    kinds=["repo"],
    severity="info",
    rationale=(
        "The gate is cheapest on the developer's laptop: the checker hook reports a violation at commit time, "
        "on the exact line, before it reaches CI. A convenience, not a control: hooks run on the developer's "
        "machine and are skipped at will (`git commit --no-verify`, or pre-commit never installed), so the "
        "configuration proves nothing. The control is the gate in CI that every deploy needs (ORG-GHA-007)."
    ),
    remediation="""
        Add the checker hook to `.pre-commit-config.yaml`:

            repos:
              - repo: https://github.com/paved-road/checker
                rev: v0.1.0
                hooks:
                  - id: checker
    """,
    tags=["paved-road"],
    params={"hook_ids": ["checker", "checker-repo"]},
)
def pre_commit_runs_checker(doc: Document, ctx: Context) -> Iterator[Violation]:
    """The repository's `.pre-commit-config.yaml` exists and has a hook whose `id` is one of the rule's
    `hook_ids` parameter (default `checker`, `checker-repo`).

    The finding points at `.pre-commit-config.yaml`: line 1 when it is missing or unreadable, else its
    `repos:` key.
    """
    hook_ids = {str(i) for i in ctx.params.get("hook_ids") or []}
    if not has_file(doc, ctx, PRE_COMMIT_CONFIG):
        yield Violation(f"the repository has no {PRE_COMMIT_CONFIG}, so the checker hook never runs", 1,
                        "repository", path=PRE_COMMIT_CONFIG)
        return
    text = read_text(ctx, PRE_COMMIT_CONFIG) or ""
    try:
        docs = load_yaml(text)
    except yaml.YAMLError:
        docs = []
    config = docs[0] if docs else None
    repos = config.get("repos") if isinstance(config, YamlMap) else None
    for repo in repos if isinstance(repos, list) else []:
        hooks = repo.get("hooks") if isinstance(repo, YamlMap) else None
        for hook in hooks if isinstance(hooks, list) else []:
            if isinstance(hook, YamlMap) and str(hook.get("id")) in hook_ids:
                return
    line = config.line_of("repos") if isinstance(config, YamlMap) else 1
    yield Violation(f"{PRE_COMMIT_CONFIG} has no hook with id {' or '.join(sorted(hook_ids))}", line,
                    "repos", path=PRE_COMMIT_CONFIG)


KEY_FILE = re.compile(r"(?:^|/)(?:id_(?:rsa|dsa|ecdsa|ed25519)|[^/]+\.(?:pem|key|ppk|p8|keystore))$", re.IGNORECASE)
PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-")


@policy(
    id="ORG-REPO-005",
    title="No private keys are committed",
    kinds=["repo"],
    severity="critical",
    rationale=(
        "A private key in Git is in every clone, fork and backup forever; whoever reads the repository "
        "can impersonate the server, sign as the service or decrypt its traffic. A committed key is a "
        "disclosed key: it must be rotated, not just deleted."
    ),
    remediation="""
        Remove the key, rotate it (it is compromised), purge it from history, and load keys at run time
        from the secrets manager; ignore key files:

            # .gitignore
            *.pem
            *.key
            id_rsa*
    """,
    tags=["secrets"],
)
def no_private_keys(doc: Document, ctx: Context) -> Iterator[Violation]:
    """No file named like a key (`id_rsa`, `id_ed25519`, `*.pem`, `*.key`, `*.ppk`, `*.p8`) holds a
    private key (`-----BEGIN ... PRIVATE KEY-----`). Certificates and public keys in `.pem` files are
    fine.

    The finding points at the line where the private key begins.
    """
    for path in doc.data if isinstance(doc.data, (tuple, list)) else ():
        if not isinstance(path, str) or not KEY_FILE.search(path):
            continue
        text = read_text(ctx, path) or ""
        match = PRIVATE_KEY.search(text)
        if match:
            line = text.count("\n", 0, match.start()) + 1
            yield Violation(f"{path} holds a private key", line, path, path=path)


ENV_FILE = re.compile(r"(?:^|/)\.env(?:\.[^/]+)?$")
ENV_TEMPLATES = re.compile(r"\.(?:example|sample|template|tmpl|dist|defaults?)$", re.IGNORECASE)


@policy(
    id="ORG-REPO-006",
    title="No .env files are committed",
    kinds=["repo"],
    severity="high",
    rationale=(
        "`.env` files hold local credentials and connection strings by convention; committed, they leak "
        "them to everyone with read access and into every clone."
    ),
    remediation="""
        Remove the file, rotate any secret it held, ignore it, and commit a template without values:

            # .gitignore
            .env
            .env.*
            !.env.example
    """,
    tags=["secrets"],
)
def no_env_files(doc: Document, ctx: Context) -> Iterator[Violation]:
    """No `.env` or `.env.<name>` file (such as `.env.production`) is committed. Templates meant to be
    committed (`.env.example`, `.env.sample`, `.env.template`, `.env.dist`, `.env.defaults`) are fine.

    The finding points at line 1 of the file.
    """
    for path in doc.data if isinstance(doc.data, (tuple, list)) else ():
        if isinstance(path, str) and ENV_FILE.search(path) and not ENV_TEMPLATES.search(path):
            yield Violation(f"{path} is an environment file; keep it out of the repository", 1, path, path=path)
