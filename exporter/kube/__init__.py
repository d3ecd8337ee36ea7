"""kube (see DESIGN.md)."""
