"""YAML presets of `jnskr kg` (a comment on every key; see `jnskr.kg.config`)."""
