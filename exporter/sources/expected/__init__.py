"""Expected image lists: what a release says it needs (see formats.py)."""
