"""Reports over the ledger: `checker report changes`, the morning report a change-management team reads.

changes.py builds the report (a pure function of ledger rows, filters and trust settings),
render.py turns it into text, Markdown, CSV, JSON or one self-contained HTML file
(changes.html.j2), commands.py is the command line. Nothing heavy is imported here: the CLI
imports commands.py at start, and a scan pays nothing for the report.
"""
