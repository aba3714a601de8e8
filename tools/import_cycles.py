"""Fail if the package imports itself in a circle.

Reads the import map that `ruff analyze graph` prints (each file and the files it imports) on
standard input; `make lint` runs it. Exit 1 and the cycle when there is one, 0 when there is none.
"""

import graphlib
import json
import sys

graph = json.load(sys.stdin)
try:
    graphlib.TopologicalSorter(graph).prepare()
except graphlib.CycleError as error:
    # graphlib lists each file before the one that imports it: reversed, each file imports the next
    print("import cycle: " + " imports ".join(reversed(error.args[1])), file=sys.stderr)
    sys.exit(1)
print(f"no import cycle among {len(graph)} files")
