"""Every page names the icon, and /favicon.ico (asked for by browsers and tools regardless) is not
a 404."""

from __future__ import annotations

import io

import pytest
import requests
from django.templatetags.static import static
from PIL import Image


def test_favicon_ico_redirects_to_the_static_icon(client):
    r = client.get("/favicon.ico")
    assert r.status_code == 302 and r["Location"] == static("favicon.ico")
    assert "max-age=86400" in r["Cache-Control"]
    assert client.head("/favicon.ico").status_code == 302
    assert client.post("/favicon.ico").status_code == 405


@pytest.mark.django_db
def test_pages_link_the_icon(client):
    html = client.get("/login/").content.decode()
    assert f'<link rel="icon" href="{static("favicon.ico")}"' in html


def test_a_browser_gets_an_icon(live_server):
    r = requests.get(live_server.url + "/favicon.ico", timeout=10)
    assert r.status_code == 200 and r.history and r.history[0].status_code == 302
    icon = Image.open(io.BytesIO(r.content))
    assert icon.format == "ICO" and {(16, 16), (32, 32)} <= set(icon.info["sizes"])
