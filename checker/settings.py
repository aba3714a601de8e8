"""Every CHECKER_* environment variable, read and checked once, at start.

A CI maintainer sets these; a typo must not silently change what the gate does (a misspelt
CHECKER_BASE would leave the repository choosing its own judge), so an unknown CHECKER_*
name or a malformed value is a configuration error (exit 2) naming the variable.
"""
from __future__ import annotations

import base64
import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

from checker.errors import ConfigError


def _whole(unit: str, low: int, high: int) -> Callable[[str, str], int]:
    """A parser of a whole number of `unit` from `low` to `high`."""

    def parse(name: str, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise ConfigError(f"{name}={text!r}: expected a whole number of {unit} from {low} to {high}")
        return value

    return parse


def _switch(name: str, text: str) -> bool:
    if text not in ("0", "1"):
        raise ConfigError(f"{name}={text!r}: expected 0 (off) or 1 (on)")
    return text == "1"


def _reference(name: str, text: str) -> str:
    if not text.strip():
        raise ConfigError(f"{name} is set but empty: name a bundled ruleset or a ruleset file (NAME|FILE[@sha256:HEX])")
    return text


def _secret_pem(name: str, text: str) -> str | None:
    """A PEM text, or the same base64-encoded on one line (GitLab masks no value with line breaks).

    Empty is unset: GitHub passes an empty string for a secret a run may not see (a fork's pull
    request), and that run's evidence is then unsigned. An error never repeats any of the text.
    """
    if not text.strip():
        return None
    if "-----BEGIN " not in text:
        try:
            text = base64.b64decode("".join(text.split()), validate=True).decode("ascii")
        except (ValueError, UnicodeDecodeError):
            text = ""
    if "-----BEGIN " not in text:
        raise ConfigError(f"{name} holds neither PEM text (-----BEGIN PRIVATE KEY-----...) nor PEM text in base64; "
                          "put the key file's whole text in the CI secret (`checker evidence keygen` writes one)")
    return text


def _ledger(name: str, text: str) -> str | None:
    """A ledger URL or SQLite path, checked when opened (a URL may hold a password: never repeated here).
    Empty is unset, as GitHub passes a secret the run may not see."""
    return text if text.strip() else None


CACHE_KEY_MIN = 32  # characters: `openssl rand -hex 32` makes 64


def _cache_key(name: str, text: str) -> str | None:
    """The secret that signs the result cache's entries. Empty is unset (GitHub's value for a secret
    a run may not see). A short one could be guessed, and then anyone could sign entries that pass
    the gate; an error never repeats any of it, nor its length."""
    if not text.strip():
        return None
    if len(text.strip()) < CACHE_KEY_MIN:
        raise ConfigError(f"{name} is too short to sign the result cache: use at least {CACHE_KEY_MIN} random "
                          "characters, e.g. the output of `openssl rand -hex 32`, kept in a secret only the gating "
                          "job can read")
    return text.strip()


_SECONDS = _whole("seconds", 1, 7 * 24 * 3600)  # at most a week

# variable -> (Settings field, parser, what it is for): the single list of what the tool reads.
VARIABLES: Mapping[str, tuple[str, Callable[[str, str], Any], str]] = {
    "CHECKER_BASE": ("base", _reference, "the organisation's ruleset layer every scan builds on (as --base)"),
    "CHECKER_LEDGER": ("ledger", _ledger, "the ledger of gated changes: a SQLite file or a postgresql:// URL"),
    "CHECKER_SIGNING_KEY": ("signing_key", _secret_pem,
                            "the Ed25519 private key that signs evidence (PEM text or its base64; as --signing-key)"),
    "CHECKER_WARM": ("warm", _switch,
                     "1 hands scans to the warm server, 0 never; unset: only under pre-commit (PRE_COMMIT=1)"),
    "CHECKER_WARM_IDLE": ("warm_idle", _SECONDS, "seconds an idle warm server lives"),
    "CHECKER_CHECKOV_TIMEOUT": ("checkov_timeout", _SECONDS, "seconds one Checkov worker may run"),
    "CHECKER_CACHE_MB": ("cache_mb", _whole("MiB", 1, 1024 * 1024), "MiB the result cache may hold (512)"),
    "CHECKER_CACHE_KEY": ("cache_key", _cache_key,
                          "the secret that signs result cache entries; in CI no cache is used without it"),
    "CHECKER_WORKER_MEMORY_MB": ("worker_memory_mb", _whole("MiB", 64, 1024 * 1024),
                                 "MiB one Checkov worker may allocate beyond what it inherits"),
}


# What Checkov reads from the environment that can change what it finds (from Checkov 3.3's sources):
# names ending in "_" are prefixes. The result cache keys on these, and the warm server's identity.
CHECKOV_ENVIRONMENT = (
    "CHECKOV_", "CKV_", "BC_", "RENDER_", "ENABLE_", "CREATE_", "TF_", "RAW_TF_IN_GRAPH", "EVAL_TF_PLAN_AFTER_UNKNOWN",
    "HCL_PARSE_TIMEOUT_SEC", "MAX_WILDCARD_ARR_SIZE", "HELM_NAMESPACE", "EXTERNAL_MODULES_DIR",
    "LOCAL_SECRETS_POLICIES_JSON", "JAVA_FULL_DT", "RUN_SECRETS_MULTIPROCESS", "CUSTOM_ACCESS_OVERRIDES_FILE",
)


def checkov_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of `environ` that CHECKOV_ENVIRONMENT names, sorted by name."""
    return {name: value for name, value in sorted(environ.items())
            if any(name.startswith(entry) if entry.endswith("_") else name == entry for entry in CHECKOV_ENVIRONMENT)}


# What CI systems set in every job (most set CI; Azure Pipelines, Jenkins, CodeBuild and TeamCity do not).
CI_VARIABLES = ("CI", "TF_BUILD", "JENKINS_URL", "BUILD_ID", "CODEBUILD_BUILD_ID", "TEAMCITY_VERSION", "BUILDKITE",
                "GITHUB_ACTIONS", "GITLAB_CI")


def ci(environ: Mapping[str, str]) -> str | None:
    """The first CI_VARIABLES name `environ` sets (this is a CI job), else None."""
    return next((name for name in CI_VARIABLES if environ.get(name)), None)


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the environment asks of this run."""

    base: str | None = None
    ledger: str | None = dataclasses.field(default=None, repr=False)  # may hold a database password
    signing_key: str | None = dataclasses.field(default=None, repr=False)  # a secret: never in a repr or log
    warm: bool | None = None  # None: CHECKER_WARM unset, the warm server only under pre-commit
    warm_idle: int = 20 * 60
    checkov_timeout: int = 1800
    worker_memory_mb: int = 512
    cache_mb: int = 512
    cache_key: str | None = dataclasses.field(default=None, repr=False)  # a secret: never in a repr or log


def read(environ: Mapping[str, str]) -> Settings:
    """Settings from an environment; ConfigError for an unknown CHECKER_* name or a malformed value."""
    values: dict[str, Any] = {}
    for name, text in sorted(environ.items()):
        if not name.startswith("CHECKER_"):
            continue
        if name not in VARIABLES:
            known = ", ".join(VARIABLES)
            raise ConfigError(f"{name}: unknown variable (a typo?); checker reads {known}")
        field, parse, _ = VARIABLES[name]
        values[field] = parse(name, text)
    return Settings(**values)


@functools.lru_cache(maxsize=1)
def current() -> Settings:
    """This process's settings, read once (the warm server's children re-read their client's)."""
    return read(os.environ)
