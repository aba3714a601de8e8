"""checker: the paved-road compliance gate."""
