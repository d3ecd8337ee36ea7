"""The join: the sources' plain rows and the registry's answers into one immutable `Snapshot` (pure)."""
