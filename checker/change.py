"""What was scanned and which ticket asked for it: the git facts of the scan root, the CI's context
and the tickets the change names.

A change manager accepts a gate decision in place of an approval only when it says which commit
was checked (remote or not), whether the working tree was that commit (a dirty tree is not), who
or what ran it and which ticket the change belongs to (PCI DSS 6.5.1, DORA Art. 9(4)(e)). Every
fact here is recorded as git or the CI states it, never guessed: a value git cannot give and the
CI does not set stays empty, and what could not be read is a note, never an exception.

Everything read here may be written by the author of the change (a commit message, a branch name,
a pull request title, the event payload): it is bounded in length and count and only ever matched
against the ticket pattern, never run or interpreted.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

GIT_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # a full SHA-1 or SHA-256 object name, as git prints it
TICKET_SOURCES = ("commits", "branch", "pull_request")

# Identifiers that look like `KEY-123` but are never tickets: advisories and weaknesses (always
# refused, whatever the pattern), then standards, algorithms and encodings (left out of the
# default pattern only; an organisation with a Jira project called ISO writes its own pattern).
ADVISORY_PREFIXES = ("CVE", "CWE", "GHSA", "CAPEC", "OSV", "PYSEC", "RUSTSEC", "GO", "RHSA", "RHBA", "RHEA",
                     "DSA", "DLA", "USN", "GLSA", "ALAS", "ELSA", "MFSA", "BDSA", "SNYK")
NOT_TICKETS = ("UTF", "UCS", "SHA", "MD", "AES", "RSA", "DES", "ECDSA", "HMAC", "ISO", "IEC", "IEEE", "RFC",
               "TLS", "SSL", "DTLS", "HTTP", "PEP", "ECMA", "NIST", "FIPS", "SP", "PCI", "DSS", "SOC", "ARM",
               "AMD", "X86", "WIN", "LATIN", "CP", "BASE", "COVID", "IPV", "GPT")
DEFAULT_TICKET_PATTERN = (
    r"(?<![A-Za-z0-9-])"  # a key starts a word: never the tail of ORG-GHA-001 or PCI-DSS-4
    rf"(?!(?:{'|'.join(ADVISORY_PREFIXES + NOT_TICKETS)})-)"
    r"[A-Z][A-Z0-9]{1,9}-[1-9][0-9]{0,8}"  # Jira: PROJECT-NUMBER, a number never written with a leading 0
    r"(?![A-Za-z0-9])"
)
_ADVISORY = re.compile(rf"^(?:{'|'.join(ADVISORY_PREFIXES)})-", re.IGNORECASE)

GIT_TIMEOUT = 20  # seconds one git command may take (a status of a very large checkout)
MAX_COMMITS = 500  # commit messages read from base..HEAD
MAX_MESSAGE = 4096  # characters of one commit message
MAX_VALUE = 1024  # characters of any value recorded from git, the CI or the event payload
MAX_TICKETS = 50
MAX_PLACES = 20  # places recorded for one ticket
MAX_EVENT_BYTES = 8 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ChangeSettings:
    """The ruleset's `change:` section: what a ticket looks like, where to look, whether one is needed.

    `required_by` is where `require_ticket` was last set (`FILE:LINE`, FILE as the ruleset records
    it: `bundled:NAME`, a path relative to the repository or `external:NAME`); it says where the
    requirement comes from and is not part of the settings (nor of the ruleset's digest).
    """

    ticket_pattern: str = DEFAULT_TICKET_PATTERN
    ticket_sources: tuple[str, ...] = TICKET_SOURCES
    require_ticket: bool = False
    required_by: str = dataclasses.field(default="", compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {"ticket_pattern": self.ticket_pattern, "ticket_sources": list(self.ticket_sources),
                "require_ticket": self.require_ticket}


DEFAULT_CHANGE = ChangeSettings()


@dataclasses.dataclass(frozen=True)
class Ticket:
    """A ticket key and every place it was found (`commit 1a2b3c4d5e6f`, `branch X`, `pull request title`)."""

    id: str
    found_in: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Change:
    """The change a scan judged. Empty strings are facts nobody stated (outside git, no CI)."""

    repository: str = ""  # credential-free URL of `origin`, else the CI's repository URL
    commit: str = ""  # the full HEAD commit
    branch: str = ""  # git's branch, else the CI's (a detached checkout)
    dirty: bool = False  # tracked changes or untracked files that are not ignored
    toplevel: str = ""  # the checkout's top folder (for reporters; never recorded)
    tickets: tuple[Ticket, ...] = ()
    ticket_required: bool = False
    ci: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what could not be read, for the scan's notes (never recorded)
    required_by: str = ""  # ChangeSettings.required_by
    looked_in: tuple[str, ...] = ()  # where tickets were looked for, for messages

    def as_dict(self) -> dict[str, Any]:
        """The `change` object of the gate-decision predicate (camelCase; unknown facts are null)."""
        return {
            "repository": self.repository or None, "commit": self.commit or None, "branch": self.branch or None,
            "dirty": self.dirty,
            "tickets": [{"id": t.id, "foundIn": list(t.found_in)} for t in self.tickets],
            "ticketRequired": self.ticket_required,
            "ci": _plain(self.ci) if self.ci else None,
        }


def detect(root: Path, settings: ChangeSettings, environ: Mapping[str, str], base_rev: str | None = None) -> Change:
    """The change at `root`: git facts, the CI's context from `environ`, the tickets `settings` look for.

    `base_rev` is where the change starts (`--change-base`); without it, the pull or merge request
    base the CI names, else HEAD's message alone. Never raises: what cannot be read is a note.
    """
    notes: list[str] = []
    ci = _ci(environ, notes)
    git = _Git(root)
    commit = git.run("rev-parse", "--verify", "--quiet", "HEAD^{commit}").strip()
    if not _is_sha(commit):
        commit = ""
        if git.refused:
            notes.append(f"git refuses to read the checkout at {root}: {git.refused}; the commit is not recorded")
    toplevel = git.run("rev-parse", "--show-toplevel").strip() if commit else ""
    branch = ""
    if commit:
        branch = git.run("symbolic-ref", "--quiet", "--short", "HEAD").strip()
    branch = _bounded(branch or _ci_branch(environ))
    repository = _public_url(git.run("remote", "get-url", "origin").strip()) if commit else ""
    repository = repository or str(ci.get("repositoryUrl", ""))
    dirty = _dirty(git, notes) if commit else False

    tickets = _Tickets(settings.ticket_pattern)
    looked_in: list[str] = []
    for source in settings.ticket_sources:
        if source == "branch" and branch:
            looked_in.append(f"the branch name ({branch})")
            tickets.scan(branch, f"branch {branch}")
        elif source == "pull_request":
            title = str(ci.get("pullRequest", {}).get("title", ""))
            place = "merge request title" if ci.get("provider") == "gitlab-ci" else "pull request title"
            if title:
                looked_in.append(f"the {place}")
                tickets.scan(title, place)
        elif source == "commits" and commit:
            messages, described = _messages(git, _base(base_rev, ci, environ), notes)
            looked_in.append(described)
            for sha, message in messages:
                tickets.scan(message, f"commit {sha[:12]}")
    notes.extend(tickets.notes)
    return Change(
        repository=repository, commit=commit, branch=branch, dirty=dirty, toplevel=toplevel,
        tickets=tickets.found(), ticket_required=settings.require_ticket, ci=ci, notes=tuple(notes),
        required_by=settings.required_by, looked_in=tuple(looked_in),
    )


def is_advisory(ticket: str) -> bool:
    """CVE-, CWE-, GHSA-style ids (and other advisories) are never tickets, whatever the pattern."""
    return bool(_ADVISORY.match(ticket))


# --- git ---------------------------------------------------------------------------------------


class _Git:
    """git at the scan root: fsmonitor off (a repository's hook must not run inside the gate), a
    timeout, bounded output; a failure is an empty answer, never an exception."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.refused = ""  # why git refused the checkout (dubious ownership), for a note

    def run(self, *args: str, limit: int = 64 * 1024) -> str:
        out, ok = self.read(*args, limit=limit)
        return out if ok else ""

    def first_line(self, args: Sequence[str], wanted: Callable[[str], bool], separator: bytes = b"\n") -> str | None:
        """The first record of git's output (any length) for which `wanted` holds; '' when none does,
        None when git failed. The output is streamed, never held whole (an index of 100,000 files)."""
        command = ["git", "-c", "core.fsmonitor=false", "--no-optional-locks", "-C", str(self.root), *args]
        try:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, env=_git_environ())
        except OSError:
            return None
        timer = threading.Timer(GIT_TIMEOUT, proc.kill)
        timer.start()
        found, pending = "", b""
        try:
            assert proc.stdout is not None
            while chunk := proc.stdout.read(256 * 1024):
                *records, pending = (pending + chunk).split(separator)
                found = next((r.decode("utf-8", "replace") for r in records if wanted(r.decode("utf-8", "replace"))),
                             "")
                if found:
                    proc.kill()
                    break
            if not found and pending and wanted(pending.decode("utf-8", "replace")):
                found = pending.decode("utf-8", "replace")
            code = proc.wait()
        except (OSError, ValueError):
            proc.kill()
            return None
        finally:
            timer.cancel()
            if proc.stdout is not None:
                proc.stdout.close()
        return found if found or code == 0 else None

    def read(self, *args: str, limit: int = 64 * 1024) -> tuple[str, bool]:
        """(output up to `limit` bytes, whether git succeeded); cut output counts as success."""
        command = ["git", "-c", "core.fsmonitor=false", "--no-optional-locks", "-C", str(self.root), *args]
        try:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=_git_environ())
        except OSError:
            return "", False
        timer = threading.Timer(GIT_TIMEOUT, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None and proc.stderr is not None
            data = proc.stdout.read(limit + 1)
            cut = len(data) > limit
            if cut:
                proc.kill()
            error = proc.stderr.read(4096)
            code = proc.wait()
        except (OSError, ValueError):
            proc.kill()
            return "", False
        finally:
            timer.cancel()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        text = data[:limit].decode("utf-8", errors="replace")
        if b"dubious ownership" in error:
            self.refused = "it belongs to another user (git's safe.directory)"
        return text, cut or code == 0


_GIT_VARIABLES_DROPPED = ("GIT_PAGER", "PAGER", "GIT_EXTERNAL_DIFF", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE",
                          "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR",
                          "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES", "GIT_DISCOVERY_ACROSS_FILESYSTEM")


def _git_environ() -> dict[str, str]:
    """The environment without what would make git ask a question, page or read another repository's index."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_VARIABLES_DROPPED}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"})
    return env


def _is_sha(text: str) -> bool:
    return bool(GIT_COMMIT.fullmatch(text))


def _dirty(git: _Git, notes: list[str]) -> bool:
    """Tracked changes or untracked files that are not ignored, whatever the repository's config
    says to hide (status.showUntrackedFiles, submodule ignore settings). When git cannot tell, the
    tree counts as dirty: a scan of an unknown tree is not evidence for the commit."""
    out, ok = git.read("status", "--porcelain", "--untracked-files=normal", "--ignore-submodules=none", limit=4096)
    if not ok:
        notes.append("git status failed, so the working tree is recorded as having uncommitted changes")
        return True
    if out.strip():
        return True
    flagged = git.first_line(("ls-files", "-v", "-z"), lambda entry: not entry.startswith("H "), separator=b"\0")
    if flagged is None:
        notes.append("git ls-files failed, so the working tree is recorded as having uncommitted changes")
        return True
    if flagged:
        notes.append(f"{_bounded(flagged[2:], 200)} is marked skip-worktree or assume-unchanged (or is otherwise not "
                     "as committed), which git status does not show: the tree is recorded as having uncommitted "
                     "changes")
        return True
    return False


def uncommitted(toplevel: str, paths: Sequence[Path]) -> list[str]:
    """Which of `paths` (files the scan read besides what discovery walked: the ruleset's layers, the
    baseline) are inside the checkout but not committed there. An ignored, untracked `.checker.yaml`
    leaves `git status` clean, yet it decides what the gate checks."""
    top = Path(toplevel)
    inside = [p for p in paths if Path(os.path.realpath(p)).is_relative_to(top)]
    if not inside:
        return []
    rel = [Path(os.path.realpath(p)).relative_to(top).as_posix() for p in inside]
    out, ok = _Git(top).read("ls-files", "-z", "--full-name", "--", *(f":(literal){r}" for r in rel),
                             limit=1024 * 1024)
    tracked = set(out.split("\0")) if ok else set()
    return [r for r in rel if r not in tracked]


def tracks_any(toplevel: str, folder: Path) -> bool:
    """Whether git tracks a file in `folder` (the result cache's, when it is inside the checkout), or
    cannot say: what the repository being judged committed there must never stand in for results."""
    real, top = Path(os.path.realpath(folder)), Path(toplevel)
    if not real.is_relative_to(top):
        return False
    rel = real.relative_to(top).as_posix()
    found = _Git(top).first_line(["ls-files", "-z", "--full-name", "--", f":(literal){rel}"], bool, b"\0")
    return found != ""


def _base(base_rev: str | None, ci: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(revision, where it came from): --change-base, else the pull or merge request base the CI names."""
    if base_rev:
        return base_rev, "--change-base"
    pull = ci.get("pullRequest", {})
    if ci.get("provider") == "github-actions":
        if pull.get("baseSha"):
            return str(pull["baseSha"]), "the pull request's base"
        if environ.get("GITHUB_BASE_REF"):
            return f"origin/{environ['GITHUB_BASE_REF']}", "the pull request's base branch"
    if ci.get("provider") == "gitlab-ci" and pull.get("baseSha"):
        return str(pull["baseSha"]), "the merge request's diff base"
    return None


def _messages(git: _Git, base: tuple[str, str] | None, notes: list[str]) -> tuple[list[tuple[str, str]], str]:
    """The messages of base..HEAD (HEAD alone without a base, or with one git cannot resolve), and
    how the change's commits were chosen (for the finding's message)."""
    resolved = ""
    if base:
        revision, origin = base
        if revision.startswith("-") or len(revision) > 256:
            notes.append(f"the change's base from {origin} is not a revision git can take: only HEAD's message "
                         "was read")
        else:
            resolved = git.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}").strip()
            if not _is_sha(resolved):
                resolved = ""
                notes.append(f"the change's base {_bounded(revision, 80)!r} ({origin}) is not in this clone (a shallow "
                              "clone?): only HEAD's commit message was searched for tickets; fetch the history "
                              "(fetch-depth: 0, GIT_DEPTH: 0) to search every commit of the change")
    selection = [f"{resolved}..HEAD"] if resolved else ["-1", "HEAD"]
    if resolved and _is_sha(git.run("rev-parse", "--verify", "--quiet", "HEAD^2").strip()):
        # a pull request's merge commit: its first parent is the base branch as it is now, which may
        # be newer than the base the event named; other people's commits there are not this change's
        selection.append("^HEAD^1")
    out, ok = git.read("log", "--no-color", f"--max-count={MAX_COMMITS + 1}", "--format=%H%x00%B%x1e",
                       *selection, "--", limit=MAX_COMMITS * (MAX_MESSAGE + 64))
    if not ok:
        notes.append("git log failed, so no commit message was searched for tickets")
        return [], "no commit message (git log failed)"
    messages = []
    for record in out.split("\x1e"):
        sha, _, message = record.strip("\n").partition("\x00")
        if _is_sha(sha):
            messages.append((sha, message[:MAX_MESSAGE]))
    if len(messages) > MAX_COMMITS:
        messages = messages[:MAX_COMMITS]
        notes.append(f"the change has more than {MAX_COMMITS} commits; tickets were looked for in the newest "
                     f"{MAX_COMMITS} only")
    described = f"the {len(messages)} commit message(s) since {resolved[:12]}" if resolved else "HEAD's commit message"
    return messages, described


def _public_url(url: str) -> str:
    """An https URL of the remote without credentials, query or fragment
    (git@host:org/repo.git and ssh://git@host:22/org/repo -> https://host/org/repo); '' for a local path."""
    if not url or len(url) > 2048 or any(c.isspace() for c in url):
        return ""
    match = re.match(r"^(?:ssh://)?[\w.-]+@([\w.-]+)(?::\d+)?[:/](.+?)(?:\.git)?/?$", url)
    if match and not url.startswith(("http://", "https://")):
        return f"https://{match[1]}/{match[2].lstrip('/')}"
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not host:
        return ""
    path = re.sub(r"\.git/?$", "", parts.path).rstrip("/")
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{path}"


# --- the CI ------------------------------------------------------------------------------------


def _ci(environ: Mapping[str, str], notes: list[str]) -> dict[str, Any]:
    """The CI's context as its variables (and GitHub's event payload) state it; {} outside GitHub
    Actions and GitLab CI."""
    if environ.get("GITHUB_ACTIONS") == "true":
        return _github(environ, _event(environ.get("GITHUB_EVENT_PATH", ""), notes), notes)
    if environ.get("GITLAB_CI") == "true":
        return _gitlab(environ, notes)
    return {}


def _github(environ: Mapping[str, str], event: Mapping[str, Any], notes: list[str]) -> dict[str, Any]:
    get = _reader(environ)
    server, repo, run, attempt = get("GITHUB_SERVER_URL"), get("GITHUB_REPOSITORY"), get("GITHUB_RUN_ID"), \
        get("GITHUB_RUN_ATTEMPT")
    out: dict[str, Any] = {"provider": "github-actions", "server": server, "repository": repo}
    if server and repo:
        out["repositoryUrl"] = f"{server}/{repo}"
        if run:
            out["runUrl"] = f"{server}/{repo}/actions/runs/{run}" + (f"/attempts/{attempt}" if attempt else "")
    out.update(workflow=get("GITHUB_WORKFLOW"), workflowRef=get("GITHUB_WORKFLOW_REF"), job=get("GITHUB_JOB"),
               actor=get("GITHUB_ACTOR"), triggeringActor=get("GITHUB_TRIGGERING_ACTOR"),
               event=get("GITHUB_EVENT_NAME"), ref=get("GITHUB_REF"), sha=get("GITHUB_SHA"))
    pull: dict[str, Any] = {}
    payload = event.get("pull_request")
    if isinstance(payload, dict):
        base: dict[str, Any] = payload["base"] if isinstance(payload.get("base"), dict) else {}
        head: dict[str, Any] = payload["head"] if isinstance(payload.get("head"), dict) else {}
        pull = {"number": _number(payload.get("number"), "the event payload's pull_request.number", notes),
                "title": _text(payload.get("title")), "url": _text(payload.get("html_url")),
                "baseRef": _text(base.get("ref")), "baseSha": _sha_text(base.get("sha")),
                "headRef": _text(head.get("ref"))}
    else:
        match = re.fullmatch(r"refs/pull/([0-9]+)/(?:merge|head)", environ.get("GITHUB_REF", ""))
        if match or get("GITHUB_HEAD_REF"):
            pull = {"number": _number(match[1], "GITHUB_REF", notes) if match else None}
    if pull:
        pull.setdefault("baseRef", "")
        pull.setdefault("headRef", "")
        pull["baseRef"] = pull["baseRef"] or get("GITHUB_BASE_REF")
        pull["headRef"] = pull["headRef"] or get("GITHUB_HEAD_REF")
        if pull.get("number") is not None and pull.get("url") in (None, "") and server and repo:
            pull["url"] = f"{server}/{repo}/pull/{pull['number']}"
        out["pullRequest"] = pull
    return _pruned(out)


def _gitlab(environ: Mapping[str, str], notes: list[str]) -> dict[str, Any]:
    get = _reader(environ)
    out: dict[str, Any] = {
        "provider": "gitlab-ci", "server": get("CI_SERVER_URL"), "repository": get("CI_PROJECT_PATH"),
        "repositoryUrl": get("CI_PROJECT_URL"), "runUrl": get("CI_PIPELINE_URL"), "jobUrl": get("CI_JOB_URL"),
        "actor": get("GITLAB_USER_LOGIN"), "event": get("CI_PIPELINE_SOURCE"), "ref": get("CI_COMMIT_REF_NAME"),
        "sha": get("CI_COMMIT_SHA"),
    }
    iid = get("CI_MERGE_REQUEST_IID")
    if iid:
        number = _number(iid, "CI_MERGE_REQUEST_IID", notes)
        project = get("CI_MERGE_REQUEST_PROJECT_URL")
        out["pullRequest"] = {
            "number": number, "title": get("CI_MERGE_REQUEST_TITLE"),
            "url": f"{project}/-/merge_requests/{number}" if project and number is not None else "",
            "baseRef": get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"),
            "baseSha": _sha_text(get("CI_MERGE_REQUEST_DIFF_BASE_SHA")),
            "headRef": get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"),
        }
    return _pruned(out)


def _ci_branch(environ: Mapping[str, str]) -> str:
    """The branch the CI built, for a detached checkout: the pull/merge request's source branch, else the
    pushed branch (a tag is not a branch)."""
    if environ.get("GITHUB_ACTIONS") == "true":
        ref = environ.get("GITHUB_REF", "")
        return environ.get("GITHUB_HEAD_REF") or (ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/")
                                                  else "")
    if environ.get("GITLAB_CI") == "true":
        return environ.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") or environ.get("CI_COMMIT_BRANCH", "")
    return ""


def _event(path: str, notes: list[str]) -> dict[str, Any]:
    """GitHub's event payload (GITHUB_EVENT_PATH), read bounded; {} with a note when it cannot be used."""
    if not path:
        return {}
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_EVENT_BYTES + 1)
    except OSError as error:
        notes.append(f"the GitHub event payload (GITHUB_EVENT_PATH) cannot be read: {error.strerror or error}")
        return {}
    if len(data) > MAX_EVENT_BYTES:
        notes.append(f"the GitHub event payload (GITHUB_EVENT_PATH) is over {MAX_EVENT_BYTES} bytes, so it was "
                     "not read")
        return {}
    try:
        event = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        notes.append(f"the GitHub event payload (GITHUB_EVENT_PATH) is not JSON ({_bounded(str(error), 200)}); "
                     "the pull request's number, title and base are not recorded")
        return {}
    if not isinstance(event, dict):
        notes.append("the GitHub event payload (GITHUB_EVENT_PATH) is not a JSON object; it was not used")
        return {}
    return event


def _reader(environ: Mapping[str, str]) -> Any:
    return lambda name: _bounded(environ.get(name, ""))


def _text(value: Any) -> str:
    return _bounded(value) if isinstance(value, str) else ""


def _sha_text(value: Any) -> str:
    text = _text(value)
    return text if _is_sha(text) else ""


def _number(value: Any, origin: str, notes: list[str]) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**12:
        return value
    if isinstance(value, str) and re.fullmatch(r"[1-9][0-9]{0,11}", value):
        return int(value)
    if value not in (None, ""):
        notes.append(f"{origin} is not a pull or merge request number ({_bounded(repr(value), 40)}); not recorded")
    return None


def _bounded(value: Any, limit: int = MAX_VALUE) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _pruned(ci: dict[str, Any]) -> dict[str, Any]:
    """Keys the CI did not set are left out, not recorded empty."""
    out: dict[str, Any] = {}
    for key, value in ci.items():
        if isinstance(value, dict):
            value = _pruned(value)
        if value not in ("", None, {}):
            out[key] = value
    return out


def _plain(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    return node


# --- tickets -----------------------------------------------------------------------------------


class _Tickets:
    """Ticket keys in the order first found, each with where (bounded in count)."""

    def __init__(self, pattern: str) -> None:
        try:
            self.pattern: re.Pattern[str] | None = re.compile(pattern)
        except re.error:  # the loader refuses it first; a bad pattern finds nothing here
            self.pattern = None
        self.places: dict[str, list[str]] = {}
        self.notes: list[str] = []

    def scan(self, text: str, place: str) -> None:
        if self.pattern is None:
            return
        for match in self.pattern.finditer(text):
            ticket = match.group("id") if "id" in self.pattern.groupindex else match.group(0)
            if not ticket or is_advisory(ticket):
                continue
            ticket = _bounded(ticket, 100)
            if ticket not in self.places:
                if len(self.places) >= MAX_TICKETS:
                    if not self.notes:
                        self.notes.append(f"the change names more than {MAX_TICKETS} tickets; the first "
                                          f"{MAX_TICKETS} are recorded")
                    continue
                self.places[ticket] = []
            places = self.places[ticket]
            if place not in places and len(places) < MAX_PLACES:
                places.append(place)

    def found(self) -> tuple[Ticket, ...]:
        return tuple(Ticket(t, tuple(p)) for t, p in self.places.items())


def find_tickets(text: str, pattern: str = DEFAULT_TICKET_PATTERN) -> list[str]:
    """The ticket keys `pattern` finds in `text`, in order, without repeats (advisory ids left out)."""
    found = _Tickets(pattern)
    found.scan(text, "text")
    return [t.id for t in found.found()]
