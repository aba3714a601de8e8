"""The project passes its own gate: `checker scan .` at the repository root exits 0 with no finding."""
from __future__ import annotations

import json

from testkit import PROJECT, run_checker


def test_the_repository_passes_its_own_gate():
    result = run_checker("scan", ".", "--format", "json", cwd=PROJECT)
    doc = json.loads(result.stdout)
    assert result.returncode == 0, doc["findings"] or doc["problems"]
    assert doc["ruleset"]["name"] == "checker-self"
    assert doc["findings"] == [] and doc["problems"] == []
