"""The organisation's custom checks, installed as `checker.policies`: one module per area.

Every module-level `Policy` (made with `checker.policy.policy`) in a module of this package is
a rule. See README.md beside this file for the library and how to add a check.
"""
