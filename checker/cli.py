"""The command line: parse options -> run -> write outputs -> exit code. Errors are caught only here."""
from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import click

from checker import gate, scan, settings
from checker.errors import CheckerError
from checker.evidence import sealing as evidence
from checker.evidence.commands import evidence_group
from checker.ledger.commands import ledger_group
from checker.model import FAIL_ON_CHOICES, FailOn, Rule
from checker.output import printable, write_atomic
from checker.report.commands import report_group
from checker.reporters import Format
from checker.ruleset import Ruleset
from checker.warm_commands import warm_group

FAIL_ON = click.Choice(FAIL_ON_CHOICES)
OUTPUT = click.Path(dir_okay=False, writable=True)


class _Group(click.Group):
    """Turns CheckerErrors into their exit codes with a one-line message on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CheckerError as error:
            click.echo(f"checker: error: {printable(str(error))}", err=True)
            ctx.exit(error.exit_code)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as error:  # noqa: BLE001 - a bug must fail closed (3), never look like a gate verdict
            import traceback

            traceback.print_exc()
            click.echo(f"checker: internal error, the scan did not complete: {type(error).__name__}: "
                       f"{printable(str(error))}", err=True)
            ctx.exit(3)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="checker", prog_name="checker")
def main() -> None:
    """The paved-road compliance gate: Checkov plus the organisation's own checks, under a ruleset.

    \b
    Exit codes: 0 gate passed, 1 gate failed, 2 usage or configuration error,
    3 the scan could not check something (fail closed).

    \b
    Example:
      checker scan . --sarif-output results.sarif
    """
    settings.current.cache_clear()
    settings.current()  # every CHECKER_* variable, read once per invocation: a malformed one is exit 2


BASE_OPTION = click.option(
    "--base", "base_ref", metavar="NAME|FILE[@sha256:HEX]",
    help="The organisation's layer under every other: its locks bind the repository's ruleset; with a digest, "
         "any other content is refused. Default: $CHECKER_BASE.")
TRUST_OPTION = click.option(
    "--trust-repo-policies", is_flag=True,
    help="Load Python checks from folders the repository's own ruleset names (its code runs). Off: only "
         "bundled, plugin and --base checks load.")


def ruleset_options(func: Any) -> Any:
    """--ruleset, --base and --trust-repo-policies: every command that reads a ruleset takes them."""
    ruleset = click.option("-r", "--ruleset", "ruleset_ref", metavar="NAME|FILE",
                           help="A bundled ruleset by name or a ruleset file. Default: .checker.yaml of the scanned "
                                "folder if present, else org-baseline (or the --base alone).")
    return ruleset(BASE_OPTION(TRUST_OPTION(func)))


def cache_options(func: Any) -> Any:
    """--cache-dir and --no-cache: every command that scans takes them."""
    func = click.option("--no-cache", "no_cache", is_flag=True,
                        help="Compute every result; read and write no result cache.")(func)
    return click.option("--cache-dir", type=click.Path(file_okay=False), metavar="DIR",
                        help="Where the result cache lives. Default: $XDG_CACHE_HOME/checker, else "
                             "~/.cache/checker.")(func)


def _base(base_ref: str | None) -> str | None:
    return base_ref or settings.current().base


def evidence_options(func: Any) -> Any:
    """--evidence-output and what goes into the evidence: `scan` and `gate` take them."""
    for option in reversed((
        click.option("--evidence-output", type=OUTPUT,
                     help="Also write signed evidence of the decision here: JSON Lines of DSSE envelopes (the gate "
                          "decision and a SLSA VSA), bound to the commit and the SARIF."),
        click.option("--subject", "subjects", multiple=True, metavar="NAME=sha256:HEX",
                     help="Another artifact the decision is about, e.g. the image to deploy (repeatable)."),
        click.option("--environment", metavar="NAME", help="The environment this decision gates (recorded)."),
        click.option("--signing-key", type=click.Path(dir_okay=False),
                     help="The Ed25519 private key (PEM) that signs the evidence. Default: $CHECKER_SIGNING_KEY "
                          "(the PEM text); without either the evidence is unsigned."),
    )):
        func = option(func)
    return func


def distinct_files(files: dict[str, str | None]) -> None:
    """Refuse (exit 2, before any work) two outputs, or an output and the input, that are one file:
    only the last written would be left, and evidence would describe a file that is not there.
    Devices (/dev/null, /dev/stdout) may be shared."""
    seen: dict[str, str] = {}
    for option, path in files.items():
        if not path or (os.path.exists(path) and not os.path.isfile(path)):
            continue
        real = os.path.realpath(path)
        if real in seen:
            raise click.UsageError(f"{seen[real]} and {option} name the same file ({path}): give each its own")
        seen[real] = option


def output_options(func: Any) -> Any:
    """`--NAME-output FILE` for every Format, gathered into the command's `outputs` (Format -> FILE)."""
    by_option = {fmt.option: fmt for fmt in Format}

    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is not None:
            ctx.params.setdefault("outputs", {})[by_option[param.opts[0]]] = value

    for fmt in reversed(Format):
        func = click.option(fmt.option, type=OUTPUT, expose_value=False, callback=remember,
                            help=f"Also write FILE: {fmt.help}.")(func)
    return func


@main.command("scan")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@ruleset_options
@click.option("--format", "fmt", type=click.Choice([f.value for f in Format]), default="text", show_default=True,
              help="Format written to standard output.")
@output_options
@cache_options
@click.option("--fail-on", type=FAIL_ON, help="Override the ruleset's gate threshold.")
@click.option("--baseline", type=click.Path(exists=True, dir_okay=False),
              help="A previous SARIF: findings already in it do not fail the gate.")
@click.option("--change-base", metavar="REV",
              help="Where the change starts: tickets are read from the messages of REV..HEAD. Default: the base of "
                   "the pull/merge request the CI names, else HEAD alone.")
@evidence_options
def scan_command(paths: tuple[str, ...], ruleset_ref: str | None, base_ref: str | None, trust_repo_policies: bool,
                 fmt: str, fail_on: FailOn | None, baseline: str | None, change_base: str | None,
                 evidence_output: str | None, subjects: tuple[str, ...], environment: str | None,
                 signing_key: str | None, cache_dir: str | None, no_cache: bool,
                 outputs: dict[Format, str] | None = None) -> None:
    """Scan PATHS (folders or files; default: the current folder) and gate on the findings.

    \b
    Examples:
      checker scan                                  # the current repository
      checker scan infra/ k8s/deploy.yaml -r pci-dss
      checker scan . --format sarif > results.sarif
      checker scan . --sarif-output results.sarif --fail-on critical
      checker scan . --base org-gate@sha256:<digest>               # in CI: the organisation's layer
      checker scan . --sarif-output results.sarif --evidence-output gate.intoto.jsonl --environment prod
    """
    outputs = outputs or {}
    distinct_files({**{fmt.option: path for fmt, path in outputs.items()}, "--evidence-output": evidence_output})
    sarif_output = outputs.get(Format.SARIF)
    sealer = evidence.sealer(evidence_output, subjects, environment, signing_key, sarif_output, Format.SARIF.option)
    result = scan.run(scan.Options(paths=paths or (".",), ruleset=ruleset_ref, fail_on=fail_on, baseline=baseline,
                                   base=_base(base_ref), trust_repo_policies=trust_repo_policies,
                                   change_base=change_base, cache_dir=cache_dir, cache=not no_cache))
    written = {out_fmt: click.unstyle(out_fmt.renderer()(result)) for out_fmt in Format if out_fmt in outputs}
    for out_fmt, text in written.items():
        write_atomic(outputs[out_fmt], text)
    if sealer and sarif_output:
        sealer.seal_scan(result, sarif_output, written[Format.SARIF].encode("utf-8"))
    click.echo(next(f for f in Format if f.value == fmt).renderer()(result), nl=False)
    decision = result.decision
    if decision.exit_code == gate.INCOMPLETE:
        for problem in result.problems:
            click.echo(f"checker: could not check: {printable(str(problem))}", err=True)
    sys.exit(decision.exit_code)


@main.group("rules")
def rules_group() -> None:
    """List and explain the rules a ruleset selects."""


@rules_group.command("list")
@ruleset_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rules_list(ruleset_ref: str | None, base_ref: str | None, trust_repo_policies: bool, fmt: str) -> None:
    """Every rule the ruleset selects, with its severity, controls and whether it is active.

    \b
    Example:
      checker rules list -r org-baseline --format json
    """
    ruleset = scan.resolve_ruleset(ruleset_ref, Path.cwd(), _base(base_ref), trust_repo_policies)
    from checker.ruleset import select_rules

    rules = select_rules(ruleset, scan.catalogue(ruleset))
    if fmt == "json":
        click.echo(json.dumps([_rule_json(r) for r in rules.values()], indent=2))
        return
    for rule in rules.values():
        state = f"  (inactive: {rule.inactive_reason})" if rule.inactive_reason else ""
        controls = f"  [{', '.join(rule.controls)}]" if rule.controls else ""
        click.echo(printable(f"{rule.id:22} {rule.severity.value:8} {rule.engine:8} {rule.title}{controls}{state}"))
    click.echo(printable(f"{len(rules)} rule(s) selected by {ruleset.name} {ruleset.version}"))


@rules_group.command("explain")
@click.argument("rule_id")
@ruleset_options
def rules_explain(rule_id: str, ruleset_ref: str | None, base_ref: str | None, trust_repo_policies: bool) -> None:
    """Explain one rule: what it checks, why, how to fix it, and its controls.

    A Checkov check the organisation rates high or critical shows our fix with a corrected file per
    framework; every Checkov check, its page in Checkov's policy index for each framework.

    \b
    Examples:
      checker rules explain ORG-GHA-001
      checker rules explain CKV_AWS_20
    """
    ruleset = scan.resolve_ruleset(ruleset_ref, Path.cwd(), _base(base_ref), trust_repo_policies)
    rules = scan.catalogue(ruleset)
    if rule_id not in rules:
        raise click.UsageError(f"unknown rule id {rule_id!r}; `checker rules list` shows them")
    from checker.ruleset import select_rules

    selected = select_rules(ruleset, rules)
    rule = selected.get(rule_id, rules[rule_id])
    click.echo(f"{rule.id}: {rule.title}")
    click.echo(f"severity: {rule.severity.value}   engine: {rule.engine}   "
               f"selected by {ruleset.name}: {'yes' if rule_id in selected else 'no'}")
    if rule.inactive_reason:
        click.echo(f"inactive: {rule.inactive_reason}")
    if rule.controls:
        click.echo(f"controls: {', '.join(rule.controls)}")
    click.echo(f"\n{rule.help or rule.description}\n")
    if rule.rationale:
        click.echo(f"Why: {rule.rationale}\n")
    pages = [f"  {', '.join(kinds)}: {uri}" for kinds, uri in rule.pages()]  # a page per kind of file (Checkov's)
    if rule.remediation.endswith(":") and pages:  # a check without our fix: the remediation introduces its pages
        click.echo("How to fix:\n" + "\n".join([rule.remediation, *pages]))
        return
    if rule.remediation:
        click.echo(f"How to fix:\n{rule.remediation}\n")
    for example in rule.examples:  # each corrected file, indented as the remediations' own examples are
        click.echo(f"{example.heading()}\n{textwrap.indent(example.text.rstrip(), '    ')}\n")
    if pages:
        click.echo("More:\n" + "\n".join(pages))
    elif rule.help_uri:
        click.echo(f"More: {rule.help_uri}")


@main.group("ruleset")
def ruleset_group() -> None:
    """Validate and show rulesets."""


@ruleset_group.command("validate")
@click.argument("file", type=click.Path(path_type=str))
@BASE_OPTION
@TRUST_OPTION
def ruleset_validate(file: str, base_ref: str | None, trust_repo_policies: bool) -> None:
    """Validate a ruleset file: schema, extends chain, locks and every rule id it names (exit 0 or 2).

    \b
    Examples:
      checker ruleset validate .checker.yaml
      checker ruleset validate .checker.yaml --base org-gate
    """
    from checker.ruleset import load_ruleset, select_rules

    ruleset = load_ruleset(file, base=_base(base_ref), repository=scan.repository_top(Path(file).parent),
                           trust_repo_policies=trust_repo_policies)
    rules = select_rules(ruleset, scan.catalogue(ruleset))
    click.echo(printable(f"{file}: valid: {ruleset.name} {ruleset.version}, {len(rules)} rule(s) selected, "
                         f"digest sha256:{ruleset.digest}"))


@ruleset_group.command("show")
@click.argument("ref", metavar="NAME|FILE")
@BASE_OPTION
def ruleset_show(ref: str, base_ref: str | None) -> None:
    """Print the resolved ruleset (after `extends`) as YAML, with the layers it came from and what is locked.

    `digest` is what `--base NAME@sha256:HEX` pins.

    \b
    Example:
      checker ruleset show org-baseline
    """
    import yaml

    from checker.ruleset import load_ruleset

    ruleset = load_ruleset(ref, base=_base(base_ref), repository=scan.repository_top(Path.cwd()),
                           trust_repo_policies=True)  # shown, not run: no check is imported
    data = {"layers": [{"name": layer.name, "file": layer.path, "digest": f"sha256:{layer.digest}"}
                       for layer in ruleset.layers],
            "digest": f"sha256:{ruleset.digest}", **ruleset.as_dict(), "locked": _locked(ruleset),
            "origins": dict(ruleset.origins)}
    click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), nl=False)


def _locked(ruleset: Ruleset) -> dict[str, str]:
    """Each locked setting -> the lock that holds it (what a later layer may not loosen)."""
    out: dict[str, str] = {}
    for lock in ruleset.locks:
        for key, setting in (("fail_on", "gate.fail_on"), ("allow_inline", "gate.allow_inline"),
                             ("approvers", "waivers[].approved_by"), ("repo_policies", "checks.policy_paths"),
                             ("ignore", "ignore")):
            if getattr(lock, key) not in (None, True):
                out[setting] = lock.name(key)
        if lock.change:
            out["change"] = lock.name("change")
        for glob in lock.rules:
            out[f"rules {glob}"] = lock.name("rules")
        for glob in lock.organisation:
            out[f"organisation.{glob}"] = lock.name("organisation")
    return out


@main.command("gate")
@click.argument("sarif_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--fail-on", type=FAIL_ON, help="Override the threshold recorded in the SARIF.")
@click.option("--baseline", type=click.Path(exists=True, dir_okay=False),
              help="A previous SARIF: findings already in it do not fail the gate.")
@evidence_options
def gate_command(sarif_file: str, fail_on: FailOn | None, baseline: str | None, evidence_output: str | None,
                 subjects: tuple[str, ...], environment: str | None, signing_key: str | None) -> None:
    """Re-decide pass/fail from a SARIF file written by `checker scan` (scan in one CI stage, gate in another).

    \b
    Example:
      checker scan . --sarif-output results.sarif --fail-on never   # stage 1: evidence
      checker gate results.sarif --fail-on high                     # stage 2: decision
      checker gate results.sarif --evidence-output gate.intoto.jsonl --subject app=sha256:<image digest>
    """
    from checker import baseline as baselines

    distinct_files({"SARIF_FILE": sarif_file, "--evidence-output": evidence_output})
    distinct_files({"--baseline": baseline, "--evidence-output": evidence_output})
    sealer = evidence.sealer(evidence_output, subjects, environment, signing_key, sarif_file, "")
    data = baselines.read_bytes(sarif_file)
    recorded = baselines.results_of(sarif_file, data)
    findings = recorded.findings
    accepted = baselines.read_bytes(baseline) if baseline else None
    if baseline:
        findings, _ = baselines.apply(findings, baselines.fingerprints(baseline, accepted))
    decision = gate.decide(findings, recorded.problems, fail_on or recorded.fail_on)
    click.echo(f"gate {decision.verdict}: {decision.reason} (fail_on: {fail_on or recorded.fail_on})")
    if sealer:
        sealer.seal_gate(recorded, findings, decision, fail_on or recorded.fail_on, accepted, sarif_file, data)
    sys.exit(decision.exit_code)


@main.group("baseline")
def baseline_group() -> None:
    """Manage baselines: findings accepted as they are, which do not fail the gate again."""


@baseline_group.command("update")
@click.argument("baseline_file", type=click.Path(dir_okay=False))
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@ruleset_options
@cache_options
def baseline_update(baseline_file: str, paths: tuple[str, ...], ruleset_ref: str | None, base_ref: str | None,
                    trust_repo_policies: bool, cache_dir: str | None, no_cache: bool) -> None:
    """Scan PATHS and roll BASELINE_FILE forward to what is found now (new findings are accepted).

    \b
    Example:
      checker baseline update .checker-baseline.sarif .
    """
    previous = baseline_file if Path(baseline_file).is_file() else None
    result = scan.run(scan.Options(paths=paths or (".",), ruleset=ruleset_ref, baseline=previous,
                                   base=_base(base_ref), trust_repo_policies=trust_repo_policies,
                                   cache_dir=cache_dir, cache=not no_cache))
    if result.problems:
        for problem in result.problems:
            click.echo(f"checker: could not check: {printable(str(problem))}", err=True)
        raise CheckerError("the scan did not complete, so the baseline was not updated") from None
    write_atomic(baseline_file, Format.SARIF.renderer()(result))
    new = sum(f.baseline_state in ("new", "") for f in result.findings)
    click.echo(f"{baseline_file}: {len(result.findings)} finding(s) baselined: {new} new, "
               f"{len(result.findings) - new} unchanged, {len(result.fixed)} fixed since the last baseline")


def _rule_json(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id, "title": rule.title, "severity": rule.severity.value, "engine": rule.engine,
        "description": rule.description, "remediation": rule.remediation, "help_uri": rule.help_uri,
        "tags": list(rule.tags), "controls": list(rule.controls), "kinds": list(rule.kinds),
        "active": not rule.inactive_reason, "inactive_reason": rule.inactive_reason or None,
    }


@main.command("init")
@click.option("--path", "path", type=click.Path(file_okay=False, path_type=Path),
              help="The repository to set up. Default: the git repository of the current folder.")
@click.option("--force", is_flag=True, help="Replace an existing .checker.yaml.")
def init_command(path: Path | None, force: bool) -> None:
    """Set up a repository: a starter .checker.yaml, the pre-commit hooks, and the CI snippet.

    Never overwrites an existing .checker.yaml without --force (exit 2); adds the checker and
    checker-repo hooks to .pre-commit-config.yaml, keeping what is already there.

    \b
    Examples:
      checker init
      checker init --path services/payments --force
    """
    import importlib.metadata

    from checker import init

    target = path if path is not None else init.repository_root(Path.cwd())
    outcome = init.init(target, importlib.metadata.version("checker"), force=force)
    for action in outcome.actions:
        click.echo(action)
    click.echo("\nNext:")
    for hint in outcome.hints:
        click.echo(f"  {hint}")
    click.echo("\n" + init.ci_snippet(), nl=False)


main.add_command(evidence_group)
main.add_command(report_group)
main.add_command(ledger_group)
main.add_command(warm_group)
