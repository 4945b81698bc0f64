"""Date helpers shared by the selectors."""

from __future__ import annotations

from datetime import date, datetime, time

from django.utils import timezone


def start_of_day(day: date) -> datetime:
    """Midnight at the start of ``day`` in the current time zone (for ``created_at`` ranges)."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())
