"""The change a scan judged: git facts of real repositories, the CI's context as GitHub Actions and
GitLab CI set it, the tickets a change names, the ruleset's `change:` section and its lock, and
ORG-CHANGE-001 through the real CLI. No mocks: real git, real files, real environment variables."""
from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from testkit import ruleset_text, sarif_problems

from checker import change as change_module
from checker import scan
from checker.change import (
    DEFAULT_CHANGE,
    Change,
    ChangeSettings,
    Ticket,
    detect,
    find_tickets,
)
from checker.errors import ConfigError
from checker.policy import Context
from checker.ruleset import load_ruleset

IDENTITY = ["-c", "user.name=Dev", "-c", "user.email=dev@example.com", "-c", "commit.gpgsign=false",
            "-c", "init.defaultBranch=main", "-c", "core.hooksPath=/dev/null"]
CI_PREFIXES = ("GITHUB_", "GITLAB_", "CI_")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *IDENTITY, "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit(repo: Path, message: str, name: str | None = None) -> str:
    """Commit a new file (or nothing new) with `message`; the new HEAD."""
    if name:
        (repo / name).write_text(message + "\n")
        git(repo, "add", name)
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / ".gitignore").write_text("build/\n")
    git(path, "add", ".gitignore")
    git(path, "commit", "-q", "-m", "Initial commit")
    return path


@pytest.fixture(autouse=True)
def no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests set CI variables themselves; the CI running them must not leak its own."""
    for name in [n for n in os.environ if n.startswith(CI_PREFIXES) or n == "CI"]:
        monkeypatch.delenv(name)


# --- the default ticket pattern ---------------------------------------------------------------

@pytest.mark.parametrize("text, tickets", [
    ("PAY-1234 rotate keys", ["PAY-1234"]),
    ("feature/PAY-12-x", ["PAY-12"]),
    ("[OPS-7] fix", ["OPS-7"]),
    ("fix_PAY-8", ["PAY-8"]),
    ("ABC2-99 and PAY-1, again PAY-1", ["ABC2-99", "PAY-1"]),
    ("Merge pull request #42 from org/PAYMENTS-310-refunds", ["PAYMENTS-310"]),
    ("PAY-0123", []),  # a Jira number never starts with 0
    ("pay-12", []),  # keys are upper case
    ("A-1", []),  # a key has at least two characters
    ("ABCDEFGHIJK-1", []),  # and at most ten
    ("PAY-12x", []),
    ("CVE-2024-3094", []),
    ("CWE-79", []),
    ("GHSA-1234-abcd-efgh", []),
    ("CAPEC-66", []),
    ("GO-2023-1234", []),
    ("UTF-8", []),
    ("SHA-256", []),
    ("ISO-27001", []),
    ("ISO-IEC-27001", []),
    ("RFC-7231", []),
    ("TLS-1.2", []),
    ("PCI-DSS-4.0", []),
    ("ORG-GHA-001", []),
    ("ORG-CHANGE-123", []),  # not the tail of a rule id either
    ("X86-64", []),
])
def test_the_default_pattern(text: str, tickets: list[str]) -> None:
    assert find_tickets(text) == tickets


def test_a_custom_pattern_never_takes_an_advisory_for_a_ticket_and_may_name_its_key() -> None:
    assert find_tickets("CVE-2024-1 PAY-2 cwe-3", r"(?i)[a-z]+-[0-9]+") == ["PAY-2"]
    assert find_tickets("see #12 and #3", r"#(?P<id>[0-9]+)") == ["12", "3"]


# --- git facts ---------------------------------------------------------------------------------

def test_a_clean_repository_without_a_remote_still_names_its_commit(repo: Path) -> None:
    head = commit(repo, "Add the service", "app.txt")
    found = detect(repo, DEFAULT_CHANGE, {})
    assert (found.commit, found.branch, found.repository, found.dirty) == (head, "main", "", False)
    assert len(found.commit) == 40
    assert Path(found.toplevel) == repo.resolve()
    assert found.notes == ()


def test_a_subfolder_reports_the_whole_checkout(repo: Path) -> None:
    (repo / "sub").mkdir()
    commit(repo, "sub", "sub/a.txt")
    found = detect(repo / "sub", DEFAULT_CHANGE, {})
    assert Path(found.toplevel) == repo.resolve() and found.commit == git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize("make_dirty", [
    lambda r: (r / ".gitignore").write_text("changed\n"),  # a tracked change
    lambda r: (r / "new.txt").write_text("x"),  # an untracked file that is not ignored
    lambda r: git(r, "rm", "-q", "--cached", ".gitignore"),  # a staged change
], ids=["tracked", "untracked", "staged"])
def test_uncommitted_changes_make_the_tree_dirty(repo: Path, make_dirty: Callable[[Path], object]) -> None:
    make_dirty(repo)
    assert detect(repo, DEFAULT_CHANGE, {}).dirty is True


def test_ignored_files_do_not_make_the_tree_dirty(repo: Path) -> None:
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_text("x")
    assert detect(repo, DEFAULT_CHANGE, {}).dirty is False


def test_the_repository_cannot_hide_untracked_files_by_configuration(repo: Path) -> None:
    git(repo, "config", "status.showUntrackedFiles", "no")
    (repo / "new.txt").write_text("x")
    assert detect(repo, DEFAULT_CHANGE, {}).dirty is True


def test_a_repository_fsmonitor_hook_never_runs(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    git(repo, "config", "core.fsmonitor", str(hook))
    (repo / "new.txt").write_text("x")
    assert detect(repo, DEFAULT_CHANGE, {}).dirty is True
    assert not marker.exists()


@pytest.mark.parametrize("url, public", [
    ("https://ci-bot:ghp_secret123@github.com/example-org/payments.git", "https://github.com/example-org/payments"),
    ("https://oauth2:glpat-xyz@gitlab.example.com/group/sub/payments", "https://gitlab.example.com/group/sub/payments"),
    ("git@github.com:example-org/payments.git", "https://github.com/example-org/payments"),
    ("ssh://git@gitlab.example.com:2222/group/payments.git", "https://gitlab.example.com/group/payments"),
    ("https://github.com/example-org/payments.git?token=abc#frag", "https://github.com/example-org/payments"),
])
def test_the_origin_is_recorded_without_credentials(repo: Path, url: str, public: str) -> None:
    git(repo, "remote", "add", "origin", url)
    found = detect(repo, DEFAULT_CHANGE, {})
    assert found.repository == public
    assert "secret" not in repr(found.as_dict()) and "glpat" not in repr(found.as_dict())


def test_a_local_origin_is_no_repository_url_and_the_ci_one_is_used(repo: Path, tmp_path: Path) -> None:
    git(repo, "remote", "add", "origin", str(tmp_path / "elsewhere"))
    assert detect(repo, DEFAULT_CHANGE, {}).repository == ""
    env = {"GITLAB_CI": "true", "CI_PROJECT_URL": "https://gitlab.example.com/group/payments"}
    assert detect(repo, DEFAULT_CHANGE, env).repository == "https://gitlab.example.com/group/payments"


def test_outside_git_the_git_facts_are_empty_and_nothing_raises(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    found = detect(folder, DEFAULT_CHANGE, {})
    assert found == Change(looked_in=())
    assert found.as_dict() == {"repository": None, "commit": None, "branch": None, "dirty": False, "tickets": [],
                               "ticketRequired": False, "ci": None}
    assert detect(tmp_path / "missing", DEFAULT_CHANGE, {}).commit == ""


def test_a_detached_checkout_takes_the_branch_the_ci_names(repo: Path) -> None:
    head = commit(repo, "work")
    git(repo, "checkout", "-q", "--detach", head)
    assert detect(repo, DEFAULT_CHANGE, {}).branch == ""
    github = {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/release/2.1"}
    assert detect(repo, DEFAULT_CHANGE, github).branch == "release/2.1"
    pull = {**github, "GITHUB_REF": "refs/pull/7/merge", "GITHUB_HEAD_REF": "feature/PAY-9-x"}
    assert detect(repo, DEFAULT_CHANGE, pull).branch == "feature/PAY-9-x"
    tag = {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/tags/v1.0"}
    assert detect(repo, DEFAULT_CHANGE, tag).branch == ""
    gitlab = {"GITLAB_CI": "true", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main"}
    assert detect(repo, DEFAULT_CHANGE, gitlab).branch == "main"


# --- the CI's context --------------------------------------------------------------------------

def github_pull_request(tmp_path: Path, title: str = "PAY-77: refunds", base_sha: str = "1" * 40,
                        **extra: str) -> dict[str, str]:
    """The variables GitHub Actions sets for a pull_request event, with a real event payload file."""
    event = {
        "action": "synchronize", "number": 77,
        "pull_request": {
            "number": 77, "title": title, "html_url": "https://github.com/example-org/payments/pull/77",
            "base": {"ref": "main", "sha": base_sha, "repo": {"full_name": "example-org/payments"}},
            "head": {"ref": "feature/refunds", "sha": "2" * 40}, "body": "long text " * 200,
        },
        "repository": {"full_name": "example-org/payments"},
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return {
        "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "example-org/payments", "GITHUB_RUN_ID": "9876543210", "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_WORKFLOW": "gate",
        "GITHUB_WORKFLOW_REF": "example-org/payments/.github/workflows/gate.yml@refs/pull/77/merge",
        "GITHUB_JOB": "compliance", "GITHUB_ACTOR": "alice", "GITHUB_TRIGGERING_ACTOR": "bob",
        "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(path), "GITHUB_REF": "refs/pull/77/merge",
        "GITHUB_SHA": "3" * 40, "GITHUB_HEAD_REF": "feature/refunds", "GITHUB_BASE_REF": "main", **extra,
    }


GITLAB_MERGE_REQUEST = {
    "CI": "true", "GITLAB_CI": "true", "CI_SERVER_URL": "https://gitlab.example.com",
    "CI_PROJECT_PATH": "group/payments", "CI_PROJECT_URL": "https://gitlab.example.com/group/payments",
    "CI_PIPELINE_ID": "555", "CI_PIPELINE_URL": "https://gitlab.example.com/group/payments/-/pipelines/555",
    "CI_JOB_URL": "https://gitlab.example.com/group/payments/-/jobs/999", "GITLAB_USER_LOGIN": "carol",
    "CI_PIPELINE_SOURCE": "merge_request_event", "CI_COMMIT_REF_NAME": "feature/refunds",
    "CI_COMMIT_SHA": "4" * 40, "CI_MERGE_REQUEST_IID": "12", "CI_MERGE_REQUEST_TITLE": "Refunds for OPS-5",
    "CI_MERGE_REQUEST_PROJECT_URL": "https://gitlab.example.com/group/payments",
    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/refunds",
    "CI_MERGE_REQUEST_DIFF_BASE_SHA": "5" * 40,
}


def test_github_actions_context_as_the_runner_sets_it(tmp_path: Path) -> None:
    found = detect(tmp_path, DEFAULT_CHANGE, github_pull_request(tmp_path))
    assert found.ci == {
        "provider": "github-actions", "server": "https://github.com", "repository": "example-org/payments",
        "repositoryUrl": "https://github.com/example-org/payments",
        "runUrl": "https://github.com/example-org/payments/actions/runs/9876543210/attempts/2",
        "workflow": "gate", "workflowRef": "example-org/payments/.github/workflows/gate.yml@refs/pull/77/merge",
        "job": "compliance", "actor": "alice", "triggeringActor": "bob", "event": "pull_request",
        "ref": "refs/pull/77/merge", "sha": "3" * 40,
        "pullRequest": {"number": 77, "title": "PAY-77: refunds",
                        "url": "https://github.com/example-org/payments/pull/77", "baseRef": "main",
                        "baseSha": "1" * 40, "headRef": "feature/refunds"},
    }
    assert found.repository == "https://github.com/example-org/payments"  # outside git: the CI's
    assert found.branch == "feature/refunds"
    assert found.tickets == (Ticket("PAY-77", ("pull request title",)),)
    assert found.as_dict()["ci"] == found.ci


def test_a_github_push_has_no_pull_request(tmp_path: Path) -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r",
           "GITHUB_RUN_ID": "1", "GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main", "GITHUB_ACTOR": "a"}
    found = detect(tmp_path, DEFAULT_CHANGE, env)
    assert found.ci == {"provider": "github-actions", "server": "https://github.com", "repository": "o/r",
                        "repositoryUrl": "https://github.com/o/r", "runUrl": "https://github.com/o/r/actions/runs/1",
                        "actor": "a", "event": "push", "ref": "refs/heads/main"}


def test_gitlab_merge_request_context_as_the_runner_sets_it(tmp_path: Path) -> None:
    found = detect(tmp_path, DEFAULT_CHANGE, GITLAB_MERGE_REQUEST)
    assert found.ci == {
        "provider": "gitlab-ci", "server": "https://gitlab.example.com", "repository": "group/payments",
        "repositoryUrl": "https://gitlab.example.com/group/payments",
        "runUrl": "https://gitlab.example.com/group/payments/-/pipelines/555",
        "jobUrl": "https://gitlab.example.com/group/payments/-/jobs/999", "actor": "carol",
        "event": "merge_request_event", "ref": "feature/refunds", "sha": "4" * 40,
        "pullRequest": {"number": 12, "title": "Refunds for OPS-5",
                        "url": "https://gitlab.example.com/group/payments/-/merge_requests/12", "baseRef": "main",
                        "baseSha": "5" * 40, "headRef": "feature/refunds"},
    }
    assert found.tickets == (Ticket("OPS-5", ("merge request title",)),)


def test_no_ci_variables_no_ci_context(repo: Path) -> None:
    assert detect(repo, DEFAULT_CHANGE, {"CI": "true", "GITHUB_ACTIONS": "false"}).ci == {}
    assert detect(repo, DEFAULT_CHANGE, {}).as_dict()["ci"] is None


@pytest.mark.parametrize("payload, note", [
    (b"{not json", "is not JSON"),
    (b"[1, 2]", "is not a JSON object"),
    (b"\xff\xfe", "is not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "is not JSON"),
    (None, "cannot be read"),
])
def test_a_malformed_event_payload_is_a_note_never_a_crash(tmp_path: Path, payload: bytes | None, note: str) -> None:
    env = github_pull_request(tmp_path)
    path = Path(env["GITHUB_EVENT_PATH"])
    if payload is None:
        path.unlink()
    else:
        path.write_bytes(payload)
    found = detect(tmp_path, DEFAULT_CHANGE, env)
    assert any(note in n and "GITHUB_EVENT_PATH" in n for n in found.notes), found.notes
    assert found.ci["pullRequest"] == {"number": 77, "url": "https://github.com/example-org/payments/pull/77",
                                       "baseRef": "main", "headRef": "feature/refunds"}  # from the variables


def test_odd_payload_values_are_not_recorded(tmp_path: Path) -> None:
    env = github_pull_request(tmp_path)
    Path(env["GITHUB_EVENT_PATH"]).write_text(json.dumps(
        {"pull_request": {"number": "77; rm -rf /", "title": ["x"], "base": "main", "head": {"sha": 3}}}))
    found = detect(tmp_path, DEFAULT_CHANGE, env)
    assert found.ci["pullRequest"] == {"baseRef": "main", "headRef": "feature/refunds"}
    assert any("pull_request.number" in n for n in found.notes)


def test_hostile_values_are_bounded(tmp_path: Path) -> None:
    title = "PAY-1 " + "\x1b[31m" * 50_000
    found = detect(tmp_path, DEFAULT_CHANGE, github_pull_request(tmp_path, title=title, GITHUB_ACTOR="a" * 100_000))
    assert len(found.ci["pullRequest"]["title"]) <= change_module.MAX_VALUE
    assert len(found.ci["actor"]) <= change_module.MAX_VALUE
    assert [t.id for t in found.tickets] == ["PAY-1"]
    many = " ".join(f"T{i}-1" for i in range(200))
    capped = detect(tmp_path, DEFAULT_CHANGE, github_pull_request(tmp_path, title=many[:900]))
    assert len(capped.tickets) == change_module.MAX_TICKETS
    assert any("more than 50 tickets" in n for n in capped.notes)


# --- tickets: sources and the change's base --------------------------------------------------

def test_tickets_from_commits_since_the_base_the_branch_and_the_title(repo: Path, tmp_path: Path) -> None:
    base = commit(repo, "OLD-1 before the change")
    git(repo, "checkout", "-q", "-b", "feature/PAY-12-refunds")
    first = commit(repo, "Refunds (PAY-12)\n\nAlso fixes OPS-3.", "a.txt")
    second = commit(repo, "Tidy up, see CVE-2024-3094", "b.txt")
    env = github_pull_request(tmp_path, title="PAY-12 and SEC-4", base_sha=base)
    found = detect(repo, DEFAULT_CHANGE, env)
    assert found.tickets == (
        Ticket("PAY-12", (f"commit {first[:12]}", "branch feature/PAY-12-refunds", "pull request title")),
        Ticket("OPS-3", (f"commit {first[:12]}",)),
        Ticket("SEC-4", ("pull request title",)),
    )
    assert found.branch == "feature/PAY-12-refunds"  # git's branch wins over the CI's
    assert found.as_dict()["tickets"][0] == {"id": "PAY-12", "foundIn": [f"commit {first[:12]}",
                                                                         "branch feature/PAY-12-refunds",
                                                                         "pull request title"]}
    assert found.notes == () and second


def test_only_the_configured_sources_are_read(repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-q", "-b", "PAY-1-x")
    commit(repo, "OPS-2")
    env = github_pull_request(tmp_path, title="SEC-3")
    for sources, expected in ((("branch",), ["PAY-1"]), (("commits",), ["OPS-2"]), (("pull_request",), ["SEC-3"]),
                              ((), [])):
        found = detect(repo, ChangeSettings(ticket_sources=sources), env)
        assert [t.id for t in found.tickets] == expected, sources


def test_without_a_base_head_alone(repo: Path) -> None:
    commit(repo, "PAY-1 earlier")
    commit(repo, "no key here")
    found = detect(repo, DEFAULT_CHANGE, {})
    assert found.tickets == ()
    assert found.looked_in == ("HEAD's commit message", "the branch name (main)")


def test_the_change_base_option_wins(repo: Path, tmp_path: Path) -> None:
    start = commit(repo, "PAY-1 earlier")
    commit(repo, "PAY-2 later")
    env = github_pull_request(tmp_path, title="no key", base_sha=git(repo, "rev-list", "--max-parents=0", "HEAD"))
    assert [t.id for t in detect(repo, DEFAULT_CHANGE, env).tickets] == ["PAY-2", "PAY-1"]
    assert [t.id for t in detect(repo, DEFAULT_CHANGE, env, base_rev=start).tickets] == ["PAY-2"]


def test_github_base_branch_when_the_payload_has_no_sha(repo: Path, tmp_path: Path) -> None:
    base = commit(repo, "OLD-1")
    git(repo, "update-ref", "refs/remotes/origin/main", base)
    commit(repo, "PAY-5")
    env = github_pull_request(tmp_path, title="x")
    Path(env["GITHUB_EVENT_PATH"]).write_text("{}")
    assert [t.id for t in detect(repo, DEFAULT_CHANGE, env).tickets] == ["PAY-5"]


def test_gitlab_diff_base(repo: Path) -> None:
    base = commit(repo, "OLD-1")
    commit(repo, "PAY-6")
    env = {**GITLAB_MERGE_REQUEST, "CI_MERGE_REQUEST_DIFF_BASE_SHA": base, "CI_MERGE_REQUEST_TITLE": "x"}
    assert [t.id for t in detect(repo, DEFAULT_CHANGE, env).tickets] == ["PAY-6"]


def test_a_base_the_clone_lacks_falls_back_to_head_with_a_note(repo: Path, tmp_path: Path) -> None:
    commit(repo, "OLD-1")
    commit(repo, "PAY-7")
    found = detect(repo, DEFAULT_CHANGE, github_pull_request(tmp_path, title="x", base_sha="a" * 40))
    assert [t.id for t in found.tickets] == ["PAY-7"]
    assert any("is not in this clone (a shallow clone?)" in n for n in found.notes), found.notes


def test_a_real_shallow_clone(repo: Path, tmp_path: Path) -> None:
    base = commit(repo, "OLD-1", "a.txt")
    commit(repo, "PAY-8 the change", "b.txt")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)], check=True)
    found = detect(clone, DEFAULT_CHANGE, github_pull_request(tmp_path, title="x", base_sha=base))
    assert [t.id for t in found.tickets] == ["PAY-8"]
    assert found.repository == "https://github.com/example-org/payments"  # a file:// origin: the CI's URL
    assert any("shallow" in n for n in found.notes)


def test_a_base_that_looks_like_an_option_is_not_given_to_git(repo: Path) -> None:
    commit(repo, "PAY-9")
    found = detect(repo, DEFAULT_CHANGE, {}, base_rev="--output=/tmp/x")
    assert [t.id for t in found.tickets] == ["PAY-9"]
    assert any("not a revision git can take" in n for n in found.notes)


def test_commits_and_messages_are_bounded(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    count = change_module.MAX_COMMITS + 3
    stream = "".join(
        f"commit refs/heads/main\ncommitter Dev <dev@example.com> {1700000000 + i} +0000\n"
        f"data {len(f'T{i}-1')}\nT{i}-1\n" + (f"from {base}\n" if i == 0 else "") + "\n"
        for i in range(count))
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], input=stream, text=True, check=True)
    git(repo, "reset", "-q", "--hard", "main")
    found = detect(repo, DEFAULT_CHANGE, {}, base_rev=base)
    assert any(f"more than {change_module.MAX_COMMITS} commits" in n for n in found.notes)
    assert len(found.tickets) == change_module.MAX_TICKETS  # the newest first
    assert found.tickets[0].id == f"T{count - 1}-1"
    long_tail = commit(repo, "x" * (change_module.MAX_MESSAGE + 10) + " PAY-99")
    assert detect(repo, DEFAULT_CHANGE, {}, base_rev=f"{long_tail}~1").tickets == ()


# --- the ruleset's change: section -----------------------------------------------------------

def write_ruleset(path: Path, change: str = "", extra: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ruleset_text(["ORG-CHANGE-001"]) + extra + (f"change:\n{change}" if change else ""))
    return path


def test_the_section_merges_key_by_key_and_the_digest_covers_it(tmp_path: Path) -> None:
    parent = write_ruleset(tmp_path / "org.yaml", "  require_ticket: true\n  ticket_sources: [branch]\n")
    child = tmp_path / "team.yaml"
    child.write_text(parent.read_text().replace("name: test", "name: team").split("change:")[0]
                     + "extends: [org.yaml]\nchange:\n  ticket_pattern: 'PAY-[0-9]+'\n")
    merged = load_ruleset(str(child))
    assert merged.change == ChangeSettings("PAY-[0-9]+", ("branch",), True)
    assert merged.as_dict()["change"] == {"ticket_pattern": "PAY-[0-9]+", "ticket_sources": ["branch"],
                                          "require_ticket": True}
    assert load_ruleset(str(parent)).digest != merged.digest
    assert load_ruleset("org-baseline").change == DEFAULT_CHANGE


@pytest.mark.parametrize("change, message", [
    ("  ticket_pattern: 'PAY-(['\n",
     "change.ticket_pattern: not a valid regular expression (unterminated character set"),
    ("  ticket_pattern: '[A-Z]*'\n", "change.ticket_pattern: '[A-Z]*' matches empty text"),
    ("  ticket_sourcse: [branch]\n",
     "change.ticket_sourcse: unknown key; allowed here: require_ticket, ticket_pattern, ticket_sources"),
    ("  ticket_sources: [branch, email]\n",
     "change.ticket_sources[1]: 'email' is not one of commits, branch, pull_request"),
    ("  require_ticket: 'yes'\n", "change.require_ticket: 'yes' is not of type boolean"),
])
def test_a_bad_change_section_is_exit_2_naming_file_line_and_key(cli, tmp_path: Path, change: str,
                                                                   message: str) -> None:
    path = write_ruleset(tmp_path / "rules.yaml", change)
    result = cli("ruleset", "validate", "rules.yaml", cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert f"rules.yaml:6: {message}" in result.output
    with pytest.raises(ConfigError, match="change"):
        load_ruleset(str(path))


ORG_LOCKED = ruleset_text(["ORG-CHANGE-001"]).replace("name: test", "name: org") + (
    "change:\n  require_ticket: true\n  ticket_sources: [branch, pull_request]\nlocks:\n  change: true\n")


@pytest.mark.parametrize("layer, line, key", [
    ("change:\n  require_ticket: false\n", 6, "change.require_ticket"),
    ("change:\n  ticket_sources: [commits]\n", 6, "change.ticket_sources"),
    ("change:\n  ticket_pattern: '.+'\n", 6, "change.ticket_pattern"),
])
def test_the_change_lock(cli, repo: Path, tmp_path: Path, layer: str, line: int, key: str) -> None:
    (tmp_path / "org.yaml").write_text(ORG_LOCKED)
    (repo / ".checker.yaml").write_text(ruleset_text(["ORG-CHANGE-001"]).replace("name: test", "name: team") + layer)
    result = cli("scan", str(repo), "--base", str(tmp_path / "org.yaml"))
    assert result.exit_code == 2, result.output
    assert f".checker.yaml:{line}: {key}: changes how the change's ticket is found or required, which " \
           f"locks.change of " in result.output
    assert "org.yaml:8 forbids" in result.output  # the org's `locks:` line


def test_the_change_lock_allows_restating_the_same_value(cli, repo: Path, tmp_path: Path) -> None:
    (tmp_path / "org.yaml").write_text(ORG_LOCKED)
    (repo / ".checker.yaml").write_text(ruleset_text(["ORG-CHANGE-001"]).replace("name: test", "name: team")
                                        + "change:\n  require_ticket: true\n  ticket_sources: [branch, pull_request]\n")
    git(repo, "checkout", "-q", "-b", "PAY-1-x")
    result = cli("scan", str(repo), "--base", str(tmp_path / "org.yaml"))
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(cli("ruleset", "show", str(tmp_path / "org.yaml")).output)
    assert shown["locks"] == [{"change": True}]


def test_the_base_layer_is_named_with_its_digest(repo: Path) -> None:
    (repo / ".checker.yaml").write_text(ruleset_text(["ORG-*"]))
    ruleset = load_ruleset(str(repo / ".checker.yaml"), base="org-gate", repository=repo)
    assert ruleset.base_layer == ("org-gate", load_ruleset("org-gate").digest)
    assert load_ruleset(str(repo / ".checker.yaml"), repository=repo).base_layer is None


def test_recorded_paths_never_name_the_machine(cli, repo: Path, tmp_path: Path, monkeypatch) -> None:
    """Layers and waivers are named `bundled:NAME`, relative to the repository or `external:NAME`;
    errors still name the file so it can be opened."""
    waiver = "waivers:\n  - {rule: ORG-REPO-001, reason: r, approved_by: a@example.com, expires: '2999-01-01'}\n"
    (tmp_path / "org.yaml").write_text(ruleset_text(["ORG-*"]).replace("name: test", "name: org") +
                                       "extends: [org-baseline]\n")
    (repo / "policy").mkdir()
    (repo / "policy" / "team.yaml").write_text(ruleset_text(["ORG-*"]).replace("name: test", "name: team") + waiver)
    (repo / ".checker.yaml").write_text(ruleset_text(["ORG-*"]) + "extends: [org-baseline, policy/team.yaml]\n")
    monkeypatch.chdir(tmp_path)
    ruleset = load_ruleset(str(repo / ".checker.yaml"), repository=repo)
    assert [layer.path for layer in ruleset.layers] == ["bundled:org-baseline", "policy/team.yaml", ".checker.yaml"]
    assert [layer.display for layer in ruleset.layers] == ["bundled:org-baseline", "repo/policy/team.yaml",
                                                           "repo/.checker.yaml"]
    assert [w.source for w in ruleset.waivers] == ["policy/team.yaml"]
    assert [layer.path for layer in load_ruleset(str(repo / ".checker.yaml")).layers][1:] == [
        "external:team.yaml", "external:.checker.yaml"]  # no repository: nothing is inside it

    (repo / ".checker.yaml").write_text(ruleset_text(["ORG-*"]) + waiver)
    sarif = tmp_path / "out.sarif"
    result = cli("scan", str(repo), "--base", str(tmp_path / "org.yaml"), "--sarif-output", str(sarif))
    assert result.exit_code in (0, 1), result.output
    run = json.loads(sarif.read_text())["runs"][0]
    assert [layer["file"] for layer in run["properties"]["ruleset"]["layers"]] == [
        "bundled:org-baseline", "external:org.yaml", ".checker.yaml"]
    suppressed = [r for r in run["results"] if r.get("suppressions")]
    assert suppressed and all(r["suppressions"][0]["properties"]["source"] == ".checker.yaml:6" for r in suppressed)
    assert str(tmp_path) not in json.dumps(run["properties"]["ruleset"])
    (repo / ".checker.yaml").write_text("{broken")
    assert "checker: error: repo/.checker.yaml:2: not valid YAML" in cli("scan", str(repo)).output


# --- ORG-CHANGE-001 through the CLI ----------------------------------------------------------

REQUIRING = ruleset_text(["ORG-CHANGE-001"], gate="{fail_on: medium}") + "change:\n  require_ticket: true\n"


def scan_json(cli, repo: Path, *args: str) -> tuple[int, dict]:
    result = cli("scan", str(repo), "--format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)


def test_org_change_001_fires_without_a_ticket(cli, repo: Path) -> None:
    (repo / ".checker.yaml").write_text(REQUIRING)
    git(repo, "add", ".checker.yaml")
    commit(repo, "Rotate the keys (SHA-256, CVE-2024-3094)")
    code, report = scan_json(cli, repo)
    assert code == 1
    [finding] = report["findings"]
    assert (finding["rule"], finding["severity"], finding["path"], finding["start_line"]) == \
        ("ORG-CHANGE-001", "medium", ".checker.yaml", 7)  # the line that sets require_ticket
    assert "looked in HEAD's commit message, the branch name (main)" in finding["message"]


def test_org_change_001_is_quiet_when_a_ticket_is_named(cli, repo: Path) -> None:
    (repo / ".checker.yaml").write_text(REQUIRING)
    git(repo, "add", ".checker.yaml")
    commit(repo, "Rotate the keys")
    git(repo, "checkout", "-q", "-b", "feature/PAY-1234-keys")
    assert scan_json(cli, repo)[0] == 0


def test_org_change_001_reads_the_commits_since_the_change_base(cli, repo: Path) -> None:
    (repo / ".checker.yaml").write_text(REQUIRING)
    git(repo, "add", ".checker.yaml")
    base = commit(repo, "Set up")
    commit(repo, "PAY-3 first step", "a.txt")
    commit(repo, "second step", "b.txt")
    assert scan_json(cli, repo)[0] == 1  # HEAD alone names no ticket
    assert scan_json(cli, repo, "--change-base", base)[0] == 0


def test_org_change_001_reads_the_pull_request_title(cli, repo: Path, tmp_path: Path, monkeypatch) -> None:
    (repo / ".checker.yaml").write_text(REQUIRING)
    git(repo, "add", ".checker.yaml")
    commit(repo, "Set up")
    for name, value in github_pull_request(tmp_path, title="OPS-42 rotate keys").items():
        monkeypatch.setenv(name, value)
    code, report = scan_json(cli, repo)
    assert code == 0
    assert any("not in this clone" in n for n in report["notes"])  # the payload's base sha is not here


def test_org_change_001_is_quiet_when_no_ticket_is_required(cli, repo: Path) -> None:
    (repo / ".checker.yaml").write_text(ruleset_text(["ORG-CHANGE-001"], gate="{fail_on: info}"))
    assert scan_json(cli, repo)[1]["findings"] == []


def test_org_change_001_severity_comes_from_the_ruleset(cli, repo: Path) -> None:
    (repo / ".checker.yaml").write_text(
        REQUIRING.replace('checks: {include: ["ORG-CHANGE-001"]}',
                          'checks: {include: ["ORG-CHANGE-001"], severity: {ORG-CHANGE-001: critical}}'))
    assert scan_json(cli, repo)[1]["findings"][0]["severity"] == "critical"


def test_required_by_an_organisation_layer_the_finding_points_at_the_repository_ruleset(
        cli, repo: Path, tmp_path: Path) -> None:
    (tmp_path / "org.yaml").write_text(ORG_LOCKED.replace("metadata:", "gate: {fail_on: medium}\nmetadata:", 1))
    code, report = scan_json(cli, repo, "--base", str(tmp_path / "org.yaml"))
    assert code == 1
    assert [(f["path"], f["start_line"]) for f in report["findings"]] == [(".checker.yaml", 1)]


def test_the_finding_validates_as_sarif(cli, repo: Path, tmp_path: Path) -> None:
    (repo / "svc").mkdir()
    (repo / "svc" / ".checker.yaml").write_text(REQUIRING)
    sarif = tmp_path / "change.sarif"
    result = cli("scan", str(repo / "svc"), "--sarif-output", str(sarif))
    assert result.exit_code == 1, result.output
    [found] = json.loads(sarif.read_text())["runs"][0]["results"]
    assert found["ruleId"] == "ORG-CHANGE-001"
    assert found["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "svc/.checker.yaml"
    assert sarif_problems(sarif) == []


def test_pre_commit_named_files_are_not_judged(cli, repo: Path) -> None:
    (repo / ".checker.yaml").write_text(REQUIRING)
    (repo / "app.yaml").write_text("a: 1\n")
    result = cli("scan", "app.yaml", "--format", "json", cwd=repo)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["findings"] == []


def test_the_scan_result_carries_the_change(repo: Path, tmp_path: Path, monkeypatch) -> None:
    (repo / ".checker.yaml").write_text(REQUIRING)
    result = scan.run(scan.Options(paths=(str(repo),)))
    assert result.change.commit == git(repo, "rev-parse", "HEAD")
    assert result.change.dirty is True  # .checker.yaml is not committed
    assert result.change.ticket_required is True
    assert result.change.required_by == ".checker.yaml:7"


def test_a_check_without_a_change_sees_an_empty_one() -> None:
    ctx = Context(organisation={}, params={}, files=(), documents=lambda kind: ())
    assert ctx.change == Change() and not ctx.change.ticket_required


def test_rules_explain(cli) -> None:
    result = cli("rules", "explain", "ORG-CHANGE-001", "-r", "pci-dss-4.0")  # the ruleset that maps its control
    assert result.exit_code == 0, result.output
    assert "ORG-CHANGE-001: The change names its ticket" in result.output
    assert "severity: medium" in result.output and "PCI-DSS-4.0:6.5.1" in result.output
    assert "branch name" in result.output and "pull (merge)" in result.output


@pytest.mark.parametrize(("remote", "recorded"), [
    ("git@github.com:org/r.git", "https://github.com/org/r"),
    ("ssh://git@gitlab.example.com:22/g/p.git", "https://gitlab.example.com/g/p"),
    ("https://token:x-oauth@github.com/org/r.git", "https://github.com/org/r"),
    ("https://user:pa@ss@host.example/o/r", "https://host.example/o/r"),
    ("https://user:p/ss@host.example/o/r", ""),  # not a URL we can read safely: nothing rather than a secret
    ("http://user:secret#frag@host.example", ""),
    ("https://git.example.com:8443/o/r?x=1#y", "https://git.example.com:8443/o/r"),
    ("/srv/git/repo.git", ""),
])
def test_the_recorded_repository_never_carries_credentials(remote: str, recorded: str) -> None:
    assert change_module._public_url(remote) == recorded


def test_git_variables_of_the_job_cannot_point_git_at_another_repository(repo: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    git(other, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "--allow-empty", "-m", "other")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    found = detect(repo, DEFAULT_CHANGE, {})
    monkeypatch.delenv("GIT_DIR")
    assert found.commit == git(repo, "rev-parse", "HEAD") != git(other, "rev-parse", "HEAD")


def test_a_merge_commit_counts_only_its_own_side(tmp_path: Path) -> None:
    """A pull request's merge commit: commits that reached the base branch after the event's base
    are other people's changes, and their tickets are not this change's."""
    root = tmp_path / "merge"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit = ["-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "--allow-empty", "-m"]
    git(root, *commit, "base")
    base = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "-q", "-b", "feature")
    git(root, *commit, "PAY-1 the change")
    git(root, "checkout", "-q", "main")
    git(root, *commit, "OTHER-9 someone else's change")
    git(root, "-c", "user.name=a", "-c", "user.email=a@b", "merge", "-q", "--no-ff", "-m", "Merge feature", "feature")
    found = detect(root, ChangeSettings(ticket_sources=("commits",)), {}, base)
    assert [t.id for t in found.tickets] == ["PAY-1"]
