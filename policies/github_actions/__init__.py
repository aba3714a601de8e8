"""GitHub Actions audits: one module per audit (or real family), as zizmor lays its audits out.

`workflow.py` is the shared workflow model (jobs, steps, triggers, expressions, untrusted contexts) and holds
no rule; every other module holds the checks of one audit, each documented by its docstring. Adding an audit
is adding a module here (see "Adding a check" in policies/README.md).
"""
