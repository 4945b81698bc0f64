"""The minimax provider: MiniMax's own Hailuo video API, v1 and v2 (reference/providers/minimax.md)."""
