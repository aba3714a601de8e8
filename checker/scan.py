"""One scan, one direction: discover -> ruleset -> engines -> suppressions -> ScanResult."""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import importlib.metadata
import os
from collections.abc import Sequence
from pathlib import Path

from checker import baseline, gate, settings, suppress
from checker.cache import Cache, default_folder, holds_entries
from checker.change import Change, detect, tracks_any, uncommitted
from checker.discover import checkout_top, discover
from checker.engines.registry import ENGINES
from checker.errors import ConfigError
from checker.model import FailOn, Finding, Problem, Rule, ScanResult, timestamp, with_fingerprints
from checker.progress import Progress
from checker.ruleset import Ruleset, load_ruleset, select_rules

REPO_RULESET = ".checker.yaml"


@dataclasses.dataclass(frozen=True)
class Options:
    """What `checker scan` was asked: every flag that changes what is checked or how it is gated."""

    paths: tuple[str, ...] = (".",)
    ruleset: str | None = None
    fail_on: FailOn | None = None
    baseline: str | None = None
    base: str | None = None  # the organisation's pinned layer (--base / CHECKER_BASE)
    trust_repo_policies: bool = False
    change_base: str | None = None  # where the change's commits start (--change-base); else the CI's PR/MR base
    cache_dir: str | None = None  # the result cache's folder (--cache-dir); else checker.cache.default_folder()
    cache: bool = True  # --no-cache: compute everything, read and write no cache


def scan_root(paths: Sequence[str]) -> Path:
    """The folder paths in results are relative to: the one folder scanned, else the current folder."""
    if len(paths) == 1 and Path(paths[0]).is_dir():
        return Path(paths[0]).resolve()
    return Path.cwd().resolve()


def resolve_ruleset(ref: str | None, root: Path, base: str | None = None, trust_repo_policies: bool = False) -> Ruleset:
    """--ruleset, else the repository's .checker.yaml, else the bundled org-baseline; on top of --base.

    With a base and no ruleset of the repository's own, the base alone applies.
    """
    repository = repository_top(root)
    if not ref:
        local = repository_ruleset(root)
        ref = str(local) if local else None if base else "org-baseline"
    return load_ruleset(ref, base=base, repository=repository, trust_repo_policies=trust_repo_policies)


def repository_top(root: Path) -> Path:
    """The repository being judged: the git checkout holding the scanned folder, else the folder."""
    return checkout_top(root) or Path(os.path.realpath(root))


def repository_ruleset(root: Path) -> Path | None:
    """The nearest .checker.yaml in the scanned folder or above it, up to the repository's top
    (outside git, the scanned folder alone: a file further up is nobody's to vouch for).

    A name that is there but is not a regular file (a link, a folder, a FIFO) is an error,
    never silently replaced by the default ruleset.
    """
    root, top = Path(os.path.realpath(root)), repository_top(root)
    for folder in (root, *root.parents):
        candidate = folder / REPO_RULESET
        if candidate.is_symlink() or candidate.exists():
            target = os.path.realpath(candidate)
            if candidate.is_symlink() and not Path(target).is_relative_to(top):
                raise ConfigError(f"{candidate}: is a symbolic link to {target}, outside the scanned "
                                  "repository; it is not followed")
            if not candidate.is_file():
                raise ConfigError(f"{candidate}: is not a regular file (or a link that never ends), so it cannot "
                                  "be read as the repository's ruleset")
            return candidate
        if folder == top:
            return None
    return None


def catalogue(ruleset: Ruleset) -> dict[str, Rule]:
    """Every rule every engine knows, by id."""
    rules: dict[str, Rule] = {}
    for engine in ENGINES:
        for rule_id, rule in engine.catalogue(ruleset).items():
            if rule_id in rules:
                raise ConfigError(f"rule id {rule_id} is defined by both the {rules[rule_id].engine} "
                                  f"and the {engine.name} engine")
            rules[rule_id] = rule
    return rules


def run(options: Options, today: datetime.date | None = None) -> ScanResult:
    """Scan, apply suppressions and the baseline, and decide the gate: the one result every output renders."""
    started = timestamp()
    progress = Progress.on_stderr()  # its delay counts from here: the wait a developer feels
    accepted = baseline.read_bytes(options.baseline) if options.baseline else None
    known = baseline.fingerprints(options.baseline, accepted) if options.baseline else None
    root = scan_root(options.paths)
    ruleset = resolve_ruleset(options.ruleset, root, options.base, options.trust_repo_policies)
    rules = select_rules(ruleset, catalogue(ruleset))
    change = _committed(detect(root, ruleset.change, os.environ, options.change_base), ruleset, options.baseline)
    discovery = discover(root, [Path(p) for p in options.paths], ruleset.ignore, ruleset.base, ruleset.limits)
    discovery = dataclasses.replace(discovery, change=change)
    progress.files = len(discovery.files)
    findings: list[Finding] = []
    problems: list[Problem] = list(discovery.problems)
    notes = [*discovery.notes, *change.notes]
    if discovery.ignored:
        notes.append(f"{len(discovery.ignored)} path(s) left out by .gitignore or the ruleset's ignore: "
                     + ", ".join(discovery.ignored[:5]) + (", ..." if len(discovery.ignored) > 5 else ""))
    cache = _cache(options, change)
    try:
        for engine in ENGINES:
            owned = {i: r for i, r in rules.items() if r.engine == engine.name}
            if owned:
                outcome = engine.run(discovery, owned, ruleset, cache, progress)
                findings.extend(outcome.findings)
                problems.extend(outcome.problems)
                notes.extend(outcome.notes)
    finally:
        progress.clear()  # only engines draw it; gone before anything else is written, reports included
    cache.trim()
    notes.extend(cache.notes)
    suppressed = suppress.apply(findings, root, ruleset.waivers, ruleset.allow_inline, ruleset.forbid_inline,
                                today or datetime.date.today(), problems)
    notes.extend(suppressed.notes)
    inactive = [r.id for r in rules.values() if r.inactive_reason]
    if inactive:
        notes.append(f"{len(inactive)} rule(s) inactive for want of organisation facts: {', '.join(inactive)} "
                     "(`checker rules list` says why)")
    final = with_fingerprints(suppressed.findings)
    fixed: tuple[str, ...] = ()
    if known is not None:
        final, fixed = baseline.apply(final, known)
    fail_on = options.fail_on or ruleset.fail_on
    unchecked = tuple(sorted(set(suppressed.problems), key=lambda p: (p.path, p.line, p.message)))
    return ScanResult(
        root=str(root), ruleset=ruleset, rules=rules, findings=tuple(final), fixed=fixed, problems=unchecked,
        targets=tuple(discovery.sources), started=started, finished=timestamp(), versions=_versions(),
        notes=tuple(notes), fail_on=fail_on, decision=gate.decide(final, unchecked, fail_on), change=change,
        baseline_digest=hashlib.sha256(accepted).hexdigest() if accepted is not None else "",
        scope=scope(options.paths, root, change.toplevel),
    )


def _cache(options: Options, change: Change) -> Cache:
    """The result cache the options name, or none, with a note saying why, where its entries could
    pass a gate they never passed: the keys are public, so anyone able to write the folder could plant
    an entry saying "no findings".

    - In CI without CHECKER_CACHE_KEY: a cache there is restored from a store that other jobs, which
      run the judged repository's code, can write, and only a signature tells our entries from
      planted ones. Nothing is read or written, --cache-dir included (it never enables unsigned
      entries in CI); the note comes only when the folder holds entries someone restored.
    - A folder holding files committed to the repository being judged.
    """
    if not options.cache:
        return Cache(None)
    folder = Path(options.cache_dir) if options.cache_dir else default_folder()
    current = settings.current()
    secret = current.cache_key
    ci = settings.ci(os.environ)
    if ci and not secret:
        unsigned = Cache(None)
        if holds_entries(folder):
            unsigned.notes.append(
                f"the result cache in {folder} was not used, since {ci} is set and CHECKER_CACHE_KEY is not: in CI "
                "only entries signed with that key are trusted (other jobs can write a restored cache); results were "
                "computed. Set CHECKER_CACHE_KEY from a secret only the gating job can read (`openssl rand -hex 32`)")
        return unsigned
    if change.toplevel and tracks_any(change.toplevel, folder):
        refused = Cache(None)
        refused.notes.append(f"the result cache folder {folder} holds files committed to the repository being judged, "
                             "so it was not used: results were computed (keep the cache out of git)")
        return refused
    return Cache(folder, current.cache_mb * 1024 * 1024, secret)


def _committed(change: Change, ruleset: Ruleset, baseline_path: str | None) -> Change:
    """The change, marked as having uncommitted changes when a file that decided what the gate checks
    (a ruleset layer, the baseline) is in the checkout but not committed: git status does not show
    an ignored `.checker.yaml`, yet evidence of such a scan must not vouch for the commit."""
    if not change.toplevel or change.dirty:
        return change
    read = [Path(layer.display) for layer in ruleset.layers
            if layer.display and not layer.display.startswith("bundled:")]
    loose = uncommitted(change.toplevel, [*read, *([Path(baseline_path)] if baseline_path else [])])
    if not loose:
        return change
    note = (f"{', '.join(loose)} decided what the gate checked but is not committed: the working tree is recorded "
            "as having uncommitted changes")
    return dataclasses.replace(change, dirty=True, notes=(*change.notes, note))


def scope(paths: Sequence[str], root: Path, toplevel: str) -> tuple[str, ...]:
    """What was scanned, relative to the repository's top ("." for all of it), else to the scan root;
    evidence vouches for a whole commit only when this is (".",) in a checkout."""
    base = Path(toplevel) if toplevel else root
    out = []
    for path in paths:
        real = Path(os.path.realpath(path))
        out.append(real.relative_to(base).as_posix() if real.is_relative_to(base) else f"external:{real.name}")
    return tuple(sorted(set(out)))


def _versions() -> dict[str, str]:
    """This package's version and that of every engine's distribution: what the results depend on."""
    names = ("checker", *(e.distribution for e in ENGINES if e.distribution))
    return {name: importlib.metadata.version(name) for name in names}
