"""Engines check targets against rules: the protocol is in `base`, the list in `registry`."""
