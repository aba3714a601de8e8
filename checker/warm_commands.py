"""`checker warm start`, `checker warm stop` and `checker warm status`: the warm server by hand.

Imported by checker/cli.py at start; only checker/warm_client.py (no Checkov) comes with it.
"""
from __future__ import annotations

import datetime
import os
import sys
import time
from typing import Any

import click

from checker import warm_client
from checker.output import printable

_ALL = click.option("--all", "every", is_flag=True,
                    help="Every warm server of this user, whatever installation of checker started it "
                         "(pre-commit's hook environment is one of its own).")


@click.group("warm")
def warm_group() -> None:
    """The warm server: Checkov kept imported, so a pre-commit scan takes a fraction of a second.

    Scans use it only under pre-commit (which sets PRE_COMMIT=1 for its hooks) or with
    CHECKER_WARM=1; never with CHECKER_WARM=0 or in CI (CI set). The first such scan starts one in
    the background; `start` starts one now. It runs each scan in a fresh fork with the client's
    folder, environment and terminal, so the output and exit code are those of a cold run. One
    server per installation, version, source and Checkov environment (CHECKOV_*, CKV_*, BC_*, ...):
    a changed setting gets a server of its own. It exits after CHECKER_WARM_IDLE seconds (default
    1200) without a scan, and logs its start, each scan (argv, exit code, duration) and why it
    stopped to warm.log beside its socket.

    \b
    Exit codes: start and stop 0 (also when one already runs, or none
    ran), 3 when it could not be done; status 0 running, 1 not running.
    """


@warm_group.command("start")
def start_command() -> None:
    """Start this environment's warm server now, in the background, and wait until it is ready.

    Idempotent: when it already runs, says so. Starting one by hand does not make scans use it:
    they still need PRE_COMMIT=1 or CHECKER_WARM=1.

    \b
    Example:
      checker warm start && CHECKER_WARM=1 checker scan k8s/deployment.yaml
    """
    try:
        status, started = warm_client.start()
    except OSError as error:
        raise click.exceptions.Exit(_fail(error, 3)) from None
    verb = "started" if started else "already running"
    click.echo(f"warm server {verb}: pid {status['pid']}, since {_when(status['since'])}")
    click.echo(f"  socket: {printable(status['socket'])}\n  log:    {printable(status['log'])}")
    use, why = warm_client.wanted()
    if not use:
        click.echo(f"note: scans here still run in-process: {why}", err=True)


@warm_group.command("stop")
@_ALL
def stop_command(every: bool) -> None:
    """Stop this installation's warm servers (of any environment or version); exit 0 when none runs.

    A scan already handed to a server finishes on its own.
    """
    try:
        stopped = [(path, warm_client.stop(path)) for path in warm_client.servers(every)]
    except OSError as error:
        raise click.exceptions.Exit(_fail(error, 3)) from None
    running = [status for _, status in stopped if status is not None]
    for status in running:
        click.echo(f"stopped the warm server pid {status['pid']} ({status['scans']} scans since "
                   f"{_when(status['since'])})")
    if not running:
        click.echo("no warm server was running")


@warm_group.command("status")
@_ALL
def status_command(every: bool) -> None:
    """Whether this environment's warm server runs: pid, since when, idle timeout, socket, log, identity.

    Exit 0 when it runs, 1 when it does not (as `dmypy status`). Other servers of this installation
    (another environment, an older version) are listed after it.
    """
    try:
        path = warm_client.socket_path()
        status = warm_client.ask(path, "status") if warm_client.alive(path) else None
        others = [other for other in warm_client.servers(every) if other != path]
    except OSError as error:
        raise click.exceptions.Exit(_fail(error, 1)) from None
    use, why = warm_client.wanted()
    if status is None:
        environment = warm_client.environment(os.environ)
        click.echo("warm server: not running")
        click.echo(f"  socket:       {printable(str(path))} (when it runs)")
        click.echo(f"  log:          {printable(str(warm_client.log_path()))}")
        identity = _identity(", ".join(warm_client.versions()), sys.executable, warm_client.identity(os.environ),
                             sorted(environment))
        click.echo(f"  identity:     {identity}")
    else:
        _describe(status)
    fate = "run in-process" if not use else "handed to it" if status else "the next starts it, and runs in-process"
    click.echo(f"  scans here:   {fate} ({why})")
    described = [(other, warm_client.ask(other, "status", 5) if warm_client.alive(other) else None)
                 for other in others]
    if any(other_status for _, other_status in described):
        whose = "this user (another installation," if every else "this installation (another"
        click.echo(f"other warm servers of {whose} environment or version of the code):")
        for _, other_status in described:
            if other_status:
                click.echo(f"  pid {other_status['pid']} since {_when(other_status['since'])}: "
                           f"{printable(other_status['socket'])}")
    if status is None:
        raise click.exceptions.Exit(1)


def _describe(status: dict[str, Any]) -> None:
    click.echo("warm server: running")
    click.echo(f"  pid:          {status['pid']}")
    ready = "" if status.get("ready_after") is None else f", ready after {status['ready_after']:.1f} s"
    click.echo(f"  since:        {_when(status['since'])}{ready}")
    click.echo(f"  idle timeout: {status['idle_timeout']} s (exits in {status['idle_left']} s without a scan)")
    click.echo(f"  scans served: {status['scans']}")
    click.echo(f"  socket:       {printable(status['socket'])}")
    click.echo(f"  log:          {printable(status['log'])}")
    versions = f"checker {status['checker']}, checkov {status['checkov']}"
    click.echo(f"  identity:     {_identity(versions, status['python'], status['identity'], status['variables'])}")


def _identity(versions: str, python: str, digest: str, variables: list[str]) -> str:
    """Versions, interpreter and the environment's digest with the names (never the values) of its variables."""
    names = ", ".join(variables) if variables else "none set"
    return printable(f"{versions}; {python}; environment {digest[:12]} ({names})")


def _when(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch).astimezone()
    minutes = int(time.time() - epoch) // 60
    return f"{moment.isoformat(sep=' ', timespec='seconds')} ({minutes} min ago)"


def _fail(error: OSError, code: int) -> int:
    click.echo(f"checker: error: {printable(str(error))}", err=True)
    return code
