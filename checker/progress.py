"""Progress on a terminal: one line on stderr, redrawn in place, while a scan takes a while.

A developer waiting on a scan wants to see that it moves and what it is doing; a CI log or
piped output wants none of it (a log keeps every redraw as noise, and whatever reads a pipe
expects the tool's messages only). So the line is drawn only when stderr is a terminal, this is
not a CI job (`settings.ci`), and TERM names a terminal that can erase a line (set, not "dumb"),
and only once the scan has run for DELAY seconds: most scans end sooner and show nothing.

No thread draws it (Checkov's workers are forked, and a thread alive at a fork is a hazard).
Engines report where their work happens (`show`, `tick`, or the workers' poll loop through
`watcher`, which wakes at least twice a second) and the line is redrawn at most every INTERVAL
seconds. `scan.run` clears it before it returns, so none of it is left on the screen when the
reports are written, even to the same terminal; and as it goes to stderr alone, stdout's report
is the same bytes with or without it. Drawing never fails a scan: a stderr that cannot be
written (closed, hung up, an encoding that cannot carry the text) turns progress off.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TextIO, TypeVar

from checker import settings
from checker.output import printable

DELAY = 2.0  # seconds of a scan before the first line: shorter scans print nothing extra
INTERVAL = 0.25  # seconds between redraws at least: a few a second reads as live, and costs nothing
_START = "\r"  # back to the start of the line, then the text, then erase what a longer line left
_ERASE = "\x1b[K"  # ANSI "erase in line" (to its end), which every terminal TERM names understands

J = TypeVar("J")


@dataclasses.dataclass(frozen=True)
class Step:
    """Where one engine is: how many of its units of work are done of how many, and which run now."""

    engine: str  # as the user knows it: "Checkov", "our checks"
    done: int
    total: int
    unit: str  # what it counts: "frameworks", "rules"
    running: tuple[str, ...] = ()


class Progress:
    """The progress line of one scan, drawn on `stream`, or nowhere when `stream` is None.

    `files` is how many files the scan covers (set once discovery has run). `clock` is injectable
    so the delay and the throttle can be tested without waiting.
    """

    def __init__(self, stream: TextIO | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.files = 0
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._step: Step | None = None
        self._drawn: float | None = None  # when the line was last drawn; None: nothing of it is on the screen
        self._shown = ""  # the text on the screen

    @classmethod
    def on_stderr(cls, environ: Mapping[str, str] = os.environ) -> Progress:
        """Progress on this process's stderr when `wanted` there, else silent."""
        return cls(sys.stderr if wanted(sys.stderr, environ) else None)

    def show(self, step: Step) -> None:
        """Record where an engine is, and redraw if the line is due."""
        self._step = step
        self.tick()

    def tick(self) -> None:
        """Work went on: redraw the last step (its elapsed time moved) if the line is due."""
        if self._stream is None or self._step is None:
            return
        now = self._clock()
        if now - self._started < DELAY or (self._drawn is not None and now - self._drawn < INTERVAL):
            return
        self._drawn = now
        text = fit(line(self._step, self.files, now - self._started), _width(self._stream))
        if text != self._shown:  # the same text again would only cost the terminal
            self._shown = text
            self._write(_START + text + _ERASE)

    def clear(self) -> None:
        """Erase the line, if one is on the screen: call before anything else is written, and at the end."""
        if self._drawn is not None:
            self._drawn, self._shown = None, ""
            self._write(_START + _ERASE)

    def watcher(self, engine: str, unit: str, names: Iterable[str],
                name: Callable[[J], str]) -> Callable[[Sequence[J], Sequence[J]], None]:
        """A hook for `workers.run_all`: given the jobs running and those waiting, shows how many of
        `names` (one per job, cached ones included) are done. A name is done once no job of it runs
        or waits, so a framework split into several jobs, or re-run file by file, counts once."""
        every = tuple(dict.fromkeys(names))

        def watch(running: Sequence[J], waiting: Sequence[J]) -> None:
            busy = {name(job) for job in running}
            left = busy | {name(job) for job in waiting}
            self.show(Step(engine, sum(n not in left for n in every), len(every), unit,
                           tuple(n for n in every if n in busy)))

        return watch

    def _write(self, text: str) -> None:
        stream = self._stream
        if stream is None:
            return
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # hung up, closed, or it cannot encode the text: no progress, no failure
            self._stream = None


def wanted(stream: TextIO | None, environ: Mapping[str, str]) -> bool:
    """Whether progress belongs on `stream`: a terminal that can erase a line, outside CI."""
    try:
        terminal = stream is not None and stream.isatty()
    except (OSError, ValueError):  # closed
        terminal = False
    return terminal and not settings.ci(environ) and environ.get("TERM", "dumb") not in ("", "dumb")


def line(step: Step, files: int, elapsed: float) -> str:
    """The progress line, e.g. `checker: 1,234 files, 14 s; Checkov 3 of 5 frameworks done (running: terraform,
    secrets)`: the scan, then the engine at work, and what runs now last, where a narrow terminal cuts."""
    running = f" (running: {', '.join(step.running)})" if step.running else ""
    text = f"checker: {files:,} files, {duration(elapsed)}; {step.engine} {step.done} of {step.total} {step.unit} done"
    return printable(text + running)  # a plugin's rule id is not ours to trust on a terminal


def duration(seconds: float) -> str:
    """`14 s`, or `2 min 05 s` from a minute on."""
    whole = int(seconds)
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60:02d} s"


def fit(text: str, width: int) -> str:
    """`text` cut to `width - 1` characters, with "..." where it was cut: a character in the last column
    makes some terminals wrap, and a wrapped line is no longer erased by a carriage return."""
    room = max(width - 1, 4)
    return text if len(text) <= room else text[:room - 3] + "..."


def _width(stream: TextIO) -> int:
    """The columns of the terminal `stream` is on, else shutil's answer (COLUMNS, stdout's terminal, 80).

    Asked of the stream itself: stdout may be a pipe, and in the warm server's scans `sys.__stdout__`
    is the server's own. A terminal that reports no size (a new pseudo-terminal says 0) gets shutil's."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        columns = 0
    return columns or shutil.get_terminal_size().columns
