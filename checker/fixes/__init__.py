"""Our own remediation for Checkov's checks: what to change, and a whole corrected file per framework.

The data is every `*.yaml` file beside this module (shipped as package data), each one mapping:

    CKV_AWS_20:
      fix: |-
        What to change, in our words: one paragraph, as the text report shows it on one line.
      terraform: |
        <a whole .tf file that passes the check>
      cloudformation: |
        <a whole template that passes the check>

A snippet's key is the Checkov framework whose files it is written as (`FRAMEWORKS`); it also fixes
findings of the frameworks that read the same files. The Checkov engine makes `fix` its rule's
remediation and the snippets its rule's examples (checker.model.Example).

An entry may add `checkov_bug: {terraform: why}` where Checkov's check cannot pass any correct file (it reads
an attribute the provider does not have, or never passes): the snippet stays right by the provider's
documentation, and the fix's prose says how to accept the finding.

A malformed file (a check written twice, in one file or two; an unknown framework key; no `fix`) is a
ConfigError naming the file and line, raised on first use and by tests/test_checkov_fixes.py, which also
proves which checks have an entry and that every snippet passes its own check under real Checkov.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import yaml

from checker.documents import YamlMap, load_yaml, yaml_error_line, yaml_error_text
from checker.errors import ConfigError, where
from checker.model import Example

FOLDER = Path(__file__).resolve().parent
_CHECK_ID = re.compile(r"CKV2?_[A-Z0-9]+_[0-9]+")


@dataclasses.dataclass(frozen=True)
class Framework:
    """A kind of file a snippet is written as."""

    label: str  # what a snippet is, for people ("`checker rules explain X` shows a corrected <label>")
    language: str  # its Markdown code fence's language
    kinds: tuple[str, ...]  # the Checkov frameworks whose findings it fixes


# Snippet keys, in the order reports show them. Terraform JSON is the same configuration in another syntax,
# and a plan is made from the configuration (the fix goes there); Serverless declares its AWS resources
# in CloudFormation's syntax; Helm and Kustomize render Kubernetes manifests.
FRAMEWORKS: Mapping[str, Framework] = {
    "terraform": Framework("Terraform configuration", "hcl", ("terraform", "terraform_json", "terraform_plan")),
    "cloudformation": Framework("CloudFormation template", "yaml", ("cloudformation", "serverless")),
    "kubernetes": Framework("Kubernetes manifest", "yaml", ("kubernetes", "helm", "kustomize")),
    "dockerfile": Framework("Dockerfile", "dockerfile", ("dockerfile",)),
    "github_actions": Framework("GitHub Actions workflow", "yaml", ("github_actions",)),
    "gitlab_ci": Framework("GitLab CI configuration", "yaml", ("gitlab_ci",)),
    "azure_pipelines": Framework("Azure Pipelines definition", "yaml", ("azure_pipelines",)),
    "secrets": Framework("configuration", "text", ("secrets",)),  # any file: a .env, a YAML file, code
}


@dataclasses.dataclass(frozen=True)
class Fix:
    """Our remediation for one Checkov check."""

    check: str
    prose: str  # what to change, one paragraph
    snippets: tuple[tuple[str, str], ...]  # (FRAMEWORKS key, the whole corrected file), in FRAMEWORKS' order
    source: str  # FILE:LINE of its entry, for errors
    checkov_bugs: Mapping[str, str] = dataclasses.field(default_factory=dict)  # FRAMEWORKS key -> why Checkov
    # cannot pass any correct file there (the check reads an attribute the provider does not have, or never
    # passes): the snippet is right by the provider's documentation, and the test does not ask Checkov to pass it

    def examples(self, kinds: Sequence[str]) -> tuple[Example, ...]:
        """Its snippets as examples of a rule of these kinds (Checkov's frameworks of the check), each
        naming the kinds whose findings it fixes."""
        out = []
        for name, text in self.snippets:
            framework = FRAMEWORKS[name]
            out.append(Example(name, framework.label, framework.language, text,
                               tuple(k for k in kinds if k in framework.kinds)))
        return tuple(out)


def bundled() -> Mapping[str, Fix]:
    """The package's own fixes, by check id: read again only when a file changed. A warm server (checker/warm.py)
    outlives edits of these files, and starts anew only when a .py file changes; reading them all takes some
    10 ms, so every catalogue looks at their dates rather than trusting the first read."""
    stats = ((p.name, p.stat()) for p in sorted(FOLDER.glob("*.yaml")))
    return _read_once(tuple((name, stat.st_mtime_ns, stat.st_size) for name, stat in stats))


@functools.lru_cache(maxsize=1)
def _read_once(stamp: tuple[tuple[str, int, int], ...]) -> Mapping[str, Fix]:
    """The folder as it was when its files had these names, dates and sizes (`stamp`, the cache's key)."""
    return load(FOLDER)


def load(folder: Path) -> dict[str, Fix]:
    """Every fix in the folder's `*.yaml` files, by check id; a check written twice is an error naming both."""
    found: dict[str, Fix] = {}
    for path in sorted(folder.glob("*.yaml")):
        for fix in _read(path):
            if fix.check in found:
                raise ConfigError(f"{fix.source}: {fix.check} has a fix in {found[fix.check].source} already")
            found[fix.check] = fix
    return found


def _read(path: Path) -> Iterator[Fix]:
    try:
        documents = load_yaml(path.read_text(encoding="utf-8"), strict=True)  # strict: a key twice is refused
    except yaml.YAMLError as error:
        raise ConfigError(f"{where(path, yaml_error_line(error))}: {yaml_error_text(error)}") from None
    if documents in ([], [None]):
        return
    data = documents[0]
    if len(documents) != 1 or not isinstance(data, YamlMap):
        raise ConfigError(f"{path}: must be one mapping of check ids to fixes")
    for check, entry in data.items():
        source = where(path, data.lines[check])
        if not isinstance(check, str) or not _CHECK_ID.fullmatch(check):
            raise ConfigError(f"{source}: {check!r} is not a Checkov check id (CKV_AWS_20, CKV2_GHA_1, ...)")
        if not isinstance(entry, YamlMap):
            raise ConfigError(f"{source}: {check} must be a mapping with `fix` and a snippet per framework")
        yield _fix(check, entry, path, source)


def _fix(check: str, entry: YamlMap, path: Path, source: str) -> Fix:
    prose = entry.get("fix")
    if not isinstance(prose, str) or not prose.strip():
        raise ConfigError(f"{source}: {check} has no `fix` (what to change, in prose)")
    if re.search(r"\n\s*\n", prose.strip()):
        raise ConfigError(f"{where(path, entry.lines['fix'])}: {check}: `fix` must be one paragraph (the text "
                          "report shows it on one line)")
    bugs = entry.get("checkov_bug") or {}
    if not isinstance(bugs, dict) or not all(name in entry and name in FRAMEWORKS and isinstance(why, str)
                                             and why.strip() for name, why in bugs.items()):
        raise ConfigError(f"{where(path, entry.line_of('checkov_bug'))}: {check}: `checkov_bug` maps a framework "
                          "that has a snippet to why Checkov cannot pass it")
    snippets = {}
    for name, text in entry.items():
        if name in ("fix", "checkov_bug"):
            continue
        at = where(path, entry.lines[name])
        if name not in FRAMEWORKS:
            raise ConfigError(f"{at}: {check}: unknown framework {name!r} (one of: fix, {', '.join(FRAMEWORKS)})")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{at}: {check}: the {name} snippet must be a whole file, as text")
        snippets[name] = text
    return Fix(check, prose.strip(), tuple((name, snippets[name]) for name in FRAMEWORKS if name in snippets),
               source, {str(name): " ".join(why.split()) for name, why in bugs.items()})
