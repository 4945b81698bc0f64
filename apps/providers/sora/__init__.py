"""The sora provider: adapter, catalog entries and credential shape (docs/providers/sora.md)."""
