"""What was scanned: the git commit, branch and repository of the scan root, when it is a checkout."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path


def git_provenance(root: Path) -> dict[str, str]:
    """{'repositoryUri', 'revisionId', 'branch', 'mappedTo'} for a git checkout; {} otherwise."""
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    info = {"revisionId": commit, "toplevel": git("rev-parse", "--show-toplevel")}
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        info["branch"] = branch
    remote = _public_url(git("remote", "get-url", "origin"))
    if remote:
        info["repositoryUri"] = remote
    return info


def _public_url(url: str) -> str:
    """An https URL for the remote without credentials (git@host:org/repo -> https://host/org/repo)."""
    if not url:
        return ""
    match = re.match(r"^[\w.-]+@([\w.-]+):(.+?)(?:\.git)?$", url)
    if match:
        return f"https://{match[1]}/{match[2]}"
    url = re.sub(r"^(https?://)[^@/]+@", r"\1", url)
    url = re.sub(r"\.git$", "", url)
    return url if url.startswith(("https://", "http://")) else ""
