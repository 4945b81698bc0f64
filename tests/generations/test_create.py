from decimal import Decimal

import pytest

from apps.accounts.models import Membership
from apps.billing.models import UsageEntry
from apps.core.errors import ApplicationError, Conflict, PaymentRequired, PermissionDeniedError, ValidationFailed
from apps.core.scoping import org_scope
from apps.generations import services
from apps.generations.models import Generation, State
from apps.generations.services import GenerationRequest

pytestmark = pytest.mark.django_db

SANDBOX = GenerationRequest(model="sandbox-video", prompt="a red fox in the snow", seconds=2, size="1280x720")


def _create(tenants, request=SANDBOX, user=None, **kw):
    with org_scope(tenants.org_a):
        return services.generation_create(org=tenants.org_a, user=user or tenants.alice, request=request, **kw)


def test_it_creates_a_generation_with_a_hold_and_sends_submit_on_commit(tenants, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        gen = _create(tenants)
    assert gen.public_id.startswith("video_") and gen.state == State.CREATED
    assert gen.provider == "sandbox" and gen.seconds == 2 and gen.size == "1280x720"
    assert len(callbacks) == 1  # the submit task, only after commit
    hold = UsageEntry.all_orgs.get(generation=gen)
    assert hold.kind == "hold" and hold.user == tenants.alice and hold.amount == gen.estimated_cost


def test_defaults_come_from_the_catalog(tenants):
    gen = _create(tenants, GenerationRequest(model="sandbox/sandbox-video", prompt="x"))
    assert (gen.seconds, gen.size, gen.model) == (4, "1280x720", "sandbox-video")


@pytest.mark.parametrize(
    ("request_kw", "param"),
    [
        ({"model": "no-such-model"}, "model"),
        ({"seconds": 3}, "seconds"),
        ({"size": "123x456"}, "size"),
        ({"prompt": "   "}, "prompt"),
        ({"seed": 5}, "seed"),
    ],
)
def test_it_rejects_bad_input_with_the_field_named(tenants, request_kw, param):
    fields = {"model": "sandbox-video", "prompt": "ok", "seconds": 2, "size": "1280x720", **request_kw}
    with pytest.raises(ApplicationError) as info:
        _create(tenants, GenerationRequest(**fields))
    assert info.value.param == param
    assert Generation.all_orgs.count() == 0 and UsageEntry.all_orgs.count() == 0


def test_validation_reports_every_field(tenants):
    with pytest.raises(ValidationFailed) as info:
        _create(tenants, GenerationRequest(model="sandbox-video", prompt="x", seconds=3, size="1x1"))
    assert set(info.value.errors) == {"seconds", "size"}


def test_a_provider_without_a_key_is_refused_before_anything_is_sent(tenants):
    with pytest.raises(ApplicationError) as info:
        _create(tenants, GenerationRequest(model="runway/gen4.5", prompt="x", seconds=5, size="1280x720"))
    assert info.value.code == "missing_provider_key" and "Runway" in info.value.message


def test_a_retired_model_is_refused_naming_its_replacement(tenants, settings):
    """Sora 2 was shut down on 2026-09-24: without a compatible gateway it is refused, with the
    model to use instead, before anything is held or sent."""
    for name in ("SORA_BASE_URL", "OPENAI_BASE_URL"):
        if hasattr(settings, name):
            delattr(settings, name)
    with pytest.raises(ApplicationError) as info:
        _create(tenants, GenerationRequest(model="sora-2", prompt="x", seconds=4, size="1280x720"))
    assert info.value.code == "model_retired" and info.value.param == "model"
    assert "2026-09-24" in info.value.message and "'veo-3.1'" in info.value.message
    assert not Generation.all_orgs.exists()


def test_viewers_cannot_generate(tenants):
    Membership.all_orgs.filter(user=tenants.bob).update(role="viewer")
    with pytest.raises(PermissionDeniedError):
        _create(tenants, user=tenants.bob)


def test_idempotency_key_returns_the_same_generation_and_one_hold(tenants):
    first = _create(tenants, idempotency_key="abc")
    again = _create(tenants, idempotency_key="abc")
    assert again.pk == first.pk
    assert UsageEntry.all_orgs.filter(kind="hold").count() == 1
    with pytest.raises(Conflict):
        _create(
            tenants, GenerationRequest(model="sandbox-video", prompt="another prompt", seconds=2), idempotency_key="abc"
        )
    # keys are per member: bob may use the same key for his own request
    bobs = _create(tenants, user=tenants.bob, idempotency_key="abc")
    assert bobs.pk != first.pk


@pytest.fixture
def priced_sandbox(monkeypatch):
    from apps.providers import catalog

    model = catalog.get_model("sandbox-video")
    original = model.price_per_second
    object.__setattr__(model, "price_per_second", {size: Decimal("0.50") for size in model.sizes})
    yield model
    object.__setattr__(model, "price_per_second", original)


def test_org_budget_is_enforced_with_holds(tenants, priced_sandbox):
    tenants.org_a.monthly_budget = Decimal("2.50")
    tenants.org_a.save()
    _create(tenants)  # 2 s x $0.50 = $1.00
    _create(tenants)  # $2.00 committed
    with pytest.raises(PaymentRequired) as info:
        _create(tenants)
    assert info.value.code == "org_budget_exceeded" and "$2.50" in info.value.message
    assert Generation.all_orgs.count() == 2


def test_member_limit_is_enforced_per_member(tenants, priced_sandbox):
    tenants.org_a.member_monthly_limit = Decimal("1.00")
    tenants.org_a.save()
    _create(tenants, user=tenants.bob)
    with pytest.raises(PaymentRequired) as info:
        _create(tenants, user=tenants.bob)
    assert info.value.code == "member_limit_exceeded"
    _create(tenants, user=tenants.alice)  # alice has her own limit
    # a per-member override beats the org default
    Membership.all_orgs.filter(user=tenants.bob).update(monthly_limit=Decimal("5"))
    _create(tenants, user=tenants.bob)


def test_image_for_a_text_only_model_is_refused_naming_the_field(tenants):
    from tests.emulators.base import sample_image

    with pytest.raises(ApplicationError) as info:
        _create(
            tenants,
            GenerationRequest(
                model="sandbox-video", prompt="x", image=sample_image("PNG"), image_content_type="image/png"
            ),
        )
    assert info.value.param == "input_reference"


# The image checks themselves (types, polyglots, bombs) are tested in tests/generations/test_images.py.
