"""expected (see DESIGN.md)."""
