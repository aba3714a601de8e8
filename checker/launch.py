"""The `checker` console script: hand a scan to the warm server when this environment opts in, else run the CLI.

Kept free of heavy imports, so a warm scan costs little more than starting Python. Only under
pre-commit (PRE_COMMIT=1) or with CHECKER_WARM=1, never in CI: see checker/warm_client.py.

The garbage collector is off in this process. Profiled (bench/README.md, "Where the time goes"), a
cold one-file scan spent 59 % of its time importing Checkov's runners, much of it in collections
that found nothing (imports make long-lived objects, not garbage), and 30 % in the collection at
exit. The parent makes little cyclic garbage (the work is done in forked workers, which turn the
collector back on: checker/engines/workers.py), and with the collector off it leaves no freed holes
in pages its workers share; at exit everything is frozen, so the last collection has nothing to do.
"""
from __future__ import annotations

import atexit
import gc
import sys


def main() -> None:
    gc.disable()
    atexit.register(gc.freeze)
    argv = sys.argv[1:]
    from checker import settings
    from checker.errors import ConfigError

    try:
        settings.current()  # every CHECKER_* variable, checked before anything runs
    except ConfigError as error:
        sys.stderr.write(f"checker: error: {error}\n")
        sys.exit(error.exit_code)
    if argv[:1] == ["scan"]:
        from checker import warm_client

        if warm_client.enabled():
            code = warm_client.run_remote(argv)
            if code is not None:
                sys.exit(code)
    from checker.cli import main as cli

    cli(argv, prog_name="checker")
