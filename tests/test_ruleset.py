"""Rulesets: schema errors name file, line and key; extends resolves in order; selection is strict."""
from __future__ import annotations

import pytest
from testkit import ruleset_text

from checker.errors import ConfigError
from checker.ruleset import load_ruleset, select_rules
from checker.scan import catalogue


def error_of(path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_ruleset(str(path))
    return str(caught.value)


def test_malformed_yaml_names_the_line(write):
    path = write("r.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: x\n")
    assert error_of(path).endswith("r.yaml:4: not valid YAML: while parsing a flow mapping; "
                                   "did not find expected ',' or '}'")


def test_wrong_type_names_the_key(write):
    path = write("r.yaml", ruleset_text(["ORG-*"]) + "gate: {fail_on: sometimes}\n")
    expected = "r.yaml:5: gate.fail_on: 'sometimes' is not one of critical, high, medium, low, info, never"
    assert expected in error_of(path)


def test_duplicate_keys_are_refused(write):
    path = write("r.yaml", ruleset_text(["ORG-*"]) + "gate: {fail_on: high}\ngate: {fail_on: low}\n")
    assert "found duplicate key 'gate'" in error_of(path)


def test_waiver_needs_reason_approver_and_a_real_date(write):
    base = ruleset_text(["ORG-*"])
    path = write("r.yaml", base + "waivers:\n  - rule: ORG-K8S-001\n    reason: legacy\n    expires: 2027-01-01\n")
    assert "r.yaml:6: waivers[0]: 'approved_by' is required here" in error_of(path)
    path = write("r.yaml", base + "waivers:\n  - {rule: ORG-K8S-001, reason: x, approved_by: a@b.c, expires: soon}\n")
    assert "waivers[0].expires: 'soon' is not a date; write it as YYYY-MM-DD" in error_of(path)


def test_extends_layers_later_wins_and_cycles_are_named(write, tmp_path):
    write("base.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: base, version: '1'}\n"
          "extends: [org-baseline]\norganisation: {approved_registries: [a.example.com]}\ngate: {fail_on: low}\n")
    write("team.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: team, version: '2'}\n"
          "extends: [base.yaml]\norganisation: {approved_registries: [b.example.com]}\n")
    ruleset = load_ruleset(str(tmp_path / "team.yaml"))
    assert [layer.name for layer in ruleset.layers] == ["org-baseline", "base", "team"]
    assert ruleset.organisation["approved_registries"] == ["b.example.com"]
    assert ruleset.organisation["required_tags"]  # inherited from org-baseline
    assert ruleset.fail_on == "low"
    assert ruleset.origins["gate.fail_on"].endswith("base.yaml")
    write("a.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: a}\nextends: [b.yaml]\n")
    write("b.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: b}\nextends: [a.yaml]\n")
    assert "extends cycle:" in error_of(tmp_path / "a.yaml")
    write("c.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: c}\nextends: [missing-parent]\n")
    assert "c.yaml:4: extends: ruleset 'missing-parent' is neither a file nor a bundled ruleset" in error_of(
        tmp_path / "c.yaml")


def test_selection_applies_include_exclude_and_severity(write):
    path = write("r.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: r}\n"
                 "checks:\n  include: ['CKV_K8S_*', 'ORG-K8S-*']\n  exclude: [CKV_K8S_21]\n"
                 "  severity: {CKV_K8S_20: critical}\n")
    ruleset = load_ruleset(str(path))
    rules = select_rules(ruleset, catalogue(ruleset))
    assert "CKV_K8S_21" not in rules and "CKV_K8S_20" in rules and "ORG-K8S-001" in rules
    assert rules["CKV_K8S_20"].severity.value == "critical"
    assert not any(r.startswith("CKV_AWS") for r in rules)


def test_unknown_severity_override_id_names_its_line(write):
    path = write("r.yaml", ruleset_text(["ORG-*"]) + "checks_extra: 1\n")
    assert "unknown key" in error_of(path)
    path = write("r2.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: r}\n"
                 "checks:\n  severity:\n    CKV_K8S_2O: high\n")
    ruleset = load_ruleset(str(path))
    with pytest.raises(ConfigError, match=r"r2.yaml:6: checks.severity: 'CKV_K8S_2O' matches no known rule; "
                                          r"did you mean CKV_K8S_2"):
        select_rules(ruleset, catalogue(ruleset))


def test_digest_changes_with_content_not_with_formatting(write, tmp_path):
    a = write("a.yaml", ruleset_text(["ORG-*"]))
    b = write("b.yaml", ruleset_text(["ORG-*"]).replace("checks: {include: [\"ORG-*\"]}",
                                                        "checks:\n  include:\n    - ORG-*"))
    c = write("c.yaml", ruleset_text(["ORG-K8S-*"]))
    assert load_ruleset(str(a)).digest == load_ruleset(str(b)).digest != load_ruleset(str(c)).digest


def test_ruleset_show_prints_the_resolved_settings_and_where_each_came_from(cli, write, tmp_path):
    import yaml

    write("team.yaml", "apiVersion: checker/v1\nkind: Ruleset\nmetadata: {name: team, version: '2'}\n"
          "extends: [org-baseline]\ngate: {fail_on: medium}\n")
    result = cli("ruleset", "show", str(tmp_path / "team.yaml"))
    assert result.exit_code == 0
    shown = yaml.safe_load(result.output)
    assert [layer["name"] for layer in shown["layers"]] == ["org-baseline", "team"]
    assert shown["gate"]["fail_on"] == "medium"
    assert shown["origins"]["gate.fail_on"].endswith("team.yaml")
    assert shown["origins"]["organisation.approved_registries"] == "bundled:org-baseline"
    assert shown["digest"].startswith("sha256:")


def test_a_pattern_that_does_not_compile_is_named_where_it_is_written(write):
    """A lone backslash is no gitignore pattern: refused with the file, line and key at load, never a crash
    half-way through a scan."""
    base = ruleset_text(["ORG-*"])
    path = write("r.yaml", base + "ignore:\n  - build/\n  - '\\'\n")
    assert "r.yaml:7: ignore[1]: '\\\\' is not a valid gitignore-style pattern" in error_of(path)
    path = write("r.yaml", base + "waivers:\n  - {rule: ORG-K8S-001, reason: x, approved_by: a@b.c, "
                                  "expires: '2999-01-01', paths: ['ok/**', 'bad\\']}\n")
    assert "r.yaml:6: waivers[0].paths[1]: 'bad\\\\' is not a valid gitignore-style pattern" in error_of(path)
