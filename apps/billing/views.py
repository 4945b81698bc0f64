"""The usage page, under /o/<org_slug>/usage/: totals, breakdowns, a daily chart, budgets, and the
CSV export (``?format=csv``). Thin: parse with a form, call the selectors, render."""

from __future__ import annotations

import csv
from datetime import date

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from apps.billing import selectors
from apps.billing.charts import daily_chart
from apps.billing.forms import UsageRangeForm
from apps.core.views import wants_fragment

USAGE = "billing/usage.html"


# a cell a spreadsheet would read as a formula (CSV injection, OWASP): "=HYPERLINK(...)" as an email
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """``value`` for a CSV cell: text that starts like a formula gets a leading ``'`` so spreadsheet
    programs show it as text. Numbers (written by us) are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _usage_csv(request: HttpRequest, start: date, end: date) -> HttpResponse:
    rows = selectors.usage_rows(org=request.organization, start=start, end=end)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"usage-{request.organization.slug}-{start:%Y%m%d}-{end:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(["date", "provider", "model", "member", "videos", "seconds", "cost_usd"])
    for row in rows:
        cost = f"{row['cost']:.4f}"
        day, seconds = row["day"].isoformat(), row["seconds"] or 0
        cells = [day, row["provider"], row["model"], row["user__email"], row["videos"], seconds, cost]
        writer.writerow([csv_cell(cell) for cell in cells])
    return response


@login_required
@require_GET
@vary_on_headers("HX-Request")
def usage(request: HttpRequest, org_slug: str) -> HttpResponse:
    today = timezone.localdate()
    default = (today.replace(day=1), today)
    form = UsageRangeForm(request.GET if "start" in request.GET or "end" in request.GET else None)
    start, end = form.range(default)
    if not form.is_bound:
        form = UsageRangeForm(initial={"start": start, "end": end})
    if request.GET.get("format") == "csv":
        return _usage_csv(request, start, end)
    report = selectors.usage_report(org=request.organization, start=start, end=end)
    org_budget, member_budget = selectors.budget_status(org=request.organization, membership=request.membership)
    context = {
        "form": form,
        "report": report,
        "chart": daily_chart(report),
        "csv_query": f"start={start.isoformat()}&end={end.isoformat()}&format=csv",
        "org_budget": org_budget,
        "member_budget": member_budget,
    }
    template = USAGE + "#usage-report" if wants_fragment(request) else USAGE
    return render(request, template, context, status=200 if not form.errors else 422)
