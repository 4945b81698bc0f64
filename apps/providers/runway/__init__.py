"""The runway provider: adapter, catalog entries and credential shape (docs/providers/runway.md)."""
