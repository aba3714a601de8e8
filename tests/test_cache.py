"""The result cache: it saves time and never changes a result (real Checkov, real files, the real CLI)."""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from testkit import run_checker

from checker.cache import LAYOUT, Cache, key

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


def scan(repo: Path, cache_dir: Path | None, out: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    args = ["scan", str(repo), "-r", str(repo.parent / "rules.yaml"), "--sarif-output", str(out), *extra]
    args += ["--cache-dir", str(cache_dir)] if cache_dir else ["--no-cache"]
    done = run_checker(*args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


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


def test_a_warm_scan_takes_its_results_from_the_cache(repo: Path, tmp_path: Path) -> None:
    """Proof the entries are used: one rewritten (validly) with an extra record shows up in the next scan."""
    cache = tmp_path / "cache"
    first = scan(repo, cache, tmp_path / "a.sarif")
    planted = 0
    for entry in entries(cache):
        header, _, payload = zlib.decompress(entry.read_bytes()).partition(b"\n")
        value = json.loads(payload)
        if value["framework"] != "dockerfile":
            continue
        value["records"].append({**value["records"][0], "check_id": "CKV_DOCKER_3", "check_name": "planted"})
        payload = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        meta = {**json.loads(header), "sha256": hashlib.sha256(payload).hexdigest()}
        entry.write_bytes(zlib.compress(json.dumps(meta).encode() + b"\n" + payload))
        planted += 1
    assert planted == 1
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
    # Every runner walking the checkout may read any file of it: all ran again.
    assert frameworks(again) == frameworks(before)
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
    for entry in entries(cache):  # forge: every framework found nothing
        header, _, payload = zlib.decompress(entry.read_bytes()).partition(b"\n")
        value = {**json.loads(payload), "records": []}
        payload = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        meta = {**json.loads(header), "sha256": hashlib.sha256(payload).hexdigest()}
        entry.write_bytes(zlib.compress(json.dumps(meta).encode() + b"\n" + payload))
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
