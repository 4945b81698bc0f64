"""The sandbox provider: adapter, catalog entries and credential shape (docs/providers/sandbox.md)."""
