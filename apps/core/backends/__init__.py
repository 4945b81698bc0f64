"""Database backends: Django's own, subclassed where a hot path needs it (see each module)."""
