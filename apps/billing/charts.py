"""The usage page's daily chart, as SVG geometry for the template (no chart library)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from apps.billing.selectors import UsageReport


def daily_chart(report: UsageReport, width: int = 720, height: int = 150) -> dict:
    """Bars for each day of the report's range."""
    costs = {row["day"]: row["cost"] for row in report.by_day}
    days = [report.start + timedelta(days=i) for i in range((report.end - report.start).days + 1)]
    peak = max([c for c in costs.values() if c > 0], default=Decimal("0"))
    top, bottom = 10, 24
    plot = height - top - bottom
    step = width / max(len(days), 1)
    bars = []
    for i, day in enumerate(days):
        cost = costs.get(day, Decimal("0"))
        h = float(cost / peak) * plot if peak > 0 and cost > 0 else 0.0
        h = max(h, 2.0) if cost > 0 else 0.0
        bars.append(
            {
                "x": round(i * step + step * 0.15, 2),
                "y": round(top + plot - h, 2),
                "w": round(max(step * 0.7, 1), 2),
                "h": round(h, 2),
                "day": day,
                "cost": cost,
            }
        )
    return {
        "width": width,
        "height": height,
        "baseline": top + plot,
        "label_y": height - 6,
        "bars": bars,
        "peak": peak,
        "peak_y": top,
        "first": days[0] if days else None,
        "last": days[-1] if days else None,
    }
