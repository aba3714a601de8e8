"""Fail if the package imports itself in a circle; `make lint` runs it.

The package is staged as it is installed (policies/ becomes checker/policies/, which is how the
code imports it) in a temporary folder, `ruff analyze graph --no-type-checking-imports` maps each
file to the files it imports there (at any depth, function-level imports included; imports under
`if TYPE_CHECKING:` only name types and do not count), and graphlib looks for a cycle.
Exit 1 naming the cycle when there is one, 0 when there is none.
"""

import graphlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUFF = Path(sys.executable).parent / "ruff"

with tempfile.TemporaryDirectory() as staged:
    shutil.copytree(ROOT / "checker", Path(staged) / "checker", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "policies", Path(staged) / "checker" / "policies",
                    ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([str(RUFF), "analyze", "graph", "--no-type-checking-imports", "checker"], cwd=staged,
                          capture_output=True, text=True, check=True)
graph = json.loads(done.stdout)
try:
    graphlib.TopologicalSorter(graph).prepare()
except graphlib.CycleError as error:
    # graphlib lists each file before the one that imports it: reversed, each file imports the next
    print("import cycle: " + " imports ".join(reversed(error.args[1])), file=sys.stderr)
    sys.exit(1)
print(f"no import cycle among {len(graph)} files")
