"""The warm server: a second scan is served by a pre-imported fork with the same output and exit code."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from testkit import PROJECT

POD = ("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\nspec:\n  containers:\n"
       "    - {name: a, image: nginx}\n")
RULES = ("apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: t}\n"
         "organisation: {approved_registries: [r.example.com]}\n"
         "checks: {include: [ORG-K8S-001, CKV_K8S_8]}\n")


def test_warm_scans_match_cold_scans_and_the_server_idles_out(tmp_path):
    (tmp_path / "pod.yaml").write_text(POD)
    (tmp_path / ".checker.yaml").write_text(RULES)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(CHECKER_WARM="1", XDG_RUNTIME_DIR=str(runtime), CHECKER_WARM_IDLE="6")
    scan = [sys.executable, "-m", "checker", "scan", "pod.yaml"]
    cold = subprocess.run(scan, cwd=tmp_path, env={**env, "CHECKER_WARM": "0"}, capture_output=True, text=True)
    first = subprocess.run(scan, cwd=tmp_path, env=env, capture_output=True, text=True)  # starts the server
    assert (first.returncode, first.stdout) == (cold.returncode, cold.stdout) == (1, cold.stdout)
    deadline = time.time() + 60
    while not list((runtime / f"checker-{os.getuid()}").glob("warm-*.sock")) and time.time() < deadline:
        time.sleep(0.2)
    served = subprocess.run(
        [sys.executable, "-c", ("import sys; from checker import warm; code = warm.run_remote(sys.argv[1:]); "
                                "sys.exit(99 if code is None else code)"), "scan", "pod.yaml"],
        cwd=tmp_path, env=env, capture_output=True, text=True)
    assert served.returncode == 1, served.stderr  # 99 would mean no server answered
    assert served.stdout == cold.stdout
    time.sleep(8)
    assert not list((runtime / f"checker-{os.getuid()}").glob("warm-*.sock")), "the idle server did not exit"


def test_warm_is_off_in_ci():
    env = {**os.environ, "CI": "true", "CHECKER_WARM": "1"}
    done = subprocess.run([sys.executable, "-c", "from checker import warm; print(warm.enabled())"], env=env,
                          capture_output=True, text=True, cwd=PROJECT)
    assert done.stdout.strip() == "False"


def test_a_socket_left_by_a_dead_server_is_replaced(tmp_path):
    import socket

    from checker import warm

    stale = tmp_path / "warm.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(stale))
    dead.close()  # the file stays, nobody listens: as after a kill -9
    server = warm._bind(stale)
    assert server is not None
    assert warm._bind(stale) is None  # a live server is left alone
    server.close()
