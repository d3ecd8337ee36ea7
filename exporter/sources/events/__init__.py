"""events (see DESIGN.md)."""
