"""The SARIF Multitool over the SARIF files the adversarial cases wrote, in one run.

Named to run last in this folder. Each case already checked its SARIF against the OASIS schema;
this adds the Multitool's Gh;Sarif rules (what GitHub code scanning enforces) for one SARIF of
each shape per test and every SARIF of the URI cases (hostile.defer_to_multitool), at the
cost of one start-up, and names the case behind every problem.
"""
from __future__ import annotations

import pytest
from hostile import DEFERRED, multitool_problems


def test_the_multitool_accepts_every_sarif_the_cases_wrote():
    if not DEFERRED.cases or DEFERRED.folder is None:
        pytest.skip("no adversarial case that writes SARIF ran in this session")
    found = multitool_problems(sorted(DEFERRED.cases), DEFERRED.folder)
    failures = [f"{DEFERRED.cases.get(path, path)}: {problems[:5]}" for path, problems in found.items() if problems]
    assert not failures, f"{len(failures)} SARIF file(s) the Multitool rejects:\n" + "\n".join(failures)
