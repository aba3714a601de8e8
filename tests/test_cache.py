"""The result cache: it saves time and never changes a result (real Checkov, real files, the real CLI)."""
from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from testkit import run_checker

from checker.cache import LAYOUT, Cache, key
from checker.settings import CI_VARIABLES

DOCKERFILE = "FROM python:3.12\nUSER root\n"
POD = """apiVersion: v1
kind: Pod
metadata:
  name: api
spec:
  containers:
    - name: api
      image: registry.example.com/api:1
      securityContext:
        privileged: true
"""
BUCKET = 'resource "aws_s3_bucket" "logs" {\n  bucket = "logs"\n}\n'
RULES = """apiVersion: checker/v1
kind: Ruleset
metadata: {name: cache-test, version: "1"}
checks:
  include: ["CKV_DOCKER_*", "CKV_K8S_*", "CKV_AWS_*", "CKV2_AWS_*"]
gate: {fail_on: never}
"""


# Secrets long enough to be accepted (at least 32 characters); the word in front tells them apart.
KEY_A = "alpha" + "3f9c0e1d7a5b2c4e" * 4
KEY_B = "bravo" + "8d2e6f4a1c3b5d7e" * 4


@pytest.fixture(autouse=True)
def developer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's machine unless a test says otherwise: this suite itself may run in CI (CI=true)."""
    for name in (*CI_VARIABLES, "CHECKER_CACHE_KEY"):
        monkeypatch.delenv(name, raising=False)


# --- the store --------------------------------------------------------------------------------


def entries(folder: Path) -> list[Path]:
    return sorted((folder / LAYOUT).glob("*/*.json.z"))


def test_a_value_comes_back_under_its_key_only(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put(key("a"), {"records": [1, 2]})
    assert cache.get(key("a")) == {"records": [1, 2]} and cache.get(key("b")) is None
    assert (cache.hits, cache.misses) == (1, 1) and cache.notes == []


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "other key", "payload edited"])
def test_a_damaged_entry_is_never_trusted_and_is_removed(tmp_path: Path, damage: str) -> None:
    cache = Cache(tmp_path)
    cache.put(key("a"), {"records": ["x"]})
    cache.put(key("b"), {"records": ["y"]})
    (entry,) = [p for p in entries(tmp_path) if p.name == key("a")[2:] + ".json.z"]
    data = entry.read_bytes()
    if damage == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        entry.write_bytes(os.urandom(200))
    elif damage == "empty":
        entry.write_bytes(b"")
    elif damage == "other key":
        entry.write_bytes((tmp_path / LAYOUT / key("b")[:2] / f"{key('b')[2:]}.json.z").read_bytes())
    else:
        header, _, payload = zlib.decompress(data).partition(b"\n")
        entry.write_bytes(zlib.compress(header + b"\n" + payload.replace(b'"x"', b'"z"')))
    assert cache.get(key("a")) is None
    assert not entry.exists()
    assert cache.get(key("b")) == {"records": ["y"]}


def test_an_unwritable_folder_costs_a_note_never_the_scan(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    cache = Cache(blocked / "cache")
    cache.put(key("a"), {"v": 1})
    assert cache.get(key("a")) is None
    assert len(cache.notes) == 1 and "could not be" in cache.notes[0] and "--no-cache" in cache.notes[0]


def test_trim_evicts_the_least_recently_used_beyond_the_bound(tmp_path: Path) -> None:
    cache = Cache(tmp_path, max_bytes=10**9)
    for i in range(6):
        cache.put(key(i), {"blob": hashlib.sha256(str(i).encode()).hexdigest() * 40})
    for i in range(6):  # entry i last used at time i (0 is the oldest)
        path = tmp_path / LAYOUT / key(i)[:2] / f"{key(i)[2:]}.json.z"
        os.utime(path, (1_000 + i, 1_000 + i))
    size = entries(tmp_path)[0].stat().st_size
    cache.get(key(0))  # used now: the newest
    small = Cache(tmp_path, max_bytes=3 * size + size // 2)
    small.trim()
    kept = {p.name for p in entries(tmp_path)}
    assert kept == {f"{key(i)[2:]}.json.z" for i in (0, 4, 5)}


def _write_many(folder: str, worker: int) -> None:
    cache = Cache(Path(folder))
    for round_ in range(200):
        cache.put(key("shared"), {"worker": worker, "round": round_, "pad": "x" * 4000})


def test_two_writers_at_once_leave_a_whole_entry(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_write_many, args=(str(tmp_path), w)) for w in range(2)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
    value = Cache(tmp_path).get(key("shared"))
    assert value is not None and value["worker"] in (0, 1) and value["round"] == 199
    assert [p.name for p in (tmp_path / LAYOUT).rglob("*.tmp")] == []


# --- signed entries -----------------------------------------------------------------------------


def entry_path(folder: Path, entry_key: str) -> Path:
    return folder / LAYOUT / entry_key[:2] / f"{entry_key[2:]}.json.z"


def header(path: Path) -> dict[str, Any]:
    return json.loads(zlib.decompress(path.read_bytes()).partition(b"\n")[0])


def test_a_signed_entry_carries_an_hmac_and_comes_back_only_under_its_secret(tmp_path: Path) -> None:
    Cache(tmp_path, secret=KEY_A).put(key("a"), {"records": [1]})
    (entry,) = entries(tmp_path)
    body = zlib.decompress(entry.read_bytes())
    payload = body.partition(b"\n")[2]
    mac_key = hmac.digest(KEY_A.encode(), b"checker result cache entries v1", "sha256")
    message = f"{key('a')}\n{hashlib.sha256(payload).hexdigest()}".encode()
    assert header(entry)["mac"] == hmac.new(mac_key, message, "sha256").hexdigest()
    assert KEY_A.encode() not in body and mac_key.hex().encode() not in body
    assert Cache(tmp_path, secret=KEY_A).get(key("a")) == {"records": [1]}
    assert Cache(tmp_path).get(key("a")) == {"records": [1]}  # without a secret (a developer's cache), as before
    other = Cache(tmp_path, secret=KEY_B)
    assert other.get(key("a")) is None and not entry.exists()  # another secret's: damaged, deleted
    assert (other.hits, other.misses, other.notes) == (0, 1, [])


@pytest.mark.parametrize("forgery", ["unsigned", "signed with another secret", "no mac", "garbage mac",
                                     "non-ASCII mac", "mac not text", "mac of another entry"])
def test_an_entry_without_a_valid_mac_is_never_trusted_under_a_secret(tmp_path: Path, forgery: str) -> None:
    """Whole, under its key, its digest right, saying "no findings": what a job without the secret can write."""
    target, other, value = key("a"), key("b"), {"records": []}
    if forgery == "unsigned":
        Cache(tmp_path).put(target, value)
    elif forgery == "signed with another secret":
        Cache(tmp_path, secret=KEY_B).put(target, value)
    else:
        Cache(tmp_path, secret=KEY_A).put(other, value)  # a genuine entry of the same payload under another key
        payload = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        meta: dict[str, Any] = {"key": target, "sha256": hashlib.sha256(payload).hexdigest()}
        macs = {"garbage mac": "0" * 64, "non-ASCII mac": "\u00e9" * 64, "mac not text": 12345,
                "mac of another entry": header(entry_path(tmp_path, other))["mac"]}
        if forgery in macs:
            meta["mac"] = macs[forgery]
        entry_path(tmp_path, target).parent.mkdir(parents=True, exist_ok=True)
        entry_path(tmp_path, target).write_bytes(zlib.compress(json.dumps(meta).encode() + b"\n" + payload))
    cache = Cache(tmp_path, secret=KEY_A)
    assert cache.get(target) is None
    assert not entry_path(tmp_path, target).exists()
    assert cache.notes == []


def test_a_planted_link_never_leads_a_write_or_an_eviction_out_of_the_cache(tmp_path: Path) -> None:
    """A restored cache may hold links (tar and zip keep them): none is written or evicted through."""
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / "precious.json.z"
    precious.write_bytes(b"not the cache's" * 1000)
    folder = tmp_path / "cache"
    first = key("linked")
    second = next(key(i) for i in range(100) if key(i)[:2] != first[:2])
    (folder / LAYOUT).mkdir(parents=True)
    (folder / LAYOUT / first[:2]).symlink_to(outside)  # a shard that is a link
    cache = Cache(folder, max_bytes=1)
    cache.put(first, {"v": 1})
    cache.put(second, {"v": 2})
    assert sorted(outside.iterdir()) == [precious] and len(entries(folder)) == 2  # the link's, and the real one
    assert len(cache.notes) == 1 and "symbolic link" in cache.notes[0]
    cache.trim()  # a bound of one byte: every entry it counts goes
    assert precious.is_file() and not entry_path(folder, second).exists()

    whole = tmp_path / "whole"  # the layout folder itself a link
    whole.mkdir()
    (whole / "results").symlink_to(outside)
    (outside / "v1" / first[:2]).mkdir(parents=True)
    (outside / "v1" / first[:2] / "x.json.z").write_bytes(b"x" * 100)
    linked = Cache(whole, max_bytes=1)
    linked.put(second, {"v": 2})
    linked.trim()
    assert (outside / "v1" / first[:2] / "x.json.z").is_file() and not (outside / "v1" / second[:2]).exists()


# --- through a real scan ----------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "k8s").mkdir(parents=True)
    (root / "infra").mkdir()
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "k8s" / "pod.yaml").write_text(POD)
    (root / "infra" / "main.tf").write_text(BUCKET)
    (tmp_path / "rules.yaml").write_text(RULES)
    return root


def scanned(repo: Path, cache_dir: Path | None, out: Path, *extra: str,
            env: dict[str, str] | None = None) -> tuple[Any, subprocess.CompletedProcess[str]]:
    """The SARIF of a real `checker scan` of `repo` (its gate never fails), and the process."""
    args = ["scan", str(repo), "-r", str(repo.parent / "rules.yaml"), "--sarif-output", str(out), *extra]
    args += ["--cache-dir", str(cache_dir)] if cache_dir else ["--no-cache"]
    done = run_checker(*args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text()), done


def scan(repo: Path, cache_dir: Path | None, out: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    return scanned(repo, cache_dir, out, *extra, env=env)[0]


def timeless(sarif: Any) -> Any:
    for invocation in sarif["runs"][0]["invocations"]:
        invocation.pop("startTimeUtc", None)
        invocation.pop("endTimeUtc", None)
    return sarif


def results(sarif: Any) -> list[tuple[str, str]]:
    return sorted((r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
                  for r in sarif["runs"][0]["results"])


def test_a_cache_never_changes_a_result(repo: Path, tmp_path: Path) -> None:
    """With no cache, a cold cache and a warm one, the SARIF is the same apart from times."""
    cache = tmp_path / "cache"
    plain = timeless(scan(repo, None, tmp_path / "plain.sarif"))
    cold = timeless(scan(repo, cache, tmp_path / "cold.sarif"))
    assert entries(cache), "the first scan stored its Checkov results"
    warm = timeless(scan(repo, cache, tmp_path / "warm.sarif"))
    assert plain == cold == warm
    assert {rule for rule, _ in results(plain)} >= {"CKV_DOCKER_2", "CKV_K8S_16"}


def rewrite(cache: Path, change: Callable[[dict[str, Any]], object], framework: str | None = None,
            secret: str | None = None) -> int:
    """Rewrite the entries (of `framework`, or every one) whole and under their keys, each value changed in
    place by `change`, signed with `secret` (None: unsigned): what anyone able to write the folder can do.
    How many were rewritten."""
    rewritten = 0
    for entry in entries(cache):
        meta, _, payload = zlib.decompress(entry.read_bytes()).partition(b"\n")
        value = json.loads(payload)
        if framework in (None, value["framework"]):
            change(value)
            Cache(cache, secret=secret).put(json.loads(meta)["key"], value)
            rewritten += 1
    return rewritten


def test_a_warm_scan_takes_its_results_from_the_cache(repo: Path, tmp_path: Path) -> None:
    """Proof the entries are used: one rewritten (validly) with an extra record shows up in the next scan."""
    cache = tmp_path / "cache"
    first = scan(repo, cache, tmp_path / "a.sarif")
    assert plant(cache, None) == 1
    second = scan(repo, cache, tmp_path / "b.sarif")
    assert ("CKV_DOCKER_3", "Dockerfile") in results(second)
    assert ("CKV_DOCKER_3", "Dockerfile") not in results(first)


def test_what_changes_a_result_changes_the_key(repo: Path, tmp_path: Path) -> None:
    """A changed input file, a Checkov environment variable or another selection is a miss, never a stale hit."""
    cache = tmp_path / "cache"
    scan(repo, cache, tmp_path / "a.sarif")
    before = set(entries(cache))
    assert "kubernetes" in frameworks(before) and "dockerfile" in frameworks(before)
    (repo / "Dockerfile").write_text("FROM python:3.12\nUSER app\n")
    fixed = scan(repo, cache, tmp_path / "b.sarif")
    assert ("CKV_DOCKER_8", "Dockerfile") not in results(fixed)
    again = set(entries(cache)) - before
    # A runner walking the checkout may read any file of it, so it ran again; one whose parser opens
    # files by their ending alone (Terraform, Kubernetes) has no Dockerfile among its inputs.
    by_ending = {"kubernetes", "terraform"} & frameworks(before)
    assert by_ending and frameworks(again) == frameworks(before) - by_ending
    scan(repo, cache, tmp_path / "c.sarif", env={"CKV_IGNORE_HIDDEN_DIRECTORIES": "false"})
    assert frameworks(set(entries(cache)) - before - again) == frameworks(before)


def frameworks(paths: set[Path]) -> set[str]:
    """The Checkov frameworks whose results these entries hold."""
    return {json.loads(zlib.decompress(p.read_bytes()).partition(b"\n")[2])["framework"] for p in paths}


def test_a_damaged_cache_is_rebuilt_and_an_unusable_one_is_noted(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    good = timeless(scan(repo, cache, tmp_path / "a.sarif"))
    for entry in entries(cache):
        entry.write_bytes(entry.read_bytes()[:7])
    assert timeless(scan(repo, cache, tmp_path / "b.sarif")) == good
    assert all(zlib.decompress(e.read_bytes()) for e in entries(cache))  # rebuilt whole
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    noted = scan(repo, blocked / "cache", tmp_path / "c.sarif")  # under a file: nothing can be written
    assert results(noted) == results(good)
    notes = noted["runs"][0]["properties"]["notes"]
    assert any("the result cache in" in n and "could not be" in n for n in notes)


def test_a_cache_folder_the_repository_committed_is_never_used(repo: Path, tmp_path: Path) -> None:
    """The keys are public: a repository that commits a `.checker-cache` with forged entries (say, for a
    CI template caching inside the checkout) must not pass its own gate with them."""
    cache = repo / ".checker-cache"
    honest = scan(repo, cache, tmp_path / "a.sarif")
    rewrite(cache, lambda value: value.update(records=[]))  # forge: every framework found nothing
    git = ["git", "-C", str(repo)]
    commit = ["-c", "user.email=a@b.c", "-c", "user.name=a", "commit", "-qm", "x"]
    for command in (["init", "-q"], ["add", "-A", "-f"], commit):
        subprocess.run([*git, *command], check=True)
    committed = scan(repo, cache, tmp_path / "b.sarif")
    assert results(committed) == results(honest) and results(honest)
    notes = committed["runs"][0]["properties"]["notes"]
    assert any("holds files committed to the repository being judged, so it was not used" in n for n in notes)


def test_an_entry_too_large_or_a_zlib_bomb_is_not_unpacked(tmp_path: Path) -> None:
    cache = Cache(tmp_path, max_bytes=1024 * 1024)
    cache.put(key("a"), {"v": 1})
    (entry,) = entries(tmp_path)
    entry.write_bytes(zlib.compress(b"\0" * (64 * 1024 * 1024), 9))  # 64 MiB from a few dozen KiB
    assert cache.get(key("a")) is None and not entry.exists()
    cache.put(key("a"), {"v": 1})
    entry.write_bytes(os.urandom(2 * 1024 * 1024))
    assert cache.get(key("a")) is None and not entry.exists()


def test_a_file_read_by_a_runner_under_another_kind_is_part_of_the_key(repo: Path, tmp_path: Path) -> None:
    """Checkov's Kubernetes runner walks the checkout and checks a manifest in a file discovery took for
    compose: changing that file must change the key (found in review: the cache once passed the gate)."""
    cache = tmp_path / "cache"
    odd = repo / "docker-compose.pod.yaml"
    odd.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n")
    scan(repo, cache, tmp_path / "a.sarif")
    odd.write_text(POD.replace("name: api", "name: odd", 1))
    warm = timeless(scan(repo, cache, tmp_path / "b.sarif"))
    fresh = timeless(scan(repo, None, tmp_path / "c.sarif"))
    assert warm == fresh
    assert ("CKV_K8S_16", "docker-compose.pod.yaml") in results(fresh)


# --- signed entries, through a real scan --------------------------------------------------------

PLANTED = ("CKV_DOCKER_3", "Dockerfile")
CI = {"CI": "true"}


def plant(cache: Path, secret: str | None) -> int:
    """Rewrite the Dockerfile's entry, whole and under its key, with an extra CKV_DOCKER_3 record, signed
    with `secret` (None: unsigned): what anyone able to write the folder can do. How many were rewritten."""
    return rewrite(cache, lambda value: value["records"].append(
        {**value["records"][0], "check_id": "CKV_DOCKER_3", "check_name": "planted"}), "dockerfile", secret)


def keys(cache: Path) -> list[str]:
    return [header(entry)["key"] for entry in entries(cache)]


def cache_notes(sarif: Any) -> list[str]:
    return [n for n in sarif["runs"][0]["properties"].get("notes", []) if "result cache" in n]


def test_a_signed_entry_is_used_under_its_key_and_rebuilt_under_another(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    honest = timeless(scan(repo, cache, tmp_path / "a.sarif", env={**CI, "CHECKER_CACHE_KEY": KEY_A}))
    stored = keys(cache)
    assert stored and all(Cache(cache, secret=KEY_A).get(k) is not None for k in stored)
    assert plant(cache, KEY_A) == 1
    used = scan(repo, cache, tmp_path / "b.sarif", env={**CI, "CHECKER_CACHE_KEY": KEY_A})
    assert PLANTED in results(used) and PLANTED not in results(honest)  # signed with the scan's key: used
    other = timeless(scan(repo, cache, tmp_path / "c.sarif", env={**CI, "CHECKER_CACHE_KEY": KEY_B}))
    assert other == honest
    assert sorted(keys(cache)) == sorted(stored)  # the secret is in no key: the same entries, rebuilt
    assert all(Cache(cache, secret=KEY_B).get(k) is not None for k in stored)  # and signed with the new one


@pytest.mark.parametrize("signer", [None, KEY_B], ids=["unsigned", "signed with another secret"])
def test_an_entry_not_signed_with_the_key_is_not_used(repo: Path, tmp_path: Path, signer: str | None) -> None:
    cache = tmp_path / "cache"
    honest = timeless(scan(repo, cache, tmp_path / "a.sarif"))  # a developer's cache: unsigned
    assert plant(cache, signer) == 1
    for name, env in (("b", {"CHECKER_CACHE_KEY": KEY_A}), ("c", {**CI, "CHECKER_CACHE_KEY": KEY_A})):
        if name == "c":
            assert plant(cache, signer) == 1  # planted again, over what the last scan rebuilt
        sarif = scan(repo, cache, tmp_path / f"{name}.sarif", env=env)
        assert PLANTED not in results(sarif)
        assert timeless(sarif) == honest
    assert all(Cache(cache, secret=KEY_A).get(k) is not None for k in keys(cache))  # rebuilt, signed


def test_in_ci_without_a_key_no_entry_is_read_or_written(repo: Path, tmp_path: Path) -> None:
    absent, empty = tmp_path / "absent", tmp_path / "empty"
    first = scan(repo, absent, tmp_path / "a.sarif", env=CI)
    assert not absent.exists() and cache_notes(first) == []
    empty.mkdir()
    assert cache_notes(scan(repo, empty, tmp_path / "b.sarif", env=CI)) == [] and list(empty.iterdir()) == []

    restored = tmp_path / "restored"  # a cache a CI job restored, with an entry planted in it
    scan(repo, restored, tmp_path / "c.sarif")
    assert plant(restored, None) == 1
    assert PLANTED in results(scan(repo, restored, tmp_path / "d.sarif"))  # control: it works where trusted
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in entries(restored)}
    for name, env in (("e", CI), ("f", {**CI, "CHECKER_CACHE_KEY": ""})):  # "": GitHub's value for a hidden secret
        sarif, done = scanned(repo, restored, tmp_path / f"{name}.sarif", env=env)
        assert results(sarif) == results(first) and PLANTED not in results(sarif)
        assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in entries(restored)} == before  # unread, unwritten
        (note,) = cache_notes(sarif)
        assert str(restored) in note and "CHECKER_CACHE_KEY" in note and "was not used" in note
        assert "CHECKER_CACHE_KEY" in done.stdout  # the text report's notes, too

    xdg = tmp_path / "xdg"  # the default folder, as on a runner that keeps its home folder
    done = run_checker("scan", str(repo), "-r", str(tmp_path / "rules.yaml"), "--sarif-output",
                       str(tmp_path / "g.sarif"), env={"XDG_CACHE_HOME": str(xdg)})
    assert done.returncode == 0 and entries(xdg / "checker"), done.stderr
    done = run_checker("scan", str(repo), "-r", str(tmp_path / "rules.yaml"), "--sarif-output",
                       str(tmp_path / "h.sarif"), env={**CI, "XDG_CACHE_HOME": str(xdg)})
    assert done.returncode == 0, done.stderr
    (note,) = cache_notes(json.loads((tmp_path / "h.sarif").read_text()))
    assert str(xdg / "checker") in note


@pytest.mark.parametrize("value", ["short-but-secret-Zq9", "x" * 31, " " * 8 + "y" * 31 + "\n"])
def test_a_short_key_is_a_configuration_error_that_never_repeats_it(repo: Path, tmp_path: Path, value: str) -> None:
    done = run_checker("scan", str(repo), "--cache-dir", str(tmp_path / "cache"), env={"CHECKER_CACHE_KEY": value})
    assert done.returncode == 2, done.stderr
    assert "CHECKER_CACHE_KEY" in done.stderr and "openssl rand -hex 32" in done.stderr
    assert value.strip() not in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "cache").exists()


def test_the_key_never_appears_in_any_output(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    outputs = {"--sarif-output": "r.sarif", "--json-output": "r.json", "--markdown-output": "r.md",
               "--junit-output": "r.xml", "--code-scanning-output": "cs.sarif", "--evidence-output": "e.jsonl"}
    args = [arg for flag, name in outputs.items() for arg in (flag, str(tmp_path / name))]
    for _ in ("cold", "warm"):
        done = run_checker("scan", str(repo), "-r", str(tmp_path / "rules.yaml"), "--cache-dir", str(cache),
                           *args, env={**CI, "CHECKER_CACHE_KEY": KEY_A})
        assert done.returncode == 0, done.stderr
        texts = [done.stdout, done.stderr, *((tmp_path / name).read_text() for name in outputs.values()),
                 *(zlib.decompress(e.read_bytes()).decode() for e in entries(cache))]
        assert entries(cache) and all(KEY_A not in text and KEY_A[5:] not in text for text in texts)


@pytest.mark.skipif(not Path("/proc/self/environ").is_file(), reason="reads a process's environment in /proc")
def test_the_key_stays_out_of_the_warm_server(repo: Path, tmp_path: Path) -> None:
    """The server outlives the scan that started it: it never holds the key, which is not part of its
    identity either (a client with another key is served by the same server); each scan it serves
    brings its client's key, as it brings CHECKER_SIGNING_KEY."""
    runtime = Path(tempfile.mkdtemp(prefix="cw", dir="/tmp"))  # short: a socket's path has at most 108 bytes
    env = {"XDG_RUNTIME_DIR": str(runtime), "CHECKER_WARM": "1", "CHECKER_WARM_IDLE": "300",
           "CHECKER_CACHE_KEY": KEY_A}
    pid = 0
    try:
        started = run_checker("warm", "start", cwd=repo, env=env)
        assert started.returncode == 0, started.stderr
        pid = int(re.match(r"warm server started: pid (\d+)", started.stdout).group(1))
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"CHECKER_CACHE_KEY" not in environ and KEY_A[5:].encode() not in environ
        status = run_checker("warm", "status", cwd=repo, env={**env, "CHECKER_CACHE_KEY": KEY_B})
        assert status.returncode == 0 and re.search(rf"^  pid: +{pid}$", status.stdout, re.MULTILINE), status.stdout
        cache = tmp_path / "cache"
        done = run_checker("scan", str(repo), "-r", str(tmp_path / "rules.yaml"), "--cache-dir", str(cache),
                           cwd=repo, env=env)
        assert done.returncode == 0, done.stderr
        log = (runtime / f"checker-{os.getuid()}" / "warm.log").read_text()
        assert ": scan [" in log and KEY_A[5:] not in log + status.stdout + started.stdout  # served there
        assert keys(cache) and all(Cache(cache, secret=KEY_A).get(k) is not None for k in keys(cache))
    finally:
        run_checker("warm", "stop", "--all", env=env)  # the servers of this test's own runtime folder
        deadline = time.monotonic() + 30
        while pid and alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(runtime, ignore_errors=True)
    assert not (pid and alive(pid)), f"warm server {pid} still running"


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie waiting to be reaped does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


# --- what is kept, and for which runner ---------------------------------------------------------

# CKV_AWS_361 compares BackupRetentionPeriod with an int: a string makes the check raise, every time.
NEPTUNE = """Resources:
  Cluster:
    Type: AWS::Neptune::DBCluster
    Properties:
      BackupRetentionPeriod: "7"
"""


def test_what_checkov_could_not_check_in_a_whole_run_is_kept_with_its_result(repo: Path, tmp_path: Path) -> None:
    """A check that crashes on a template crashes on the same bytes again: that result, exit 3 included,
    comes from the cache like any other (proof: its problem, rewritten validly, shows in the next scan)."""
    (repo / "neptune.yaml").write_text(NEPTUNE)
    cache = tmp_path / "cache"
    args = ["scan", str(repo), "-r", str(repo.parent / "rules.yaml"), "--cache-dir", str(cache)]
    first = run_checker(*args)
    assert first.returncode == 3 and "Checkov check CKV_AWS_361 crashed on" in first.stdout, first.stderr

    def reword(value: dict[str, Any]) -> None:
        assert value["settled"] is True and len(value["problems"]) == 1
        value["problems"][0]["message"] = "kept from the first scan"

    assert rewrite(cache, reword, "cloudformation") == 1
    second = run_checker(*args)
    assert second.returncode == 3 and "neptune.yaml: kept from the first scan" in second.stdout


def terraform_kept(repo: Path, tmp_path: Path, cache: Path) -> bool:
    scan(repo, cache, tmp_path / f"{len(list(tmp_path.iterdir()))}.sarif")
    return "terraform" in frameworks(set(entries(cache)))


OPEN_SSH = """resource "aws_security_group" "ssh" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
"""


@pytest.mark.parametrize(("where", "call"), [
    ("infra/uses.tf", 'module "m" { source = "../gen" }\n'),  # one line: no `source` at a line's start
    ("infra/mods.hcl", 'module "m" {\n  source = "../gen"\n}\n'),  # Checkov loads .hcl files too
    ("infra/uses.tf", 'module "m" {\n  source = "{root}/gen"\n}\n'),  # absolute, inside the root
    ("infra/uses.tf", 'module "m" {\n  source = "../GEN"\n}\n'),  # another case of an ignored name
])
def test_a_module_in_a_left_out_folder_never_gives_a_stale_result(repo: Path, tmp_path: Path, where: str,
                                                                  call: str) -> None:
    """Whatever form the `source` takes, a module the runner loads from where the scan left something out
    is not covered by the key: its result is not stored, so a change there is found."""
    (repo / ".gitignore").write_text("gen/\nGEN/\n")
    gen = repo / ("GEN" if "GEN" in call else "gen")
    gen.mkdir()
    (gen / "main.tf").write_text(BUCKET)
    (repo / where).write_text(call.replace("{root}", str(repo.resolve())))
    cache = tmp_path / "cache"
    scan(repo, cache, tmp_path / "a.sarif")
    assert "terraform" not in frameworks(set(entries(cache)))
    (gen / "main.tf").write_text(BUCKET + OPEN_SSH)
    assert results(scan(repo, cache, tmp_path / "b.sarif")) == results(scan(repo, None, tmp_path / "c.sarif"))


def test_terraform_results_are_kept_beside_left_out_folders_no_module_reaches(repo: Path, tmp_path: Path) -> None:
    """A restored cache inside the checkout, an ignored build folder or Terraform's own downloads
    folder are never read when no module points there: Terraform's results are kept."""
    (repo / ".gitignore").write_text("build/\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.tf").write_text(BUCKET)
    (repo / ".terraform" / "modules").mkdir(parents=True)
    (repo / ".terraform" / "modules" / "modules.json").write_text('{"Modules": []}')
    assert terraform_kept(repo, tmp_path, repo / ".checker-cache")
    (repo / "infra" / "uses.tf").write_text('module "m" {\n  source = "./m"\n}\n')
    (repo / "infra" / "m").mkdir()
    (repo / "infra" / "m" / "main.tf").write_text(BUCKET)
    assert terraform_kept(repo, tmp_path, tmp_path / "c2")
    (repo / ".gitignore").write_text("build/\ninfra/m/secret.tf\n")  # the module folder holds what is left out
    (repo / "infra" / "m" / "secret.tf").write_text(BUCKET)
    assert not terraform_kept(repo, tmp_path, tmp_path / "c3")


def test_an_entry_with_a_record_of_the_wrong_shape_is_rebuilt_not_a_crash(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    honest = results(scan(repo, cache, tmp_path / "a.sarif"))
    rewrite(cache, lambda value: [record.update(check_name={"x": 1}) for record in value["records"]])
    assert results(scan(repo, cache, tmp_path / "b.sarif")) == honest


def test_a_terraform_result_is_not_run_again_for_a_dockerfile_but_is_for_a_variables_file(repo: Path,
                                                                                           tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    scan(repo, cache, tmp_path / "a.sarif")
    before = set(entries(cache))
    (repo / "Dockerfile").write_text("FROM python:3.12\nUSER app\n")
    scan(repo, cache, tmp_path / "b.sarif")
    assert "terraform" not in frameworks(set(entries(cache)) - before)
    before = set(entries(cache))
    (repo / "infra" / "terraform.tfvars").write_text('region = "eu-west-1"\n')
    scan(repo, cache, tmp_path / "c.sarif")
    assert "terraform" in frameworks(set(entries(cache)) - before)
