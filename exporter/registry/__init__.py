"""registry (see DESIGN.md)."""
