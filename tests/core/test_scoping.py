import pytest
from django_scopes import ScopeError

from apps.accounts.models import Membership
from apps.api_keys.models import ApiToken
from apps.core.scoping import org_scope, scopes_disabled


@pytest.mark.parametrize("model", [Membership, ApiToken])
@pytest.mark.parametrize(
    "query",
    [
        lambda m: list(m.objects.all()),
        lambda m: m.objects.filter(pk=1).first(),
        lambda m: m.objects.count(),
        lambda m: m.objects.exists(),
        lambda m: m.objects.in_bulk([1]),
        lambda m: m.objects.exclude(pk=1).first(),
        lambda m: list(m.objects.select_related("organization")),
        lambda m: m.objects.get(pk=1),
    ],
)
def test_unscoped_query_raises(tenants, model, query):
    with pytest.raises(ScopeError):
        query(model)


def test_scope_limits_rows_to_the_active_organization(tenants):
    with org_scope(tenants.org_a):
        emails = sorted(m.user.email for m in Membership.objects.all())
    assert emails == ["alice@example.com", "bob@example.com"]
    with org_scope(tenants.org_b):
        assert [m.user.email for m in Membership.objects.all()] == ["charlie@example.com"]


def test_explicit_unscoped_paths_see_everything(tenants):
    assert Membership.all_orgs.count() == 3
    with scopes_disabled():
        assert Membership.objects.count() == 3


def test_scope_is_reset_after_the_block(tenants):
    with org_scope(tenants.org_a):
        assert Membership.objects.count() == 2
    with pytest.raises(ScopeError):
        Membership.objects.count()
