"""The adversarial suite: a session folder for SARIF awaiting the Multitool, and a report of the worst
time and memory per class of hostile input."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

CLASSES = {
    "test_adv_gate": "A who controls the gate",
    "test_adv_root": "B nothing outside the root",
    "test_adv_inputs": "C inputs fail closed",
    "test_adv_outputs": "D outputs cannot lie",
    "test_adv_more": "E more",
    "test_adv_properties": "P properties (subprocess batches)",
}


@pytest.fixture(scope="session", autouse=True)
def _deferred_sarif_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Where the cases' SARIF files wait for the one Multitool run (test_adv_zz_multitool.py)."""
    from hostile import DEFERRED

    DEFERRED.folder = tmp_path_factory.mktemp("deferred-sarif")
    yield
    DEFERRED.folder = None
    DEFERRED.cases.clear()
    DEFERRED.shapes.clear()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per class: runs, and the slowest and the largest run with their test ids."""
    from hostile import MEASUREMENTS

    if not MEASUREMENTS:
        return
    terminalreporter.section("adversarial suite: worst cost per class (peak = summed PSS of the scan's processes)")
    by_class: dict[str, list[Any]] = {}
    for m in MEASUREMENTS:
        module = m.test.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
        by_class.setdefault(CLASSES.get(module, module), []).append(m)
    for name, runs in sorted(by_class.items()):
        slow = max(runs, key=lambda m: m.seconds)
        big = max(runs, key=lambda m: m.peak_bytes)
        terminalreporter.write_line(
            f"{name}: {len(runs)} runs; slowest {slow.seconds:.1f}s ({slow.test.split('::')[-1]}); "
            f"largest {big.peak_bytes >> 20} MiB PSS, {big.peak_rss >> 20} MiB summed RSS "
            f"({big.test.split('::')[-1]})")
