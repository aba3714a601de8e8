"""The ledger: one place that holds every gated change's evidence and shows if anyone rewrote it.

What an entry is (row.Row): the evidence file's exact bytes (both DSSE envelopes, signatures
included), their sha256, the time appended, the previous entry's hash and this entry's hash, plus
columns derived from the evidence for queries (repository, environment, commit, branch, decision,
tickets, ruleset name/version/digest, signer key ids, scan times, the predicate as canonical JSON)
and whether its signatures verified when appended (`--key`), or were not checked.

The chain (chain.py): entry N's hash is sha256 over every field of entry N but the hash itself,
including entry N-1's hash, so editing, deleting or reordering any entry breaks every link after
it; `checker ledger verify` recomputes the hashes, the links and the derived columns (and, with
keys, the signatures) and names the first entry that breaks (exit 3). A rewrite of the whole table
with a consistent forged chain is caught by signed checkpoints kept elsewhere (checkpoint.py).

Idempotent: evidence_sha256 is unique, so appending the same evidence bytes again adds nothing and
names the entry that already holds them (exit 0): a retried CI job cannot duplicate a change.

Where it lives (open.py): `--ledger URL`, else $CHECKER_LEDGER, else the SQLite file
$XDG_DATA_HOME/checker/ledger.sqlite (~/.local/share/checker/ledger.sqlite); `postgresql://...`
selects PostgreSQL (postgres.py) for an organisation's many pipelines. Both back ends implement
row.Store: one writer at a time across processes (SQLite: WAL and BEGIN IMMEDIATE; PostgreSQL: an
advisory transaction lock), so concurrent appends never lose an entry nor fork the chain.
"""
