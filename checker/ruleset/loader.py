"""Load a ruleset file and its `extends` chain into one frozen, validated Ruleset."""
from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import functools
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from checker.change import DEFAULT_CHANGE, ChangeSettings
from checker.discover import gitignore
from checker.documents import DEFAULT_LIMITS, Limits, YamlMap, YamlSeq, load_yaml, yaml_error_line, yaml_error_text
from checker.errors import ConfigError, where
from checker.model import FailOn, Severity
from checker.ruleset.waiver import Waiver

BUNDLED_DIR = Path(str(resources.files("checker.rulesets")))


@dataclasses.dataclass(frozen=True)
class Layer:
    """One file of the `extends` chain, with the sha256 of its bytes.

    `path` is how records name the file, the same on every machine: `bundled:NAME`, a POSIX path
    relative to the repository being judged, or `external:FILENAME` (never an absolute path of the
    machine). `display` is how errors name it, relative to the current folder, so it can be opened.
    """

    name: str
    path: str
    digest: str
    display: str = ""


@dataclasses.dataclass(frozen=True)
class Mention:
    """A rule id or glob written in a ruleset, with where it was written (for errors)."""

    pattern: str
    path: str
    line: int
    key: str
    layer: int = 0  # the position of the layer that wrote it in the chain


@dataclasses.dataclass(frozen=True)
class Lock:
    """One layer's `locks`: what the layers after it in the chain may not loosen.

    The rule locks need the engines' catalogue, so they are checked when rules are selected;
    `include`, `exclude` and `severity` are the selection as it stood at the locking layer.
    """

    layer: int
    path: str
    line: int
    fail_on: FailOn | None = None
    rules: tuple[str, ...] = ()
    allow_inline: bool | None = None
    approvers: tuple[str, ...] | None = None
    repo_policies: bool | None = None
    ignore: bool | None = None
    organisation: tuple[str, ...] = ()
    change: bool | None = None
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    severity: Mapping[str, Severity] = dataclasses.field(default_factory=dict)

    def name(self, key: str) -> str:
        """How errors name this lock: `locks.KEY of FILE:LINE`."""
        return f"locks.{key} of {self.path}:{self.line}"

    def as_dict(self) -> dict[str, Any]:
        keys = ("fail_on", "rules", "allow_inline", "approvers", "repo_policies", "ignore", "organisation", "change")
        out = {k: getattr(self, k) for k in keys if getattr(self, k) not in (None, ())}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


@dataclasses.dataclass(frozen=True)
class Ruleset:
    """The resolved ruleset: every layer merged, later layers winning key by key."""

    name: str
    version: str
    owner: str
    layers: tuple[Layer, ...]
    organisation: Mapping[str, Any]
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    severity: Mapping[str, Severity]
    params: Mapping[str, Mapping[str, Any]]
    policy_paths: tuple[str, ...]
    controls: Mapping[str, Mapping[str, Mapping[str, Any]]]
    waivers: tuple[Waiver, ...]
    ignore: tuple[str, ...]
    fail_on: FailOn
    allow_inline: bool
    forbid_inline: tuple[str, ...]
    mentions: tuple[Mention, ...]
    origins: Mapping[str, str]
    base: str = ""  # the folder of the ruleset file: its `ignore` patterns are relative to it
    locks: tuple[Lock, ...] = ()
    limits: Limits = DEFAULT_LIMITS
    include_keys: tuple[Mention, ...] = ()  # where each layer set `checks.include` (pattern: the layer's name)
    change: ChangeSettings = DEFAULT_CHANGE
    base_layer: tuple[str, str] | None = None  # the --base: its name and resolved digest (hex)

    @property
    def path(self) -> str:
        """The top layer's file as errors name it."""
        return self.layers[-1].display or self.layers[-1].path

    @property
    def locked_fail_on(self) -> FailOn | None:
        """The strictest `locks.fail_on` of the chain: a run with a laxer --fail-on is no pass under it."""
        found = [lock.fail_on for lock in self.locks if lock.fail_on]
        if not found:
            return None
        strictest: FailOn = max(found, key=_rank)
        return strictest

    def as_dict(self) -> dict[str, Any]:
        """The resolved settings as plain data (what the digest covers)."""
        return {
            "metadata": {"name": self.name, "version": self.version, "owner": self.owner},
            "organisation": dict(self.organisation),
            "checks": {
                "include": list(self.include), "exclude": list(self.exclude),
                "severity": {k: v.value for k, v in self.severity.items()},
                "params": {k: dict(v) for k, v in self.params.items()},
                "policy_paths": list(self.policy_paths),
            },
            "controls": self.controls,
            "waivers": [w.as_dict() for w in self.waivers],
            "ignore": list(self.ignore),
            "gate": {"fail_on": self.fail_on, "allow_inline": self.allow_inline,
                     "forbid_inline": list(self.forbid_inline)},
            "locks": [lock.as_dict() for lock in self.locks],
            "limits": dataclasses.asdict(self.limits),
            "change": self.change.as_dict(),
        }

    @property
    def digest(self) -> str:
        """sha256 of the resolved settings in canonical JSON: it changes with content, not formatting.

        Nothing in it depends on where the files are or which folder the command ran from (a
        digest pinned with `--base` must match on every machine): waivers are taken without the
        file and line they came from, and `policy_paths` (absolute here) are left out; the code in
        those folders was never covered by it (`layers` carry each file's own digest).
        """
        settings = self.as_dict()
        settings["waivers"] = [w.as_dict(located=False) for w in self.waivers]
        del settings["checks"]["policy_paths"]
        canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


def bundled_names() -> list[str]:
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.yaml"))


_PINNED = re.compile(r"^(?P<ref>.+?)(?:@sha256:(?P<digest>[0-9a-f]{64}))?$")


@dataclasses.dataclass(frozen=True)
class _Layer:
    """A ruleset file of the chain, parsed, and whether its own `policy_paths` may load code."""

    path: Path
    doc: YamlMap
    trusted: bool


def load_ruleset(ref: str | None, *, base: str | None = None, repository: Path | None = None,
                 trust_repo_policies: bool = False) -> Ruleset:
    """Load a ruleset (a bundled name or a file) and resolve its `extends` chain.

    `base` (`NAME|FILE[@sha256:HEX]`) is the organisation's layer: the bottom of the chain,
    checked against its digest when one is pinned; `ref` is layered on top of it and may
    extend only layers the base already includes. `repository` is the folder being judged:
    ruleset files inside it are the repository's own (their `extends` may not leave it, and
    their `policy_paths` load code only with `trust_repo_policies`).
    """
    cwd = Path.cwd()
    chain: list[_Layer] = []
    base_layer: tuple[str, str] | None = None
    if base:
        match = _PINNED.match(base)
        if not match or ("@" in base and not match["digest"] and "@sha256:" in base):
            raise ConfigError(f"--base {base!r}: write NAME, FILE or NAME@sha256:<64 lowercase hex digits>")
        _collect(_locate(match["ref"], cwd, None, None), chain, (), None, trusted=True)
        resolved = _merge(chain, trust_repo_policies, repository)
        base_layer = (resolved.name, resolved.digest)
        if match["digest"]:
            found = resolved.digest
            if found != match["digest"]:
                raise ConfigError(f"--base {match['ref']}: its digest is sha256:{found}, not the pinned "
                                  f"sha256:{match['digest']}; the organisation's layer changed (or the pin is wrong)")
    if ref is not None:
        named = Path(os.path.abspath(cwd / ref))  # where it is written, before any link is followed
        top = _locate(ref, cwd, None, repository if repository and named.is_relative_to(_real(repository))
                      else None)
        if not any(layer.path == top for layer in chain):
            _collect(top, chain, (), repository, trusted=not _inside(top, repository),
                     base_size=len(chain) if base else None)
    elif not chain:
        raise ConfigError("no ruleset: name one with --ruleset or --base")
    return dataclasses.replace(_merge(chain, trust_repo_policies, repository), base_layer=base_layer)


def _real(path: Path) -> Path:
    """The path with every link followed; a link loop stays as it is (never an exception)."""
    return Path(os.path.realpath(path))


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and _real(path).is_relative_to(_real(folder))


def _locate(ref: str, base: Path, referrer: tuple[Path, int] | None, confine: Path | None) -> Path:
    """The file a ruleset reference names; with `confine` (the repository), it may not lead out of it.

    A plain NAME is always the bundled ruleset of that name, never a file the scanned
    repository could place in the current folder to stand in for it (`--base org-baseline`).
    """
    bundled = BUNDLED_DIR / f"{ref}.yaml"
    if "/" not in ref and not ref.endswith((".yaml", ".yml")) and bundled.is_file():
        return bundled
    candidate = base / ref
    origin = f"{where(referrer[0], referrer[1], 'extends')}: " if referrer else ""
    if confine is not None and (candidate.is_symlink() or candidate.exists()) and not _inside(candidate, confine):
        raise ConfigError(f"{origin}{_display(candidate)} leads outside the scanned repository "
                          f"({_real(candidate)}); a ruleset there is not followed")
    if candidate.is_file():
        return _real(candidate)
    if candidate.exists() or candidate.is_symlink():
        raise ConfigError(f"{origin}{_display(candidate)}: not a regular file, so not read as a ruleset")
    raise ConfigError(
        f"{origin}ruleset {ref!r} is neither a file nor a bundled ruleset "
        f"(bundled: {', '.join(bundled_names())})")


def _collect(path: Path, chain: list[_Layer], stack: tuple[Path, ...], repository: Path | None, *,
             trusted: bool, base_size: int | None = None) -> None:
    """Depth-first: parents before children; a cycle is an error naming the chain.

    With `base_size` (a layer on top of a --base) every `extends` must name a layer the base
    already holds; a repository's file may extend only bundled rulesets and its own files.
    """
    if path in stack:
        names = " -> ".join(_display(p) for p in (*stack, path))
        raise ConfigError(f"{_display(path)}: extends cycle: {names}")
    if any(path == layer.path for layer in chain):
        return
    doc = _read(path)
    own = repository if _inside(path, repository) else None
    for i, parent in enumerate(doc.get("extends", [])):
        referrer = (path, doc["extends"].lines[i])
        located = _locate(parent, path.parent, referrer, own)
        if base_size is not None and not any(located == layer.path for layer in chain[:base_size]):
            raise ConfigError(f"{where(_display(path), referrer[1], 'extends')}: {parent!r} is not part of the base "
                              "ruleset (--base); a layer on top of the base may only extend layers it includes")
        _collect(located, chain, (*stack, path), repository, trusted=trusted and not _inside(located, repository))
    chain.append(_Layer(path, doc, trusted))


@functools.lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads((Path(__file__).parent / "schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _read(path: Path) -> YamlMap:
    limit = DEFAULT_LIMITS.max_file_bytes
    try:
        if path.stat().st_size > limit:
            raise ConfigError(f"{_display(path)}: a ruleset of {path.stat().st_size} bytes is over the "
                              f"{limit}-byte limit for one file")
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{_display(path)}: cannot read the ruleset: {error}") from None
    try:
        docs = load_yaml(text, strict=True)
    except yaml.YAMLError as error:
        raise ConfigError(f"{where(_display(path), yaml_error_line(error))}: not valid YAML: "
                          f"{yaml_error_text(error)}") from None
    doc = docs[0] if len(docs) == 1 else None
    if not isinstance(doc, YamlMap):
        raise ConfigError(f"{_display(path)}: a ruleset is one YAML mapping (apiVersion, kind, metadata, ...)")
    _text_keys(path, doc)
    _dates_to_text(doc)
    errors = sorted(_validator().iter_errors(doc), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if errors:
        first = errors[0]
        line, key = _line_of(doc, list(first.absolute_path), first)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{where(_display(path), line, key)}: {_explain(first)}{more}")
    return doc


def _text_keys(path: Path, doc: YamlMap) -> None:
    """Every key of a ruleset is text (`1: x`, `null: x` or `[a]: x` would confuse the schema)."""
    pending: list[Any] = [doc]
    while pending:
        node = pending.pop()
        if isinstance(node, YamlMap):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise ConfigError(f"{where(_display(path), node.lines.get(key, node.line), repr(key))}: "
                                      "a ruleset's keys are text; quote it")
                pending.append(value)
        elif isinstance(node, list):
            pending.extend(node)


def _dates_to_text(node: Any) -> Any:
    """YAML reads 2027-03-31 as a date; the schema checks dates as ISO text."""
    if isinstance(node, YamlMap):
        for k, v in node.items():
            node[k] = _dates_to_text(v)
    elif isinstance(node, YamlSeq):
        for i, v in enumerate(node):
            node[i] = _dates_to_text(v)
    elif isinstance(node, datetime.date):
        return node.isoformat()
    return node


def _line_of(doc: YamlMap, path: list[Any], error: jsonschema.ValidationError) -> tuple[int, str]:
    """The line and dotted key a schema error is about (the unknown key itself where there is one)."""
    node: Any = doc
    line = doc.line
    keys: list[str] = []
    for part in path:
        in_seq = isinstance(node, YamlSeq) and isinstance(part, int) and part < len(node)
        if in_seq or (isinstance(node, YamlMap) and part in node):
            line = node.lines[part]
        keys.append(f"[{part}]" if isinstance(part, int) else str(part))
        node = node[part]
    if error.validator == "additionalProperties" and isinstance(node, YamlMap):
        extra = [k for k in node if k not in _allowed(error)]
        if extra:
            line = node.lines[extra[0]]
            keys.append(str(extra[0]))
    return line, ".".join(keys).replace(".[", "[") or "(top level)"


def _allowed(error: jsonschema.ValidationError) -> list[str]:
    """The keys the failing schema allows (`properties`), for an additionalProperties error."""
    return list(error.schema.get("properties", {})) if isinstance(error.schema, Mapping) else []


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _explain(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(_allowed(error)))
        return f"unknown key; allowed here: {allowed}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required here")
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(str, _as_list(error.validator_value)))}"
    if error.validator == "format" and error.validator_value == "date":
        return f"{error.instance!r} is not a date; write it as YYYY-MM-DD"
    if error.validator == "type":
        return f"{error.instance!r} is not of type {error.validator_value}"
    return error.message


def _display(path: Path) -> str:
    """`bundled:NAME` for a ruleset shipped in the package, else the path relative to the current folder."""
    if path.parent == BUNDLED_DIR:
        return f"bundled:{path.stem}"
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _recorded(path: Path, repository: Path | None) -> str:
    """How records (SARIF, evidence) name a ruleset file, the same on every machine: `bundled:NAME`,
    a POSIX path relative to the repository being judged, else `external:FILENAME`."""
    if path.parent == BUNDLED_DIR:
        return f"bundled:{path.stem}"
    if repository is not None:
        real, top = _real(path), _real(repository)
        if real.is_relative_to(top):
            return real.relative_to(top).as_posix()
    return f"external:{path.name}"


def _merge(chain: Sequence[_Layer], trust_repo_policies: bool = False, repository: Path | None = None) -> Ruleset:
    """Merge layers in order: maps merge key by key, lists replace, waivers and ignores add up.

    Each layer is first held to the locks of the layers before it: loosening one is an error.
    """
    origins: dict[str, str] = {}
    organisation: dict[str, Any] = {}
    severity: dict[str, Severity] = {}
    params: dict[str, dict[str, Any]] = {}
    controls: dict[str, dict[str, Any]] = {}
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    policy_paths: list[str] = []
    waivers: list[Waiver] = []
    ignore: list[str] = []
    gate: dict[str, Any] = {"fail_on": "high", "allow_inline": True, "forbid_inline": []}
    mentions: list[Mention] = []
    include_keys: list[Mention] = []
    locks: list[Lock] = []
    limits: dict[str, int] = {}
    change: dict[str, Any] = DEFAULT_CHANGE.as_dict()
    required_by = ""
    layers = []
    for index, layer in enumerate(chain):
        path, doc = layer.path, layer.doc
        shown, recorded = _display(path), _recorded(path, repository)
        _check_locks(shown, doc, locks, change)
        layers.append(Layer(doc["metadata"]["name"], recorded, hashlib.sha256(path.read_bytes()).hexdigest(), shown))
        origins["metadata"] = shown
        for key, value in doc.get("organisation", {}).items():
            organisation[key] = value
            origins[f"organisation.{key}"] = shown
        checks = doc.get("checks", {})
        for key in ("include", "exclude"):
            if key in checks:
                mentions.extend(Mention(p, shown, checks[key].lines[i], f"checks.{key}", index)
                                for i, p in enumerate(checks[key]))
                origins[f"checks.{key}"] = shown
        if "include" in checks:
            include_keys.append(Mention(layer.doc["metadata"]["name"], shown, checks.line_of("include"),
                                        "checks.include", index))
        include = tuple(checks.get("include", include))
        exclude = tuple(checks.get("exclude", exclude))
        for rule_id, level in checks.get("severity", {}).items():
            severity[rule_id] = Severity(level)
            origins[f"checks.severity.{rule_id}"] = shown
            mentions.append(Mention(rule_id, shown, checks["severity"].lines[rule_id], "checks.severity", index))
        for rule_id, values in checks.get("params", {}).items():
            params[rule_id] = {**params.get(rule_id, {}), **values}
            origins[f"checks.params.{rule_id}"] = shown
            mentions.append(Mention(rule_id, shown, checks["params"].lines[rule_id], "checks.params", index))
        if checks.get("policy_paths") and not layer.trusted and not trust_repo_policies:
            raise ConfigError(
                f"{where(shown, checks.line_of('policy_paths'), 'checks.policy_paths')}: Python checks from the "
                "repository being judged are not loaded, since their code would run inside the gate; pass "
                "--trust-repo-policies where the repository is trusted, or ship the checks as a plugin package")
        for rel in checks.get("policy_paths", []):
            policy_paths.append(str(_real(path.parent / rel)))
        for framework, entries in doc.get("controls", {}).items():
            merged = controls.setdefault(framework, {})
            for control, spec in entries.items():
                merged[control] = {"title": spec["title"], "rules": list(spec["rules"])}
                origins[f"controls.{framework}.{control}"] = shown
                mentions.extend(Mention(r, shown, spec["rules"].lines[i], f"controls.{framework}.{control}", index)
                                for i, r in enumerate(spec["rules"]))
        for i, waiver in enumerate(doc.get("waivers", [])):
            _check_patterns(shown, f"waivers[{i}].paths", waiver.get("paths", []))
            waivers.append(Waiver.parse(waiver, recorded, doc["waivers"].lines[i]))
            mentions.append(Mention(waiver["rule"], shown, waiver.line_of("rule"), "waivers.rule", index))
        _check_patterns(shown, "ignore", doc.get("ignore", []))
        ignore.extend(doc.get("ignore", []))
        for key, value in doc.get("gate", {}).items():
            gate[key] = value
            if key == "forbid_inline":
                mentions.extend(Mention(p, shown, value.lines[i], "gate.forbid_inline", index)
                                for i, p in enumerate(value))
            origins[f"gate.{key}"] = shown
        for key, value in doc.get("limits", {}).items():
            current = limits.get(key, getattr(DEFAULT_LIMITS, key))
            if value > current and not layer.trusted:
                raise ConfigError(f"{where(shown, doc['limits'].lines[key], f'limits.{key}')}: a ruleset inside the "
                                  f"repository being judged may lower a limit, not raise it (to {value} from "
                                  f"{current}); raise it in the organisation's layer (--base)")
            limits[key] = value
            origins[f"limits.{key}"] = shown
        for key, value in doc.get("change", {}).items():
            if key == "ticket_pattern":
                _check_pattern(shown, doc["change"].line_of(key), value)
            change[key] = list(value) if key == "ticket_sources" else value
            origins[f"change.{key}"] = shown
            if key == "require_ticket":
                required_by = f"{recorded}:{doc['change'].line_of(key)}"
        if "locks" in doc:
            lock = _lock(index, shown, doc, include, exclude, severity)
            locks.append(lock)
            mentions.extend(Mention(p, shown, doc["locks"]["rules"].lines[i], "locks.rules", index)
                            for i, p in enumerate(lock.rules))
            origins["locks"] = shown
    for lock in locks:  # a lock holds for the layer that sets it too
        if lock.fail_on and _rank(gate["fail_on"]) < _rank(lock.fail_on):
            gate["fail_on"] = lock.fail_on
        if lock.allow_inline is False:
            gate["allow_inline"] = False
        gate["forbid_inline"] = [*gate["forbid_inline"], *(r for r in lock.rules if r not in gate["forbid_inline"])]
    meta = chain[-1].doc["metadata"]
    return Ruleset(
        name=meta["name"], version=str(meta.get("version", "0")), owner=meta.get("owner", ""),
        layers=tuple(layers), organisation=_plain(organisation), include=include, exclude=exclude,
        severity=severity, params=_plain(params), policy_paths=tuple(policy_paths), controls=_plain(controls),
        waivers=tuple(waivers), ignore=tuple(ignore), fail_on=gate["fail_on"],
        allow_inline=gate["allow_inline"], forbid_inline=tuple(gate["forbid_inline"]), mentions=tuple(mentions),
        origins=origins, base=str(chain[-1].path.parent), locks=tuple(locks), limits=Limits(**limits),
        include_keys=tuple(include_keys),
        change=ChangeSettings(change["ticket_pattern"], tuple(change["ticket_sources"]), change["require_ticket"],
                              required_by),
    )


def _check_patterns(shown: str, key: str, patterns: YamlSeq | list[str]) -> None:
    """Every gitignore-style pattern in `patterns` compiles (else the scan would stop half-way)."""
    for i in gitignore(patterns)[1]:
        line = patterns.lines[i] if isinstance(patterns, YamlSeq) else None
        raise ConfigError(f"{where(shown, line, f'{key}[{i}]')}: {patterns[i]!r} is not a valid gitignore-style "
                          "pattern (a lone or trailing backslash?)")


def _check_pattern(shown: str, line: int, pattern: str) -> None:
    """A ticket pattern must compile and must not match empty text (that would take any text for a ticket)."""
    try:
        compiled = re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as error:
        detail = f"{error.msg} at position {error.pos}" if isinstance(error, re.error) else type(error).__name__
        raise ConfigError(f"{where(shown, line, 'change.ticket_pattern')}: not a valid regular expression "
                          f"({detail})") from None
    if compiled.search("") is not None:
        raise ConfigError(f"{where(shown, line, 'change.ticket_pattern')}: {pattern!r} matches empty text, so "
                          "any text would hold a ticket; write what a ticket key looks like (e.g. PAY-[0-9]+)")


def _rank(fail_on: str) -> int:
    """How strict a threshold is: never -1 up to info 4 (info fails on the most)."""
    return -1 if fail_on == "never" else 4 - Severity(fail_on).rank


def _lock(index: int, shown: str, doc: YamlMap, include: tuple[str, ...], exclude: tuple[str, ...],
          severity: Mapping[str, Severity]) -> Lock:
    spec = doc["locks"]
    return Lock(
        layer=index, path=shown, line=doc.line_of("locks"), fail_on=spec.get("fail_on"),
        rules=tuple(spec.get("rules", ())), allow_inline=spec.get("allow_inline"),
        approvers=tuple(spec["approvers"]) if "approvers" in spec else None,
        repo_policies=spec.get("repo_policies"), ignore=spec.get("ignore"),
        organisation=tuple(spec.get("organisation", ())), change=spec.get("change"), include=include,
        exclude=exclude, severity=dict(severity),
    )


def _check_locks(shown: str, doc: YamlMap, locks: Sequence[Lock], change: Mapping[str, Any]) -> None:
    """A layer that loosens what an earlier layer locked is a configuration error naming both.

    `change` is the `change:` section as the layers before this one left it.
    """
    gate, checks = doc.get("gate", YamlMap()), doc.get("checks", YamlMap())
    for lock in locks:
        if lock.change:
            for key, value in doc.get("change", {}).items():
                if (list(value) if isinstance(value, list) else value) != change.get(key):
                    _loosens(shown, doc["change"].line_of(key), f"change.{key}",
                             "changes how the change's ticket is found or required", lock.name("change"))
        if lock.fail_on and "fail_on" in gate and _rank(gate["fail_on"]) < _rank(lock.fail_on):
            _loosens(shown, gate.line_of("fail_on"), "gate.fail_on",
                     f"{gate['fail_on']!r} is laxer than {lock.fail_on!r}", lock.name("fail_on"))
        if lock.allow_inline is False and gate.get("allow_inline") is True:
            _loosens(shown, gate.line_of("allow_inline"), "gate.allow_inline",
                     "turns inline suppression back on", lock.name("allow_inline"))
        if lock.ignore is False and doc.get("ignore"):
            _loosens(shown, doc.line_of("ignore"), "ignore", "adds paths the scan would not look at "
                     "(ask for a waiver instead)", lock.name("ignore"))
        for key in doc.get("organisation", {}):
            if any(fnmatch.fnmatchcase(str(key), glob) for glob in lock.organisation):
                _loosens(shown, doc["organisation"].line_of(key), f"organisation.{key}",
                         "changes an organisation fact the checks read", lock.name("organisation"))
        for rule_id in checks.get("params", {}):
            if any(fnmatch.fnmatchcase(str(rule_id), glob) for glob in lock.rules):
                _loosens(shown, checks["params"].line_of(rule_id), f"checks.params.{rule_id}",
                         "changes the parameters of a locked rule", lock.name("rules"))
        if lock.repo_policies is False and checks.get("policy_paths"):
            _loosens(shown, checks.line_of("policy_paths"), "checks.policy_paths",
                     "names Python checks to load", lock.name("repo_policies"))
        if lock.approvers is not None:
            for i, waiver in enumerate(doc.get("waivers", [])):
                approver = str(waiver.get("approved_by", "")).lower()
                single = not any(c.isspace() or c in ",;<>" for c in approver)  # one address, not a list
                if not single or not any(fnmatch.fnmatchcase(approver, glob.lower()) for glob in lock.approvers):
                    _loosens(shown, waiver.line_of("approved_by") if isinstance(waiver, YamlMap) else
                             doc["waivers"].lines[i], f"waivers[{i}].approved_by",
                             f"{approver!r} is not an approver the lock lists ({', '.join(lock.approvers)})",
                             lock.name("approvers"))


def _loosens(shown: str, line: int, key: str, what: str, lock: str) -> None:
    raise ConfigError(f"{where(shown, line, key)}: {what}, which {lock} forbids")


def _plain(node: Any) -> Any:
    """YamlMap/YamlSeq -> dict/list, so the frozen ruleset holds plain data."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node
