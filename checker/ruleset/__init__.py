"""Rulesets: load YAML -> validate (JSON Schema) -> resolve `extends` -> frozen Ruleset -> select rules."""
from checker.ruleset.loader import BUNDLED_DIR, Layer, Mention, Ruleset, bundled_names, load_ruleset
from checker.ruleset.select import select_rules
from checker.ruleset.waiver import Waiver

__all__ = ["BUNDLED_DIR", "Layer", "Mention", "Ruleset", "Waiver", "bundled_names", "load_ruleset", "select_rules"]
