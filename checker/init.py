"""`checker init`: put a repository on the paved road.

Writes a starter `.checker.yaml` (never over an existing one without `force`), adds checker's
pre-commit hooks to `.pre-commit-config.yaml` (creating it, or appending one `repos:` entry to
an existing file while keeping what is there) and returns the CI snippet to print.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from checker.errors import ConfigError

RULESET_FILE = ".checker.yaml"
PRE_COMMIT_FILE = ".pre-commit-config.yaml"
HOOKS_REPO = "https://github.com/paved-road/checker"
HOOK_IDS = ("checker", "checker-repo")
TEMPLATES = f"{HOOKS_REPO}/tree/main/ci"

RULESET_TEMPLATE = """\
# The compliance ruleset of this repository, read by `checker scan` (and its pre-commit hooks).
# Check it with `checker ruleset validate .checker.yaml`; see it resolved with
# `checker ruleset show .checker.yaml`; list its rules with `checker rules list`.
apiVersion: checker/v1
kind: Ruleset
metadata:
  name: {name}
  version: 0.1.0
  # owner: team-name@example.com
extends:
  - org-baseline          # the organisation's baseline; add e.g. pci-dss-4.0 for card-data systems

# organisation:           # facts the checks read (these override the baseline's)
#   required_labels: [app, team, data-classification]

# checks:
#   exclude: [CKV_K8S_43]                  # rule ids or globs this repository does not apply
#   severity: {{CKV_K8S_15: low}}            # re-rank a rule
#   params: {{ORG-GHA-001: {{allow_owners: [actions]}}}}

# Waivers: a finding accepted for a while, with who approved it. Expired waivers stop suppressing.
# waivers:
#   - rule: CKV_AWS_20
#     paths: ["infra/legacy/**"]
#     reason: "Legacy bucket; migration tracked in PAY-1234"
#     approved_by: jane.doe@example.com
#     expires: 2027-03-31
#     ticket: PAY-1234

# Paths the scan does not look at (gitignore syntax; .gitignore is honoured already).
# ignore:
#   - "test/fixtures/**"

# gate:
#   fail_on: high         # critical | high | medium | low | info | never
"""

CI_SNIPPET = """\
CI: run the same gate before every deployment. Templates: {templates}
  GitHub Actions  ci/github-actions.yml  -> .github/workflows/compliance.yml
      - run: checker scan . --base org-gate --sarif-output results.sarif \\
             --code-scanning-output code-scanning.sarif --markdown-output summary.md --junit-output junit.xml
      (upload code-scanning.sarif with github/codeql-action/upload-sarif, keep results.sarif as an
       artifact, and make deploy jobs `needs:` the gate job and run in a protected `environment:`)
  GitLab CI       ci/gitlab-ci.yml       -> .gitlab-ci.yml
      compliance-gate:
        script: [checker scan . --base org-gate --sarif-output results.sarif --junit-output junit.xml]
        artifacts: {{when: always, paths: [results.sarif], reports: {{junit: junit.xml}}}}
      deploy-production: {{needs: [compliance-gate], environment: production, when: manual}}
"""


@dataclasses.dataclass(frozen=True)
class SetUp:
    """What `init` did, in the words the CLI prints."""

    actions: tuple[str, ...]
    hints: tuple[str, ...]


def ruleset_text(name: str) -> str:
    return RULESET_TEMPLATE.format(name=ruleset_name(name))


def ruleset_name(folder: str) -> str:
    """A valid metadata.name (`^[A-Za-z0-9][A-Za-z0-9._-]*$`) from a folder name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", folder).strip("-._")
    return name or "repository"


def hook_entry(version: str) -> dict[str, Any]:
    return {"repo": HOOKS_REPO, "rev": f"v{version}",
            "hooks": [{"id": "checker"}, {"id": "checker-repo"}]}


def init(path: Path, version: str, force: bool = False) -> SetUp:
    """Set up `path` (a repository's top folder). Raises ConfigError (exit 2) rather than overwrite.

    Everything is checked before anything is written, so a refusal leaves the folder as it was.
    """
    if not path.is_dir():
        raise ConfigError(f"{path}: no such directory")
    ruleset = path / RULESET_FILE
    if ruleset.exists() and not force:
        raise ConfigError(f"{ruleset}: already exists; not overwriting it (use --force to replace it)")
    config = path / PRE_COMMIT_FILE
    config_text, config_action = plan_hooks(config, version)
    existed = ruleset.exists()
    ruleset.write_text(ruleset_text(path.resolve().name), encoding="utf-8")
    if config_text is not None:
        config.write_text(config_text, encoding="utf-8")
    actions = (f"{'replaced' if existed else 'wrote'} {ruleset}", config_action)
    hints = (("pre-commit install --hook-type pre-commit --hook-type pre-push   "
              "# checker on commit (staged files), checker-repo on push (whole repository)"),
             f"checker ruleset validate {RULESET_FILE}",
             "checker scan .")
    return SetUp(actions, hints)


def plan_hooks(config: Path, version: str) -> tuple[str | None, str]:
    """(new text of the pre-commit config or None to leave it, what that does): checker's hooks
    added, everything already there kept."""
    entry = hook_entry(version)
    if not config.exists():
        fresh = {"default_install_hook_types": ["pre-commit", "pre-push"], "repos": [entry]}
        text = ("# pre-commit hooks: https://pre-commit.com (written by `checker init`)\n"
                + yaml.safe_dump(fresh, sort_keys=False, default_flow_style=False))
        return text, f"wrote {config} with the checker and checker-repo hooks"
    text = config.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{config}: is not valid YAML, so nothing was changed: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict) or not isinstance(data.get("repos") or [], list):
        raise ConfigError(f"{config}: is not a pre-commit config (a mapping with a `repos:` list), "
                          "so nothing was changed")
    present = {hook.get("id") for repo in data.get("repos") or [] if isinstance(repo, dict)
               for hook in repo.get("hooks") or [] if isinstance(hook, dict)}
    ours = sorted(hook_id for hook_id in HOOK_IDS if hook_id in present)
    if ours:
        return None, f"kept {config}: it already has the {', '.join(ours)} hook(s)"
    wanted = {**data, "repos": [*(data.get("repos") or []), entry]}
    appended = _append_text(text, data, entry)
    if appended is not None and _same(appended, wanted):
        return appended, f"added the checker and checker-repo hooks to {config}"
    # The file's layout does not allow a plain insertion (flow style...): rewrite it from the data.
    return (yaml.safe_dump(wanted, sort_keys=False, default_flow_style=False),
            f"added the checker and checker-repo hooks to {config} (rewritten: its comments were not kept)")


def _append_text(text: str, data: dict[str, Any], entry: dict[str, Any]) -> str | None:
    """The file with the entry appended as text, which keeps comments and layout; None when it cannot be."""
    if not data.get("repos"):
        if "repos" in data:
            return None
        return text.rstrip("\n") + ("\n" if text.strip() else "") + _block({"repos": [entry]}, "")
    match = re.search(r"^repos:[ \t]*(#.*)?$", text, re.MULTILINE)
    if match is None:
        return None
    after = text[match.end():]
    items = re.search(r"^([ \t]*)- ", after, re.MULTILINE)
    if items is None:
        return None
    # the `repos:` block ends at the next top-level key (or document marker), else at the end of the file
    following = re.search(r"^(?=[^\s#-]|---|\.\.\.)", after[items.start():], re.MULTILINE)
    end = match.end() + items.start() + following.start() if following else len(text)
    head, tail = text[:end].rstrip("\n"), text[end:]
    return head + "\n" + _block([entry], items.group(1)) + tail


def _block(value: Any, indent: str) -> str:
    dumped = yaml.safe_dump(value, sort_keys=False, default_flow_style=False, indent=2)
    return "".join(indent + line if line.strip() else line for line in dumped.splitlines(keepends=True))


def _same(text: str, wanted: dict[str, Any]) -> bool:
    try:
        return bool(yaml.safe_load(text) == wanted)
    except yaml.YAMLError:
        return False


def ci_snippet() -> str:
    return CI_SNIPPET.format(templates=TEMPLATES)


def repository_root(start: Path) -> Path:
    """The top folder of the git repository holding `start`, else `start` itself."""
    import subprocess

    try:
        done = subprocess.run(["git", "-C", str(start), "rev-parse", "--show-toplevel"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return start
    top = done.stdout.strip()
    return Path(top) if done.returncode == 0 and top else start
