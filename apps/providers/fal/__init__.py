"""fal.ai: one queue protocol in front of many makers' video models (an aggregator)."""
