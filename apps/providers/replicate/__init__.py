"""The replicate provider: adapter, catalog entries and credential shape (reference/providers/replicate.md)."""
