"""A tiny shop used by diffwise's quick start."""
