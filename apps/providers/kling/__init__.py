"""The kling provider: adapter, catalog entries and credential shape (docs/providers/kling.md)."""
