"""A non-editable install carries the bundled rulesets, the ruleset schema, the policies and our fixes for
Checkov's checks (checker/fixes/*.yaml)."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from testkit import PROJECT


def test_wheel_installs_and_runs_outside_the_source_tree(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path / "dist"), str(PROJECT)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("checker-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"checker/rulesets/org-baseline.yaml", "checker/ruleset/schema.json",
            "checker/policies/kubernetes.py", "checker/cli.py", "checker/evidence/gate-decision.schema.json",
            "checker/policies/change.py", "checker/policies/github_actions/workflow.py",
            "checker/fixes/__init__.py"} <= names
    fixes = {f"checker/fixes/{p.name}" for p in (PROJECT / "checker" / "fixes").glob("*.yaml")}
    assert fixes, "checker/fixes holds no data"
    assert fixes <= names, "every file of checker/fixes is in the wheel"
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run([sys.executable, "-c", "import checker, sys; print(checker.__file__)"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, check=True)
    assert done.stdout.startswith(str(target))
    listed = subprocess.run([sys.executable, "-m", "checker", "rules", "list", "-r", "org-baseline"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert "ORG-K8S-001" in listed.stdout
    explained = subprocess.run([sys.executable, "-m", "checker", "rules", "explain", "CKV_AWS_20", "-r",
                                "org-baseline"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert explained.returncode == 0, explained.stderr
    assert "A corrected Terraform configuration" in explained.stdout, "the installed package reads its fixes"
