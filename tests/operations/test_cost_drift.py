"""Cost checked against what suppliers report: a real fal job through a real worker records what fal
says it billed (billable units times fal's unit price from its pricing API) next to our charge; the
``cost_drift`` command and the admin page show the difference; the admin views check permissions."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command

from apps.accounts.models import User
from apps.generations import selectors
from apps.generations.models import Generation, State
from tests.emulators import fal as fal_emulator

SECONDS, SIZE = 8, "1280x720"


@pytest.mark.integration
def test_a_fal_job_records_what_fal_billed_and_the_drift_is_listed(tenants, live_engine, monkeypatch):
    # fal now bills Veo 3.1 at $0.60 a second; our catalog still says $0.40 (with audio)
    monkeypatch.setitem(fal_emulator.UNIT_PRICES, "fal-ai/veo3.1", (0.60, "seconds"))
    client = tenants.api_client_for(tenants.alice_token)
    body = {"model": "fal/veo-3.1", "prompt": "a quiet harbour", "duration": SECONDS, "size": SIZE}
    r = client.post("/v1/video/generations", body, content_type="application/json")
    assert r.status_code == 201, r.content
    gen = live_engine.wait(r.json()["id"])
    assert gen.state == State.COMPLETED, gen.error_message
    assert gen.final_cost == Decimal("3.2000")  # what we charge: the catalog's price
    assert gen.provider_usage["billable_units"] == str(SECONDS)
    assert gen.provider_usage["cost_usd"] == "4.8000" and gen.provider_usage["unit_price"] == "0.6"
    assert gen.provider_cost == Decimal("4.8")  # the column the Usage page sums, written with it
    shown = client.get(f"/v1/video/generations/{gen.public_id}").json()["usage"]
    assert (shown["cost"], shown["provider_reported_cost"]) == ("3.2000", "4.8000")

    # the Usage page shows what fal reports beside what we charged
    page = tenants.client_for(tenants.alice).get(f"/o/{tenants.org_a.slug}/usage/").content.decode()
    row = page.split('data-model="fal/veo-3.1"', 1)[1].split("</tr>", 1)[0]
    assert "$3.20" in row and "$4.80" in row

    out = StringIO()
    call_command("cost_drift", stdout=out)
    assert "fal/veo-3.1: charged $3.20, provider reports $4.80 on 1 of 1 jobs" in out.getvalue()
    assert "the catalog price is out of date" in out.getvalue()


@pytest.fixture
def completed(tenants):
    def make(provider, model, charged, reported=None, n=1):
        for i in range(n):
            Generation.all_orgs.create(
                organization=tenants.org_a,
                public_id=f"video_{provider}{model}{i}{charged}".replace(".", "")[:40],
                user=tenants.alice,
                provider=provider,
                model=model,
                prompt="p",
                seconds=5,
                size="1280x720",
                state=State.COMPLETED,
                deadline_at="2030-01-01T00:00:00Z",
                estimated_cost=Decimal(charged),
                final_cost=Decimal(charged),
                price_version=f"{provider}-v1",
                provider_usage={"cost_usd": reported} if reported is not None else {},
            )

    return make


@pytest.mark.django_db
def test_drift_is_summed_by_supplier_and_model(completed):
    completed("fal", "veo-3.1", "3.20", reported="4.80", n=12)
    completed("byteplus", "seedance-2.0", "1.08", reported="1.08", n=2)
    completed("replicate", "seedance-2.0", "0.90", n=3)  # Replicate reports no price
    rows = {(r.provider, r.model): r for r in selectors.cost_drift()}
    fal = rows[("fal", "veo-3.1")]
    assert (fal.jobs, fal.reported_jobs, fal.charged, fal.reported) == (12, 12, Decimal("38.40"), Decimal("57.60"))
    assert fal.drift == Decimal("19.20") and fal.ratio == Decimal("1.500")
    assert rows[("byteplus", "seedance-2.0")].drift == 0
    assert rows[("replicate", "seedance-2.0")].reported_jobs == 0
    out = StringIO()
    call_command("cost_drift", "--threshold", "0.05", stdout=out)
    text = out.getvalue()
    assert "fal/veo-3.1: charged $38.40, provider reports $57.60 on 12 of 12 jobs" in text
    assert "byteplus" not in text and "(3 completed jobs have no provider-reported cost.)" in text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "permission"),
    [
        ("/admin/generations/generation/cost-drift/", "view_generation"),
        ("/admin/billing/usageentry/totals/", "view_usageentry"),
    ],
)
def test_the_operators_money_pages_need_the_models_permission(client, completed, url, permission):
    completed("fal", "veo-3.1", "3.20", reported="4.80")
    staff = User.objects.create_user("ops@example.com", "pw-ops-123456", name="Ops", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403  # staff, but without the permission
    staff.user_permissions.add(Permission.objects.get(codename=permission))
    staff = User.objects.get(pk=staff.pk)  # drop the permission cache
    client.force_login(staff)
    page = client.get(url)
    assert page.status_code == 200
    if "cost-drift" in url:
        assert "fal/veo-3.1" in page.content.decode() and "$4.80" in page.content.decode()


@pytest.mark.django_db
def test_the_drift_page_shows_the_price_version_in_effect_now(admin_client, completed):
    from django.utils import timezone

    from apps.billing.models import CatalogPrice
    from apps.providers import catalog

    completed("fal", "veo-3.1", "3.20", reported="4.80")
    completed("fal", "wan-2.7", "0.50", reported="0.50")
    veo = catalog.get_model("fal/veo-3.1")
    now = timezone.now()
    CatalogPrice.objects.create(
        supplier="fal",
        model="veo-3.1",
        unit="seconds",
        unit_price=Decimal("0.6"),
        prices=veo.price_table().as_json(),
        price_version="fal-api-20261201T220000Z",
        valid_from=now,
        source="fal.ai pricing API",
        fetched_at=now,
    )
    page = admin_client.get("/admin/generations/generation/cost-drift/").content.decode()
    veo_row = page.split("fal/veo-3.1</td>", 1)[1].split("</tr>", 1)[0]
    wan_row = page.split("fal/wan-2.7</td>", 1)[1].split("</tr>", 1)[0]
    assert "fal-v1" in veo_row and "fal-api-20261201T220000Z" in veo_row  # charged at v1, priced anew now
    assert wan_row.count("fal-v1") == 1 and "fal-2026-12-01" in wan_row  # the catalog's version now
