"""`checker report changes`: real signed evidence, appended to a real SQLite ledger through the real CLI,
reported in every format (text, Markdown and CSV checked exactly), and the HTML rendered in a real
headless Chromium (tests/chromium.py installs it when missing and apt is available; CI must run it).

The fixed ledger: five changes appended with `checker ledger append`; their appended_at times are
the ledger's clock, so the exact-output tests read the rows back and pin those times
(dataclasses.replace) before building the report: everything else is what the ledger holds.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime
import hashlib
import io
import json
import re
import sqlite3
import struct
from pathlib import Path

import pytest
from ledger_kit import key_id, keypair, predicate, seal, write_evidence

from checker.ledger.open import open_store
from checker.report import changes, render
from checker.ruleset import BUNDLED_DIR

DAY = "2030-06-01"
NOW = datetime.datetime(2030, 6, 3, 9, 0, tzinfo=datetime.timezone.utc)
PAY = "https://github.com/example/payments"
SHOP = "https://gitlab.example.com/shop/web"
ATTACK = "<script>alert(1)</script><img src=x onerror=alert(document.domain)>"
COMMITS = [hashlib.sha1(str(n).encode()).hexdigest() for n in range(6)]
PINNED = ["2030-06-01T08:00:00.000001Z", "2030-06-01T09:30:00.000000Z", "2030-06-01T11:15:00.500000Z",
          "2030-06-01T23:59:59.999999Z", "2030-06-02T00:00:00.000000Z"]


def bundled_digest(name: str) -> str:
    return "sha256:" + hashlib.sha256((BUNDLED_DIR / f"{name}.yaml").read_bytes()).hexdigest()


ORG_GATE = {"name": "org-gate", "digest": bundled_digest("org-gate")}


def append(cli, ledger: Path, evidence: Path, key: Path | None = None) -> None:
    args = ["ledger", "append", str(evidence), "--ledger", str(ledger)] + (["--key", str(key)] if key else [])
    result = cli(*args)
    assert result.exit_code == 0, result.output


def report(cli, ledger: Path, *args: str):
    return cli("report", "changes", "--ledger", str(ledger), *args)


@pytest.fixture
def keys(tmp_path):
    return keypair(tmp_path)


@pytest.fixture
def ledger(tmp_path, cli, keys):
    """Five changes through `checker ledger append`: see the module docstring and each comment."""
    private, public = keys
    ledger = tmp_path / "ledger.sqlite"
    made = tmp_path / "evidence"
    # 1: PASSED in production, signed and verified at append, approved base, ticket, a long waiver.
    append(cli, ledger, write_evidence(made / "1.jsonl", private, decision="PASSED", environment="production",
                                       commit=COMMITS[1], base=ORG_GATE, tickets=["PAY-1"], actor="alice"), public)
    # 2: FAILED in production, verified; a waiver expiring 5 days after the report's day; a PR title full of HTML.
    append(cli, ledger, write_evidence(made / "2.jsonl", private, decision="FAILED", environment="production",
                                       commit=COMMITS[2], base=ORG_GATE, tickets=["PAY-2"], actor="bob",
                                       waivers=[{"expires": "2030-06-06", "approvedBy": "cso@example.com"}],
                                       pr_title=ATTACK), public)
    # 3: INCOMPLETE in staging, unsigned, no ticket, a dirty tree, no CI, another repository, no base.
    append(cli, ledger, write_evidence(made / "3.jsonl", None, decision="INCOMPLETE", environment="staging",
                                       commit=COMMITS[3], repository=SHOP, tickets=[], dirty=True, ci={},
                                       waivers=[]))
    # 4: PASSED in production, signed but appended without --key (never checked); its waiver expired.
    append(cli, ledger, write_evidence(made / "4.jsonl", private, decision="PASSED", environment="production",
                                       commit=COMMITS[4], base=ORG_GATE, tickets=["PAY-4"], actor="carol",
                                       waivers=[{"rule": "CKV_K8S_8", "expires": "2030-05-31",
                                                 "approvedBy": "lead@example.com", "ticket": ""}]))
    # 5: recorded the next day (pinned): outside the period of the exact tests.
    append(cli, ledger, write_evidence(made / "5.jsonl", private, decision="PASSED", environment="production",
                                       commit=COMMITS[5], base=ORG_GATE, tickets=["PAY-5"]), public)
    return ledger


def pinned_rows(ledger: Path) -> list:
    store = open_store(str(ledger))
    try:
        return [dataclasses.replace(row, appended_at=PINNED[row.seq - 1]) for row in store.rows()]
    finally:
        store.close()


def fixed_report(ledger: Path, **options) -> changes.ChangeReport:
    options.setdefault("approved", (f"org-gate@{ORG_GATE['digest']}",))
    return changes.build(pinned_rows(ledger), changes.period(DAY, DAY, NOW), **options)


# --- exact output ---------------------------------------------------------------------------------------------------

def test_text_exactly(ledger, keys):
    kid = key_id(keys[1])
    org = ORG_GATE["digest"]
    ruleset = f"payments@2.3.0 {_ruleset_digest()}"
    expected = f"""\
Change report: 2030-06-01T00:00:00Z to 2030-06-02T00:00:00Z (recorded in the ledger), all environments and repositories
4 change(s): 2 passed, 1 failed, 1 incomplete; 9 exception(s) in 3 change(s)
Signatures: as recorded when appended (no --key given)
Approved rulesets: org-gate@{org}
Note: signatures as recorded when each entry was appended (no --key given): `checker ledger verify` is what vouches that no row was edited since

Exceptions (9)
  gate FAILED: #2 2030-06-01T09:30:00Z {PAY} (production) {COMMITS[2][:12]}: 1 open finding(s) at or above high
  gate INCOMPLETE: #3 2030-06-01T11:15:00Z {SHOP} (staging) {COMMITS[3][:12]}: 1 thing(s) could not be checked, so the gate fails closed
  evidence unsigned: #3 2030-06-01T11:15:00Z {SHOP} (staging) {COMMITS[3][:12]}: the evidence carries no signature (was a signing key given to the scan?)
  evidence not verified: #4 2030-06-01T23:59:59Z {PAY} (production) {COMMITS[4][:12]}: signed by {kid}, never verified: appended without --key, and no --key given to the report
  ruleset not approved: #3 2030-06-01T11:15:00Z {SHOP} (staging) {COMMITS[3][:12]}: payments@2.3.0 ({_ruleset_digest()}) is not in the approved list
  uncommitted changes: #3 2030-06-01T11:15:00Z {SHOP} (staging) {COMMITS[3][:12]}: scanned a working tree with uncommitted changes: not evidence for the commit
  no ticket: #3 2030-06-01T11:15:00Z {SHOP} (staging) {COMMITS[3][:12]}: no ticket found in the commits, branch or pull request (the ruleset requires one: ORG-CHANGE-001)
  waiver expired: #4 2030-06-01T23:59:59Z {PAY} (production) {COMMITS[4][:12]}: waiver for CKV_K8S_8 approved by lead@example.com expired on 2030-05-31 (1 day(s) before 2030-06-01)
  waiver expiring: #2 2030-06-01T09:30:00Z {PAY} (production) {COMMITS[2][:12]}: waiver for CKV_AWS_18 approved by cso@example.com expires on 2030-06-06, in 5 day(s)

Changes (4)
  #1 2030-06-01T08:00:00Z PASSED {PAY} (production)
     commit {COMMITS[1]}, branch feature/PAY-42, tickets PAY-1, actor alice, PR #7 PAY-42 rotate keys
     ruleset {ruleset} (base org-gate@{org})
     open findings: critical 0, high 0, medium 2, low 0, info 1
     waiver CKV_AWS_18 approved by security@example.com, expires 2031-03-31, ticket SEC-1234 (1 finding(s))
     evidence: verified (at append, key {kid})
  #2 2030-06-01T09:30:00Z FAILED {PAY} (production)
     commit {COMMITS[2]}, branch feature/PAY-42, tickets PAY-2, actor bob, PR #7 {ATTACK}
     ruleset {ruleset} (base org-gate@{org})
     open findings: critical 0, high 1, medium 2, low 0, info 1
     waiver CKV_AWS_18 approved by cso@example.com, expires 2030-06-06, ticket SEC-1234 (1 finding(s))
     evidence: verified (at append, key {kid})
  #3 2030-06-01T11:15:00Z INCOMPLETE {SHOP} (staging)
     commit {COMMITS[3]} (uncommitted changes), branch feature/PAY-42, tickets (none), actor (not recorded)
     ruleset {ruleset}
     open findings: critical 0, high 0, medium 2, low 0, info 1
     evidence: unsigned (the evidence carries no signature (was a signing key given to the scan?))
  #4 2030-06-01T23:59:59Z PASSED {PAY} (production)
     commit {COMMITS[4]}, branch feature/PAY-42, tickets PAY-4, actor carol, PR #7 PAY-42 rotate keys
     ruleset {ruleset} (base org-gate@{org})
     open findings: critical 0, high 0, medium 2, low 0, info 1
     waiver CKV_K8S_8 approved by lead@example.com, expires 2030-05-31 (1 finding(s))
     evidence: not checked (signed by {kid}, never verified: appended without --key, and no --key given to the report)

Controls
  No compliance framework in the changes' resolved ruleset layers.
  Not resolved: layer payments (.checker.yaml, {_ruleset_digest()}) of 4 change(s): a file of the repository: not in the ledger, so any controls it defines are not shown
"""
    assert render.text(fixed_report(ledger)) == expected


def test_markdown_exactly(ledger, keys):
    kid = key_id(keys[1])
    org = ORG_GATE["digest"]
    rd = _ruleset_digest()
    c = [f"`{commit[:12]}`" for commit in COMMITS]
    pay = "https://github.com/example/payments"
    shop = "https://gitlab.example.com/shop/web"
    escaped_attack = ("&lt;script&gt;alert\\(1\\)&lt;/script&gt;&lt;img src=x onerror=alert\\(document.domain\\)"
                      "&gt;")
    ruleset = f"payments@2.3.0 `{rd}`"
    base = f" (base org-gate@{org})"
    waiver = "CKV\\_AWS\\_18 approved by security@example.com, expires 2031-03-31, ticket SEC-1234 \\(1 finding\\(s\\)\\)"
    expected = f"""\
# Change report

**Period:** 2030-06-01T00:00:00Z to 2030-06-02T00:00:00Z (recorded in the ledger); all environments and repositories  
**Signatures:** as recorded when appended \\(no --key given\\)  
**Approved rulesets:** org-gate@{org}

| Changes | Passed | Failed | Incomplete | Exceptions |
|---:|---:|---:|---:|---:|
| 4 | 2 | 1 | 1 | 9 |

> signatures as recorded when each entry was appended \\(no --key given\\): \\`checker ledger verify\\` is what vouches that no row was edited since

## Exceptions (9)

| Exception | Entry | Recorded | Repository | Environment | Commit | Detail |
|---|---:|---|---|---|---|---|
| **gate FAILED** | 2 | 2030-06-01T09:30:00Z | {pay} | production | {c[2]} | 1 open finding\\(s\\) at or above high |
| **gate INCOMPLETE** | 3 | 2030-06-01T11:15:00Z | {shop} | staging | {c[3]} | 1 thing\\(s\\) could not be checked, so the gate fails closed |
| **evidence unsigned** | 3 | 2030-06-01T11:15:00Z | {shop} | staging | {c[3]} | the evidence carries no signature \\(was a signing key given to the scan?\\) |
| **evidence not verified** | 4 | 2030-06-01T23:59:59Z | {pay} | production | {c[4]} | signed by {kid}, never verified: appended without --key, and no --key given to the report |
| **ruleset not approved** | 3 | 2030-06-01T11:15:00Z | {shop} | staging | {c[3]} | payments@2.3.0 \\({rd}\\) is not in the approved list |
| **uncommitted changes** | 3 | 2030-06-01T11:15:00Z | {shop} | staging | {c[3]} | scanned a working tree with uncommitted changes: not evidence for the commit |
| **no ticket** | 3 | 2030-06-01T11:15:00Z | {shop} | staging | {c[3]} | no ticket found in the commits, branch or pull request \\(the ruleset requires one: ORG-CHANGE-001\\) |
| **waiver expired** | 4 | 2030-06-01T23:59:59Z | {pay} | production | {c[4]} | waiver for CKV\\_K8S\\_8 approved by lead@example.com expired on 2030-05-31 \\(1 day\\(s\\) before 2030-06-01\\) |
| **waiver expiring** | 2 | 2030-06-01T09:30:00Z | {pay} | production | {c[2]} | waiver for CKV\\_AWS\\_18 approved by cso@example.com expires on 2030-06-06, in 5 day\\(s\\) |

## Changes (4)

| Entry | Recorded | Repository | Environment | Commit | Tickets | Actor / pull request | Ruleset | Decision | Open C/H/M/L/I | Waivers | Evidence |
|---:|---|---|---|---|---|---|---|---|---|---|---|
| 1 | 2030-06-01T08:00:00Z | {pay} | production | {c[1]} | PAY-1 | alice<br>\\#7 PAY-42 rotate keys | {ruleset}{base} | **PASSED** | 0/0/2/0/1 | {waiver} | verified \\(at append, key {kid}\\) |
| 2 | 2030-06-01T09:30:00Z | {pay} | production | {c[2]} | PAY-2 | bob<br>\\#7 {escaped_attack} | {ruleset}{base} | **FAILED** | 0/1/2/0/1 | {waiver.replace("security@", "cso@").replace("2031-03-31", "2030-06-06")} | verified \\(at append, key {kid}\\) |
| 3 | 2030-06-01T11:15:00Z | {shop} | staging | {c[3]} (uncommitted changes) |  |  | {ruleset} | **INCOMPLETE** | 0/0/2/0/1 |  | unsigned \\(the evidence carries no signature \\(was a signing key given to the scan?\\)\\) |
| 4 | 2030-06-01T23:59:59Z | {pay} | production | {c[4]} | PAY-4 | carol<br>\\#7 PAY-42 rotate keys | {ruleset}{base} | **PASSED** | 0/0/2/0/1 | CKV\\_K8S\\_8 approved by lead@example.com, expires 2030-05-31 \\(1 finding\\(s\\)\\) | not checked \\(signed by {kid}, never verified: appended without --key, and no --key given to the report\\) |

## Controls

No compliance framework in the changes' resolved ruleset layers.

**Not resolved** (any framework these layers name is not shown):

- layer payments (.checker.yaml, `{rd}`) of 4 change(s): a file of the repository: not in the ledger, so any controls it defines are not shown
"""
    text = render.markdown(fixed_report(ledger))
    assert text == expected
    assert "<script" not in text and "<img" not in text  # GitHub renders HTML in a job summary: not this


def test_csv_exactly(ledger, keys):
    kid = key_id(keys[1])
    org = ORG_GATE["digest"]
    rd = _ruleset_digest()
    decided = "2030-06-01T10:00:42Z"
    waiver = "CKV_AWS_18 approved by security@example.com, expires 2031-03-31, ticket SEC-1234 (1 finding(s))"
    expected = (
        "entry,recorded,decided,repository,environment,commit,branch,dirty,tickets,actor,pull_request,ruleset,"
        "ruleset_digest,base,decision,critical,high,medium,low,info,waivers,evidence,evidence_detail,exceptions\n"
        f"1,2030-06-01T08:00:00.000001Z,{decided},{PAY},production,{COMMITS[1]},feature/PAY-42,false,PAY-1,alice,"
        f"#7 PAY-42 rotate keys,payments@2.3.0,{rd},org-gate@{org},PASSED,0,0,2,0,1,\"{waiver}\",verified,"
        f"\"at append, key {kid}\",\n"
        f"2,2030-06-01T09:30:00.000000Z,{decided},{PAY},production,{COMMITS[2]},feature/PAY-42,false,PAY-2,bob,"
        f"#7 {ATTACK},payments@2.3.0,{rd},org-gate@{org},FAILED,0,1,2,0,1,"
        f"\"{waiver.replace('security@', 'cso@').replace('2031-03-31', '2030-06-06')}\",verified,"
        f"\"at append, key {kid}\",failed waiver-expiring\n"
        f"3,2030-06-01T11:15:00.500000Z,{decided},{SHOP},staging,{COMMITS[3]},feature/PAY-42,true,,,,"
        f"payments@2.3.0,{rd},,INCOMPLETE,0,0,2,0,1,,unsigned,"
        "the evidence carries no signature (was a signing key given to the scan?),"
        "incomplete unsigned unapproved-ruleset dirty no-ticket\n"
        f"4,2030-06-01T23:59:59.999999Z,{decided},{PAY},production,{COMMITS[4]},feature/PAY-42,false,PAY-4,carol,"
        f"#7 PAY-42 rotate keys,payments@2.3.0,{rd},org-gate@{org},PASSED,0,0,2,0,1,"
        "\"CKV_K8S_8 approved by lead@example.com, expires 2030-05-31 (1 finding(s))\",not checked,"
        f"\"signed by {kid}, never verified: appended without --key, and no --key given to the report\","
        "unverified waiver-expired\n")
    text = render.csv_text(fixed_report(ledger))
    assert text == expected
    assert len(text.splitlines()) == 5  # a header and one line per change


def test_json_holds_everything_the_text_shows(ledger, keys):
    data = json.loads(render.json_text(fixed_report(ledger)))
    assert data["period"] == {"since": "2030-06-01T00:00:00.000000Z", "until": "2030-06-02T00:00:00.000000Z",
                              "asOf": "2030-06-01"}
    assert data["summary"] == {"changes": 4, "passed": 2, "failed": 1, "incomplete": 1, "exceptions": 9,
                               "changes_with_exceptions": 3, "has_exceptions": True}
    assert [(e["kind"], e["seq"]) for e in data["exceptions"]] == [
        ("failed", 2), ("incomplete", 3), ("unsigned", 3), ("unverified", 4), ("unapproved-ruleset", 3),
        ("dirty", 3), ("no-ticket", 3), ("waiver-expired", 4), ("waiver-expiring", 2)]
    second = data["changes"][1]
    assert second["pull_request"] == f"#7 {ATTACK}"
    assert second["waivers"] == [{"rule": "CKV_AWS_18", "approved_by": "cso@example.com", "expires": "2030-06-06",
                                  "ticket": "SEC-1234", "reason": "log bucket of the log bucket", "findings": 1,
                                  "source": "bundled:org-gate"}]
    assert second["blocking"] == [{"rule": "ORG-K8S-001", "severity": "high", "file": "k8s/web.yaml", "line": 10}]
    assert second["open"] == {"critical": 0, "high": 1, "medium": 2, "low": 0, "info": 1}
    assert data["keys"] == [] and data["approved"] == [f"org-gate@{ORG_GATE['digest']}"]
    assert render.json_text(fixed_report(ledger)).isascii()


def _ruleset_digest() -> str:
    from ledger_kit import RULESET_DIGEST

    return RULESET_DIGEST


# --- the command: filters, keys, exit codes -------------------------------------------------------------------------

def test_the_command_reports_the_real_ledger_with_filters(cli, ledger):
    everything = json.loads(report(cli, ledger, "--format", "json").output)
    assert [c["seq"] for c in everything["changes"]] == [1, 2, 3, 4, 5]
    production = json.loads(report(cli, ledger, "--format", "json", "--environment", "production").output)
    assert [c["seq"] for c in production["changes"]] == [1, 2, 4, 5]
    shop = json.loads(report(cli, ledger, "--format", "json", "--repository", SHOP + ".git/").output)
    assert [c["seq"] for c in shop["changes"]] == [3]
    assert shop["repository"] == SHOP + ".git/"
    # the appends happened just now: today holds them all, yesterday none, a time after the last none
    assert len(json.loads(report(cli, ledger, "--format", "json", "--since", "today").output)["changes"]) == 5
    before = json.loads(report(cli, ledger, "--format", "json", "--until", "yesterday").output)
    assert before["changes"] == [] and before["summary"]["changes"] == 0
    later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).isoformat()
    assert json.loads(report(cli, ledger, "--format", "json", "--since", later,
                             "--until", "2999-01-01").output)["changes"] == []


def test_period_filter_is_half_open_on_the_ledger_time(ledger):
    rows = pinned_rows(ledger)
    day = changes.build(rows, changes.period(DAY, DAY, NOW))
    assert [c.seq for c in day.changes] == [1, 2, 3, 4]  # 23:59:59.999999 in, the next midnight out
    exact = changes.build(rows, changes.period("2030-06-01T09:30:00Z", "2030-06-01T23:59:59.999999Z", NOW))
    assert [c.seq for c in exact.changes] == [2, 3]  # since inclusive, an RFC 3339 until exclusive
    offset = changes.build(rows, changes.period("2030-06-01T11:30:00+02:00", None, NOW))
    assert [c.seq for c in offset.changes] == [2, 3, 4, 5]
    nothing = changes.build(rows, changes.period("2030-06-03", None, NOW))
    assert nothing.changes == () and not nothing.has_exceptions


def test_dates_today_and_yesterday_are_utc_days():
    now = datetime.datetime(2030, 6, 3, 0, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))  # 06-02 22:30Z
    when = changes.period("yesterday", "today", now)
    assert (when.since, when.until, when.as_of) == ("2030-06-01T00:00:00.000000Z", "2030-06-03T00:00:00.000000Z",
                                                    datetime.date(2030, 6, 2))
    assert changes.period("yesterday", None, now).until == "2030-06-02T22:30:00.000000Z"


@pytest.mark.parametrize("args", [("--since", "2030-13-01"), ("--since", "tomorrow"), ("--until", "2030-06-31"),
                                  ("--since", "2030-06-01T10:00:00"), ("--since", "01/06/2030"), ("--until", ""),
                                  ("--since", "2030-06-02", "--until", "2030-06-01")])
def test_a_date_that_does_not_parse_is_exit_2(cli, ledger, args):
    result = report(cli, ledger, *args)
    assert result.exit_code == 2, result.output
    assert "not a date" in result.output or "not before" in result.output


def test_bad_arguments_are_exit_2(cli, ledger, tmp_path):
    assert report(cli, ledger, "--approved-ruleset", "org-gate").exit_code == 2
    assert cli("report", "changes", "--ledger", "mysql://x/y").exit_code == 2
    assert cli("report", "changes", "--ledger", str(tmp_path / "missing.sqlite")).exit_code == 2
    (tmp_path / "not-a-ledger.sqlite").write_text("hello")
    assert cli("report", "changes", "--ledger", str(tmp_path / "not-a-ledger.sqlite")).exit_code == 2


def test_fail_on_exceptions_exits_1_only_when_there_are_some(cli, ledger, tmp_path, keys):
    failing = report(cli, ledger, "--fail-on-exceptions", "--format", "json")
    assert failing.exit_code == 1
    assert json.loads(failing.stdout)["summary"]["exceptions"] > 0
    assert report(cli, ledger, "--format", "json").exit_code == 0
    clean = tmp_path / "clean.sqlite"
    append(cli, clean, write_evidence(tmp_path / "ok.jsonl", keys[0], decision="PASSED", base=ORG_GATE), keys[1])
    result = report(cli, clean, "--fail-on-exceptions", "--approved-ruleset", f"org-gate@{ORG_GATE['digest']}",
                    "--key", str(keys[1]))
    assert result.exit_code == 0, result.output
    assert "Exceptions: none" in result.stdout


def test_with_keys_every_entry_is_verified_again(cli, ledger, keys, tmp_path):
    data = json.loads(report(cli, ledger, "--format", "json", "--key", str(keys[1])).stdout)
    verdicts = {c["seq"]: (c["verified"], c["verified_detail"]) for c in data["changes"]}
    kid = key_id(keys[1])
    assert verdicts[4] == ("verified", f"key {kid}")  # appended without --key, verified now
    assert verdicts[3][0] == "unsigned"
    assert data["keys"] == [kid]
    _, other = keypair(tmp_path, "other.key")
    data = json.loads(report(cli, ledger, "--format", "json", "--key", str(other)).stdout)
    assert {c["verified"] for c in data["changes"] if c["seq"] != 3} == {"not verified"}
    assert "unknown key" in data["changes"][0]["verified_detail"]


def test_an_edited_row_is_an_exception_when_keys_are_given(cli, ledger, keys):
    with sqlite3.connect(ledger) as db:  # as the file's owner could: switch off the append-only trigger first
        db.execute("DROP TRIGGER entries_append_only_update")
        text = db.execute("SELECT predicate FROM entries WHERE seq = 2").fetchone()[0]
        db.execute("UPDATE entries SET predicate = ? WHERE seq = 2",
                   (text.replace('"decision":"FAILED"', '"decision":"PASSED"'),))
    db.close()
    data = json.loads(report(cli, ledger, "--format", "json", "--key", str(keys[1])).stdout)
    second = data["changes"][1]
    assert second["decision"] == "FAILED"  # built from the signed evidence, not the edited column
    assert second["verified"] == "not verified" and "row was edited" in second["verified_detail"]


# --- controls -------------------------------------------------------------------------------------------------------

def test_controls_come_from_bundled_layers_whose_digest_matches(tmp_path, cli, keys):
    ledger = tmp_path / "pci.sqlite"
    pci = {"name": "pci-dss-4.0", "digest": bundled_digest("pci-dss-4.0")}
    blocking = [{"rule": "CKV_K8S_20", "severity": "high", "file": "k8s/a.yaml", "line": 3, "fingerprint": "f1"},
                {"rule": "ORG-CHANGE-001", "severity": "high", "file": ".checker.yaml", "line": 1, "fingerprint": "f2"}]
    append(cli, ledger, write_evidence(tmp_path / "a.jsonl", keys[0], decision="FAILED", base=pci,
                                       blocking=blocking), keys[1])
    append(cli, ledger, write_evidence(tmp_path / "b.jsonl", keys[0], decision="PASSED", base=pci), keys[1])
    stale = {"name": "cis-kubernetes", "digest": "sha256:" + "ab" * 32}
    append(cli, ledger, write_evidence(tmp_path / "c.jsonl", keys[0], decision="PASSED", base=stale), keys[1])
    data = json.loads(report(cli, ledger, "--format", "json").stdout)
    [framework] = data["frameworks"]
    assert framework["name"] == "PCI-DSS-4.0" and framework["sources"] == ["bundled:pci-dss-4.0"]
    assert framework["changes"] == 2
    by_id = {c["control"]: c for c in framework["controls"]}
    assert by_id["2.2.6"]["blocking"] == 1 and by_id["2.2.6"]["failed_changes"] == 1  # CKV_K8S_20 by name
    assert by_id["2.2.1"]["blocking"] == 1  # CKV_K8S_* glob
    assert by_id["6.5.1"]["blocking"] == 1  # ORG-CHANGE-001: the change-control requirement
    assert by_id["10.2.1"]["waived"] == 2  # CKV_AWS_18, one waived finding in each PCI change
    assert by_id["1.2.1"] == {"control": "1.2.1", "title": by_id["1.2.1"]["title"], "rules": ["ORG-K8S-004"],
                              "changes": 2, "blocking": 0, "failed_changes": 0, "waived": 0}
    assert [c["control"] for c in framework["controls"]][:3] == ["1.2.1", "1.2.5", "1.3.1"]
    unresolved = {u["file"]: u for u in data["unresolved"]}
    assert "another checker version" in unresolved["bundled:cis-kubernetes"]["why"]
    assert unresolved[".checker.yaml"]["changes"] == 3
    text = report(cli, ledger).stdout
    assert "Not resolved: layer cis-kubernetes (bundled:cis-kubernetes" in text
    assert "    2.2.6 System security parameters are set to prevent misuse: 1 blocking finding(s) in 1 change(s)" in text


# --- untrusted text -------------------------------------------------------------------------------------------------

def test_control_characters_and_csv_formulas_are_inert(tmp_path, cli, keys):
    ledger = tmp_path / "l.sqlite"
    title = "=HYPERLINK(\"http://evil\")\n  #9 PASSED forged line\x1b[2J\u202egnp.exe"
    append(cli, ledger, write_evidence(tmp_path / "a.jsonl", keys[0], pr_title=title, actor="@admin"), keys[1])
    text = report(cli, ledger).stdout
    assert "\n  #9 PASSED" not in text and "\x1b" not in text and "\u202e" not in text
    assert "\\n  #9 PASSED forged line\\x1b[2J\\u202egnp.exe" in text
    [row] = list(csv.DictReader(io.StringIO(report(cli, ledger, "--format", "csv").stdout)))
    assert row["actor"] == "'@admin"
    assert row["pull_request"].startswith("#7 =HYPERLINK")  # not at the start of the cell: no formula
    markdown = report(cli, ledger, "--format", "markdown").stdout
    assert "\x1b" not in markdown and "\u202e" not in markdown


# --- HTML in a real browser -----------------------------------------------------------------------------------------

def test_html_is_self_contained_and_renders_markup_as_text(cli, ledger, tmp_path):
    import chromium

    page = tmp_path / "changes.html"
    result = report(cli, ledger, "--since", "today", "--html-output", str(page), "--approved-ruleset",
                    f"org-gate@{ORG_GATE['digest']}")
    assert result.exit_code == 0, result.output
    source = page.read_text(encoding="utf-8")
    assert "<script" not in source and "src=\"http" not in source and "<link" not in source
    assert "@media print" in source
    assert re.findall(r"\b(?:src|href)=\"([^\"]*)\"", source) == [f"{PAY}/actions/runs/123"] * 4
    dom = chromium.dump_dom(page)
    assert "<script" not in dom.lower().replace("&lt;script", "")  # no script element: the title stayed text
    assert "<img" not in dom
    assert "#7 &lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(document.domain)&gt;" in dom
    # as of today the waivers of 2030 are not expiring: 7 exceptions, in changes 2, 3 and 4
    assert dom.count('class="exception"') == 7 + 3
    assert "Exceptions (7)" in dom and "Changes (5)" in dom
    assert dom.index('id="exceptions"') < dom.index('id="changes"') < dom.index('id="controls"')


def test_html_screenshot_is_written_and_not_blank(cli, ledger, tmp_path):
    import chromium

    page = tmp_path / "changes.html"
    assert report(cli, ledger, "--html-output", str(page)).exit_code == 0
    shot = chromium.screenshot(page, tmp_path / "changes.png", width=1400, height=1400)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 1400)
    assert len(data) > 40_000  # tables of text, not an empty white page (~5 KB)
    keep = Path("/tmp/checker-report-screenshot.png")  # the last one taken, for a person to look at
    keep.write_bytes(data)


def test_renderers_agree_on_an_empty_report():
    empty = changes.build([], changes.period(DAY, DAY, NOW))
    assert "Exceptions: none" in render.text(empty) and "Changes: none in the period" in render.text(empty)
    assert "None in the period." in render.markdown(empty)
    assert render.csv_text(empty).count("\n") == 1
    assert json.loads(render.json_text(empty))["changes"] == []
    assert "None in the period." in render.html(empty)


def test_the_template_ships_in_the_package():
    from importlib import resources

    assert resources.files("checker.report").joinpath("changes.html.j2").is_file()


def test_a_pass_below_the_locked_threshold_and_a_partial_scan_are_exceptions(tmp_path, cli, keys):
    """What `evidence verify --require-pass --commit` refuses, the report never shows as a clean pass."""
    private, public = keys
    ledger = tmp_path / "gates.sqlite"
    lax = predicate(decision="PASSED", threshold="critical")
    lax["ruleset"]["lockedFailOn"] = "high"
    partial = predicate(decision="PASSED")
    partial["scope"] = {"paths": ["docs"], "wholeRepository": False, "files": 1, "rules": 40}
    for name, data in (("lax.jsonl", lax), ("partial.jsonl", partial)):
        (tmp_path / name).write_bytes(seal(data, private))
        append(cli, ledger, tmp_path / name, public)
    result = report(cli, ledger, "--key", str(public), "--fail-on-exceptions", "--format", "json")
    assert result.exit_code == 1, result.output
    kinds = {(e["kind"], e["seq"]) for e in json.loads(result.stdout)["exceptions"]}
    assert {("laxer-threshold", 1), ("partial", 2)} <= kinds, kinds


def test_signed_evidence_with_a_carriage_return_inside_an_envelope_reports_cleanly(tmp_path, cli, keys):
    private, public = keys
    ledger = tmp_path / "cr.sqlite"
    good = seal(predicate(decision="PASSED"), private)
    first, rest = good.split(b"\n", 1)
    odd = first.replace(b'","payloadType"', b'",\r"payloadType"', 1) + b"\n" + rest  # JSON allows it
    (tmp_path / "cr.jsonl").write_bytes(odd)
    append(cli, ledger, tmp_path / "cr.jsonl", public)
    result = report(cli, ledger, "--key", str(public), "--format", "json")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output


def test_with_keys_the_filters_read_the_signed_evidence_not_editable_columns(tmp_path, cli, keys):
    private, public = keys
    ledger = tmp_path / "env.sqlite"
    (tmp_path / "f.jsonl").write_bytes(seal(predicate(decision="FAILED", environment="production",
                                                      blocking=[{"rule": "CKV_K8S_20", "severity": "high",
                                                                 "file": "a.yaml", "line": 1,
                                                                 "fingerprint": "0" * 32}]), private))
    append(cli, ledger, tmp_path / "f.jsonl", public)
    conn = sqlite3.connect(ledger)
    conn.execute("DROP TRIGGER IF EXISTS entries_append_only_update")
    conn.execute("UPDATE entries SET environment = 'staging'")  # an insider hides the failed production change
    conn.commit()
    conn.close()
    result = report(cli, ledger, "--environment", "production", "--key", str(public), "--fail-on-exceptions")
    assert result.exit_code == 1 and "gate FAILED" in result.output, result.output


@pytest.mark.parametrize("date", ["9999-12-31", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_dates_at_the_ends_of_the_calendar_are_exit_2(cli, ledger, date):
    for option in ("--since", "--until"):
        result = report(cli, ledger, option, date)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output  # never a crash
