"""Load a ruleset file and its `extends` chain into one frozen, validated Ruleset."""
from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from checker.documents import YamlMap, YamlSeq, load_yaml, yaml_error_line, yaml_error_text
from checker.errors import ConfigError, where
from checker.model import Severity

BUNDLED_DIR = Path(str(resources.files("checker.rulesets")))


@dataclasses.dataclass(frozen=True)
class Layer:
    """One file of the `extends` chain, with the sha256 of its bytes."""

    name: str
    path: str
    digest: str


@dataclasses.dataclass(frozen=True)
class Mention:
    """A rule id or glob written in a ruleset, with where it was written (for errors)."""

    pattern: str
    path: str
    line: int
    key: str


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
    waivers: tuple[Mapping[str, Any], ...]
    ignore: tuple[str, ...]
    fail_on: str
    allow_inline: bool
    forbid_inline: tuple[str, ...]
    mentions: tuple[Mention, ...]
    origins: Mapping[str, str]
    base: str = ""  # the folder of the ruleset file: its `ignore` patterns are relative to it

    @property
    def path(self) -> str:
        return self.layers[-1].path

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
            "waivers": [dict(w) for w in self.waivers],
            "ignore": list(self.ignore),
            "gate": {"fail_on": self.fail_on, "allow_inline": self.allow_inline,
                     "forbid_inline": list(self.forbid_inline)},
        }

    @property
    def digest(self) -> str:
        """sha256 of the resolved settings in canonical JSON."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


def bundled_names() -> list[str]:
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.yaml"))


def load_ruleset(ref: str, base: Path | None = None) -> Ruleset:
    """Load a bundled ruleset by name, or a ruleset file, and resolve its `extends` chain."""
    path = _locate(ref, base or Path.cwd(), None)
    chain: list[tuple[Path, YamlMap]] = []
    _collect(path, chain, ())
    return _merge(chain)


def _locate(ref: str, base: Path, referrer: tuple[Path, int] | None) -> Path:
    candidate = (base / ref)
    if candidate.is_file():
        return candidate.resolve()
    bundled = BUNDLED_DIR / f"{ref}.yaml"
    if "/" not in ref and not ref.endswith((".yaml", ".yml")) and bundled.is_file():
        return bundled
    origin = f"{where(referrer[0], referrer[1], 'extends')}: " if referrer else ""
    raise ConfigError(
        f"{origin}ruleset {ref!r} is neither a file nor a bundled ruleset "
        f"(bundled: {', '.join(bundled_names())})")


def _collect(path: Path, chain: list[tuple[Path, YamlMap]], stack: tuple[Path, ...]) -> None:
    """Depth-first: parents before children; a cycle is an error naming the chain."""
    if path in stack:
        names = " -> ".join(_display(p) for p in (*stack, path))
        raise ConfigError(f"{_display(path)}: extends cycle: {names}")
    if any(path == p for p, _ in chain):
        return
    doc = _read(path)
    for i, parent in enumerate(doc.get("extends", [])):
        _collect(_locate(parent, path.parent, (path, doc["extends"].lines[i])), chain, (*stack, path))
    chain.append((path, doc))


@functools.lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads((Path(__file__).parent / "schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _read(path: Path) -> YamlMap:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the ruleset: {error}") from None
    try:
        docs = load_yaml(text, strict=True)
    except yaml.YAMLError as error:
        raise ConfigError(f"{where(_display(path), yaml_error_line(error))}: not valid YAML: "
                          f"{yaml_error_text(error)}") from None
    if len(docs) != 1 or not isinstance(docs[0], YamlMap):
        raise ConfigError(f"{_display(path)}: a ruleset is one YAML mapping (apiVersion, kind, metadata, ...)")
    doc = _dates_to_text(docs[0])
    errors = sorted(_validator().iter_errors(doc), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if errors:
        error = errors[0]
        line, key = _line_of(doc, list(error.absolute_path), error)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{where(_display(path), line, key)}: {_explain(error)}{more}")
    return doc


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
        if isinstance(node, YamlMap) and part in node:
            line = node.lines[part]
        elif isinstance(node, YamlSeq) and isinstance(part, int) and part < len(node):
            line = node.lines[part]
        keys.append(f"[{part}]" if isinstance(part, int) else str(part))
        node = node[part]
    if error.validator == "additionalProperties" and isinstance(node, YamlMap):
        extra = [k for k in node if k not in error.schema.get("properties", {})]
        if extra:
            line = node.lines[extra[0]]
            keys.append(str(extra[0]))
    return line, ".".join(keys).replace(".[", "[") or "(top level)"


def _explain(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"unknown key; allowed here: {allowed}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required here")
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "format" and error.validator_value == "date":
        return f"{error.instance!r} is not a date; write it as YYYY-MM-DD"
    if error.validator == "type":
        return f"{error.instance!r} is not of type {error.validator_value}"
    return error.message


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _merge(chain: list[tuple[Path, YamlMap]]) -> Ruleset:
    """Merge layers in order: maps merge key by key, lists replace, waivers and ignores add up."""
    origins: dict[str, str] = {}
    organisation: dict[str, Any] = {}
    severity: dict[str, Severity] = {}
    params: dict[str, dict[str, Any]] = {}
    controls: dict[str, dict[str, Any]] = {}
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    policy_paths: list[str] = []
    waivers: list[Mapping[str, Any]] = []
    ignore: list[str] = []
    gate: dict[str, Any] = {"fail_on": "high", "allow_inline": True, "forbid_inline": []}
    mentions: list[Mention] = []
    layers = []
    for path, doc in chain:
        shown = _display(path)
        layers.append(Layer(doc["metadata"]["name"], shown, hashlib.sha256(path.read_bytes()).hexdigest()))
        origins["metadata"] = shown
        for key, value in doc.get("organisation", {}).items():
            organisation[key] = value
            origins[f"organisation.{key}"] = shown
        checks = doc.get("checks", {})
        for key in ("include", "exclude"):
            if key in checks:
                mentions.extend(Mention(p, shown, checks[key].lines[i], f"checks.{key}")
                                for i, p in enumerate(checks[key]))
                origins[f"checks.{key}"] = shown
        include = tuple(checks.get("include", include))
        exclude = tuple(checks.get("exclude", exclude))
        for rule_id, level in checks.get("severity", {}).items():
            severity[rule_id] = Severity(level)
            origins[f"checks.severity.{rule_id}"] = shown
            mentions.append(Mention(rule_id, shown, checks["severity"].lines[rule_id], "checks.severity"))
        for rule_id, values in checks.get("params", {}).items():
            params[rule_id] = {**params.get(rule_id, {}), **values}
            origins[f"checks.params.{rule_id}"] = shown
            mentions.append(Mention(rule_id, shown, checks["params"].lines[rule_id], "checks.params"))
        for rel in checks.get("policy_paths", []):
            policy_paths.append(str((path.parent / rel).resolve()))
        for framework, entries in doc.get("controls", {}).items():
            merged = controls.setdefault(framework, {})
            for control, spec in entries.items():
                merged[control] = {"title": spec["title"], "rules": list(spec["rules"])}
                origins[f"controls.{framework}.{control}"] = shown
                mentions.extend(Mention(r, shown, spec["rules"].lines[i], f"controls.{framework}.{control}")
                                for i, r in enumerate(spec["rules"]))
        for i, waiver in enumerate(doc.get("waivers", [])):
            waivers.append({**waiver, "source": shown, "line": doc["waivers"].lines[i]})
            mentions.append(Mention(waiver["rule"], shown, waiver.line_of("rule"), "waivers.rule"))
        ignore.extend(doc.get("ignore", []))
        for key, value in doc.get("gate", {}).items():
            gate[key] = value
            if key == "forbid_inline":
                mentions.extend(Mention(p, shown, value.lines[i], "gate.forbid_inline") for i, p in enumerate(value))
            origins[f"gate.{key}"] = shown
    meta = chain[-1][1]["metadata"]
    return Ruleset(
        name=meta["name"], version=str(meta.get("version", "0")), owner=meta.get("owner", ""),
        layers=tuple(layers), organisation=_plain(organisation), include=include, exclude=exclude,
        severity=severity, params=_plain(params), policy_paths=tuple(policy_paths), controls=_plain(controls),
        waivers=tuple(_plain(w) for w in waivers), ignore=tuple(ignore), fail_on=gate["fail_on"],
        allow_inline=gate["allow_inline"], forbid_inline=tuple(gate["forbid_inline"]), mentions=tuple(mentions),
        origins=origins, base=str(chain[-1][0].parent),
    )


def _plain(node: Any) -> Any:
    """YamlMap/YamlSeq -> dict/list, so the frozen ruleset holds plain data."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node
