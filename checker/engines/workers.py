"""Fenced workers: each job runs in a forked process of its own, under a memory cap and a deadline.

A parser that balloons, hangs or crashes on one hostile file must cost only its own job's
results, named with the cause, never the whole scan or the machine. So every job gets a fork
(which shares what the parent imported), a cap on the memory it may add (RLIMIT_DATA, checked
from outside too, since a parser may catch MemoryError and carry on), a deadline after which
its whole process group is killed, and the kernel's promise to kill it if the parent dies.
What a death costs, and whether to retry smaller jobs, is the caller's to decide.
"""
from __future__ import annotations

import collections
import contextlib
import ctypes
import dataclasses
import gc
import multiprocessing
import multiprocessing.connection
import os
import resource
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.process import BaseProcess
from typing import Generic, TypeVar

OUT_OF_MEMORY = 86  # a worker's exit status when an allocation failed under its memory cap
_AT_CAP = 8 * 2**20  # a worker this close to its memory cap can no longer allocate what it needs
_POLL = 0.5  # seconds between looks at each worker's memory
_PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies

J = TypeVar("J")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True)
class Fence:
    """What every worker may spend: MiB beyond what it inherits, and seconds."""

    memory_mb: int
    seconds: int


@dataclasses.dataclass(frozen=True)
class Callbacks(Generic[J, R]):
    """What the caller makes of a job: its work, and what a death or a failure costs."""

    work: Callable[[J], R]  # runs inside the worker; its result crosses back by pickling
    lost: Callable[[J, str], tuple[R, Sequence[J]]]  # a death's cause -> (its result, jobs to run instead)
    unstarted: Callable[[J, str], R]  # the time for all workers ran out before this job began
    failed: Callable[[J, BaseException], R]  # inside the worker: `work` raised


@dataclasses.dataclass
class _Worker(Generic[J]):
    """A forked worker running one job: its result arrives on `reader`, or EOF when it dies."""

    job: J
    process: BaseProcess
    pid: int  # also its process group's id
    reader: multiprocessing.connection.Connection
    started: float
    deadline: float
    cap: int | None  # its RLIMIT_DATA in bytes; None where there is no such accounting
    at_cap: int = 0  # consecutive polls that found it at its cap


def run_all(jobs: Iterable[J], fence: Fence, callbacks: Callbacks[J, R],
            watch: Callable[[Sequence[J], Sequence[J]], None] | None = None) -> list[R]:
    """Run every job (in the order given) in its own fenced worker, at most one per CPU.

    A first pass gets `fence.seconds` per worker; jobs a death hands back get as much again
    each, and everything ends within twice `fence.seconds`. `watch`, if given, is told the jobs
    running and those waiting after each round of starts and each wait (half a second at most):
    the parent's one loop is where progress can be shown without a thread.
    """
    queue = collections.deque(jobs)
    end = time.monotonic() + 2 * fence.seconds
    running: dict[multiprocessing.connection.Connection, _Worker[J]] = {}
    results: list[R] = []
    try:
        while queue or running:
            while queue and len(running) < cpus():
                job = queue.popleft()
                if time.monotonic() >= end:
                    results.append(callbacks.unstarted(job, f"the time limit for all workers ({2 * fence.seconds} "
                                                            "s) ran out before it could start"))
                else:
                    worker = _start(job, fence, end, callbacks)
                    running[worker.reader] = worker
            if watch:
                watch([worker.job for worker in running.values()], queue)
            if running:
                _reap(running, queue, results, fence, callbacks)
    finally:
        for worker in running.values():
            _stop(worker)
    return results


def cpus() -> int:
    """The CPUs this process may run on (its affinity, where the system tells), at least one."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _reap(running: dict[multiprocessing.connection.Connection, _Worker[J]], queue: collections.deque[J],
          results: list[R], fence: Fence, callbacks: Callbacks[J, R]) -> None:
    """Wait (half a second at most) for workers to finish or die; stop those past their deadline or cap."""
    timeout = max(0.0, min(_POLL, *(w.deadline - time.monotonic() for w in running.values())))
    dead: list[tuple[_Worker[J], str]] = []
    for reader in multiprocessing.connection.wait(list(running), timeout):
        worker = running.pop(reader)  # type: ignore[call-overload]
        result = _receive(worker)
        _stop(worker)
        if result is None:
            dead.append((worker, cause(worker.process.exitcode, fence)))
        else:
            results.append(result)
    now = time.monotonic()
    for reader, worker in list(running.items()):
        if worker.deadline <= now:
            dead.append((worker, f"did not finish within {round(worker.deadline - worker.started)} s"))
        elif _stuck_at_cap(worker):
            dead.append((worker, cause(OUT_OF_MEMORY, fence)))
        else:
            continue
        del running[reader]
        _stop(worker)
    for worker, why in dead:
        result, instead = callbacks.lost(worker.job, why)
        results.append(result)
        queue.extend(instead)


def cause(exitcode: int | None, fence: Fence) -> str:
    """Why a worker died without a result, in words."""
    if exitcode == OUT_OF_MEMORY:
        return f"ran out of its memory cap of {fence.memory_mb} MiB"
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else str(-exitcode)
        hint = " (the machine ran out of memory?)" if -exitcode == signal.SIGKILL else ""
        return f"was killed by signal {name}{hint}"
    return f"exited with status {exitcode} without a result"


def _stuck_at_cap(worker: _Worker[J]) -> bool:
    """Whether a worker has sat at its memory cap for two polls running.

    Checkov catches MemoryError and carries on, failing again and again: measured, a 5 MB
    Dockerfile kept a worker at its cap for over ten minutes, mostly inside C code that never
    let another thread of the worker run. Hence a check from outside, by the parent.
    """
    used = _data_size(worker.pid)
    worker.at_cap = worker.at_cap + 1 if worker.cap and used and used >= worker.cap - _AT_CAP else 0
    return worker.at_cap >= 2


def _start(job: J, fence: Fence, end: float, callbacks: Callbacks[J, R]) -> _Worker[J]:
    """Fork a worker for `job` in a process group of its own, so a kill reaches its children too."""
    reader, writer = multiprocessing.get_context("fork").Pipe(duplex=False)
    gc.freeze()  # what the worker inherits is the parent's and alive: its collector need not look at it
    used = _data_size(os.getpid())  # what the worker starts with: fork copies this address space
    cap = used + fence.memory_mb * 2**20 if used is not None else None
    process = multiprocessing.get_context("fork").Process(
        target=_work, args=(job, writer, cap, os.getpid(), callbacks))
    process.start()
    writer.close()
    pid = int(process.pid)  # type: ignore[arg-type]  # set by start()
    with contextlib.suppress(OSError):  # it did so already, or already exited
        os.setpgid(pid, pid)  # also done by the worker: whichever runs first
    now = time.monotonic()
    return _Worker(job, process, pid, reader, now, min(now + fence.seconds, end), cap)


def _receive(worker: _Worker[J]) -> R | None:
    """The worker's result, or None when it died before sending one."""
    try:
        return worker.reader.recv()  # type: ignore[no-any-return]
    except (EOFError, OSError):
        return None


def _stop(worker: _Worker[J]) -> None:
    """Kill what is left of a worker's process group (none of it when it finished) and reap it."""
    with contextlib.suppress(OSError):  # the group is gone already
        os.killpg(worker.pid, signal.SIGKILL)
    worker.process.join()
    worker.reader.close()


def _work(job: J, writer: multiprocessing.connection.Connection, cap: int | None, parent: int,
          callbacks: Callbacks[J, R]) -> None:
    """A worker's whole life: cap its memory, run the job, send the result, exit without cleanup.

    Leaving through os._exit keeps inherited buffers and handlers of the parent from running
    twice, and keeps any traceback away from the user: the parent names the cause instead.
    """
    status = 0
    gc.enable()  # off in the parent (checker/launch.py); a runner's graphs make cycles worth collecting
    try:
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)  # the parent did it already, unless this ran first
        _die_with_parent(parent)
        if cap is not None:
            _cap_memory(cap)
        writer.send(callbacks.work(job))
    except MemoryError:
        status = OUT_OF_MEMORY
    except BaseException as error:  # noqa: BLE001 - anything else is named by the caller or the parent
        status = 1
        with contextlib.suppress(BaseException):  # then the parent names the exit status
            writer.send(callbacks.failed(job, error))
    os._exit(status)


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this worker if the parent dies first (Linux; elsewhere nothing).

    Workers have a process group of their own, so a signal to the parent's group (a cancelled
    CI job, Ctrl-C) does not reach them, and a parent killed outright cannot stop them.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


def _cap_memory(cap: int) -> None:
    """Cap this process's data (RLIMIT_DATA) at `cap` bytes: past it, allocations raise MemoryError.

    RLIMIT_DATA counts the heap and every private writable mapping (Linux 4.7+), which is where
    Python's allocations go: a runaway parse fails in this worker instead of the machine killing
    whatever it picks.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))


def _data_size(pid: int) -> int | None:
    """The bytes RLIMIT_DATA counts for a process (VmData), or None where /proc does not say (not Linux)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
