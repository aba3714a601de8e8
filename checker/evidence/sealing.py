"""Writing evidence for `checker scan` and `checker gate`: options checked and the key loaded
before any work is done, the predicate built and sealed after the decision.

A bad key or `--subject` is a usage error at once, never after a ten-minute scan; the key's
text never appears in a message. Cryptography is imported only when evidence is written.
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from checker import settings
from checker.errors import ConfigError
from checker.evidence import record
from checker.output import write_atomic

if TYPE_CHECKING:
    from checker.baseline import Recorded
    from checker.gate import Decision
    from checker.model import FailOn, Finding, ScanResult



@dataclasses.dataclass(frozen=True)
class Sealer:
    """Where evidence goes and what it carries besides the decision."""

    path: str
    subjects: tuple[Any, ...]  # checker.evidence.statements.Subject
    environment: str | None
    key: Any  # an Ed25519PrivateKey, or None: unsigned

    def seal_scan(self, result: ScanResult, sarif_path: str, sarif_bytes: bytes) -> None:
        """Evidence of a scan's decision, bound to the exact bytes of the SARIF it has just written."""
        from checker.reporters import sarif

        gated = record.Gated(result.findings, result.problems, result.decision, result.fail_on,
                             sarif.run_properties(result), result.started, result.finished,
                             prefix=sarif.repo_prefix(result))
        self._write(gated, sarif_path, sarif_bytes)

    def seal_gate(self, recorded: Recorded, findings: Sequence[Finding], decision: Decision, fail_on: FailOn,
                  baseline_bytes: bytes | None, sarif_path: str, data: bytes) -> None:
        """Evidence of `checker gate`'s decision on a SARIF file (its exact bytes), marked as decided
        from a SARIF: what it records about the scan is what that file claims."""
        wrong = record.check_shape(recorded.properties)
        if wrong:
            raise ConfigError(f"{sarif_path}: {wrong}, so it is not a SARIF log as `checker scan` writes it; seal "
                              "the SARIF `checker scan --sarif-output` wrote")
        digest = hashlib.sha256(baseline_bytes).hexdigest() if baseline_bytes is not None else ""
        gated = record.Gated(findings, recorded.problems, decision, fail_on, recorded.properties,
                             recorded.started, recorded.finished, baseline_digest=digest, decided_from="sarif")
        self._write(gated, sarif_path, data)

    def _write(self, gated: record.Gated, sarif_path: str, data: bytes) -> None:
        from checker.evidence import statements

        predicate = record.predicate(gated, Path(sarif_path).name, data, self.environment)
        try:
            sealed = statements.seal(predicate, self.subjects, self.key)
        except ValueError as error:  # a SARIF edited by hand can record what no decision holds
            raise ConfigError(f"{sarif_path}: its record cannot be sealed as evidence ({error}); seal the SARIF "
                              "`checker scan --sarif-output` wrote") from None
        write_atomic(self.path, sealed)
        if self.key is None:
            click.echo(f"checker: {self.path}: the evidence is unsigned (no --signing-key or CHECKER_SIGNING_KEY); "
                       "`checker evidence verify` will not accept it", err=True)


def sealer(path: str | None, subjects: Sequence[str], environment: str | None, signing_key: str | None,
           sarif: str | None, sarif_option: str) -> Sealer | None:
    """The evidence to write, checked before the scan; None when no evidence is asked for."""
    if not path:
        extra = [name for name, given in (("--subject", subjects), ("--environment", environment),
                                          ("--signing-key", signing_key)) if given]
        if extra:
            raise click.UsageError(f"{', '.join(extra)} describe(s) evidence: add --evidence-output FILE")
        return None
    if not sarif:
        raise click.UsageError(f"--evidence-output binds the evidence to the SARIF it describes: add "
                               f"{sarif_option} results.sarif")
    from checker.evidence import statements

    parsed = tuple(statements.parse_subject(text) for text in subjects)
    return Sealer(path, parsed, environment, _signing_key(signing_key))


def _signing_key(path: str | None) -> Any:
    """The private key from --signing-key FILE, else CHECKER_SIGNING_KEY, else None (unsigned)."""
    pem = settings.current().signing_key
    if path is None and pem is None:
        return None
    from checker.evidence import keys

    if path is not None:
        return keys.read_private_key(path)
    return keys.private_key(pem or "", "CHECKER_SIGNING_KEY")
