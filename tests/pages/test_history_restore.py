"""htmx history restore: the Gallery and Usage pages push their filters into the URL; on a history
cache miss htmx asks again with HX-Request *and* HX-History-Restore-Request, and must get the
whole page (a fragment would be swapped into the body). Both answers vary on HX-Request."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("page", ["videos/", "usage/"])
def test_a_history_restore_gets_the_whole_page_and_a_fragment_request_the_fragment(tenants, page):
    client = tenants.client_for(tenants.alice)
    url = f"/o/{tenants.org_a.slug}/{page}"
    fragment = client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()
    restored = client.get(url, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert restored.status_code == 200 and "<html" in restored.content.decode()
    assert "HX-Request" in restored["Vary"] and "HX-Request" in fragment["Vary"]
    full = client.get(url)
    assert "<html" in full.content.decode() and "HX-Request" in full["Vary"]
