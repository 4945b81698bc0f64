"""Prometheus metrics for operators: ``/metrics`` (views.py), what the engine observes
(instruments.py) and what a scrape computes from the database, the cache and the broker
(collectors.py). docs/ARCHITECTURE.md, "Metrics"."""
