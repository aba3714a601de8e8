"""The organisation's bundled rulesets (YAML files beside this one), installed as checker.rulesets."""
