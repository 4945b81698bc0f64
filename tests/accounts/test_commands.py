import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.models import Membership, Organization, User
from apps.api_keys.selectors import api_token_authenticate
from tests.utils import subprocess_env

pytestmark = pytest.mark.django_db


def _call(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_org_creates_user_and_org_and_prints_slug():
    out = _call("create_org", "--email", "ops@example.com", "--password", "pw-123-long-enough", "--org", "Ops Team")
    slug = out.strip()
    org = Organization.objects.get(slug=slug)
    assert org.name == "Ops Team"
    user = User.objects.get(email="ops@example.com")
    assert user.check_password("pw-123-long-enough")
    assert Membership.all_orgs.get(organization=org).role == "owner"
    # existing user, second org
    slug2 = _call(
        "create_org", "--email", "ops@example.com", "--password", "pw-123-long-enough", "--org", "Ops Team"
    ).strip()
    assert slug2 != slug and User.objects.count() == 1


def test_create_org_refuses_existing_user_with_wrong_password(tenants):
    with pytest.raises(CommandError, match="password"):
        _call("create_org", "--email", "alice@example.com", "--password", "wrong", "--org", "X")


def test_create_api_token_prints_only_a_working_token(tenants):
    out = _call("create_api_token", "--email", "bob@example.com", "--org", tenants.org_a.slug, "--name", "ci")
    token = out.strip()
    assert out.count("\n") == 1 and token.startswith("mr_")
    found = api_token_authenticate(token=token)
    assert found is not None and found.user == tenants.bob and found.organization == tenants.org_a


def test_create_api_token_refuses_non_member(tenants):
    with pytest.raises(CommandError, match="not a member"):
        _call("create_api_token", "--email", "charlie@example.com", "--org", tenants.org_a.slug)


@pytest.mark.django_db(transaction=True)
def test_commands_print_clean_stdout_from_a_shell(tenants):
    """Scripts capture stdout: nothing but the token may be printed."""
    result = subprocess.run(
        [sys.executable, "manage.py", "create_api_token", "--email", "alice@example.com", "--org", tenants.org_a.slug],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("mr_") and len(result.stdout.strip().split()) == 1
