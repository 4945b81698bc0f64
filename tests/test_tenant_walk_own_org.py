"""The tenant walk from the attacker's own organization (issue 18, item 17).

Charlie owns org B. He walks every page route, every HTMX partial (``HX-Request: true``) and every
API route **under his own slug and with his own token**, with alice's object ids in the URL and in
the body fields that carry ids, so each view's own object lookup is exercised (under alice's slug
the middleware answers 404 before any view runs: tests/test_tenant_walk.py). Root routes and the
admin are walked too.

Every route answers 404 for alice's object (or 405 for a method the route does not have): never a
200 with her data and never a 403 that tells the object exists. A list answers 200 and shows none
of alice's objects. No response anywhere carries alice's public ids, her prompt or her org's name.

Two properties keep the walk complete as routes are added: a URL kwarg that
tests/tenant_walk_objects.py does not fill fails (``_fill``), and an id-carrying request field
(``*_id``, ``*_ids``, ``*_of``, ``after``/``before``, ``remix``/``reuse``) read by a form, an input
serializer or a view that :data:`BODY_ID_PROBES` does not send fails
(``test_every_id_carrying_field_is_probed``).
"""

from __future__ import annotations

import html
import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from django import forms
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework import serializers

from apps.accounts.models import User
from apps.core.scoping import org_scope
from apps.generations.models import Generation
from tests.test_tenant_walk import METHODS, _alice_objects, _fill, _routes

pytestmark = pytest.mark.django_db

KWARG = re.compile(r"<(?:\w+:)?\w+>")
ID_NAME = re.compile(r"^(id|\w+_ids?|\w+_of|after|before|cursor|remix|reuse)$")
PUBLIC_ID = re.compile(r"^[a-z]+_\w{12,}$")
ROOT_ROUTES_SEEN = ("invite/<str:token>/", "account/", "orgs/")

# Valid bodies for the page forms, so a view gets past its form and reaches its object lookup.
FORM_BODY = {"role": "member", "monthly_limit": "1.00", "name": "x", "label": "x"}

# Every id-carrying request field, with how the walk sends alice's id in it:
# field -> (route name, method, object kind, extra data, "form" | "json" | "query")
BODY_ID_PROBES = {
    "remix_of": (
        "playground",
        "post",
        "video_id",
        {"prompt": "p", "model": "sandbox-video", "seconds": "2", "size": "1280x720"},
        "form",
    ),
    "remix": ("playground", "get", "video_id", {}, "query"),
    "reuse": ("playground", "get", "video_id", {}, "query"),
    # a model that needs a key (alice's walk key is a Sora key): the key lookup is reached
    "key_id": ("api-generations", "post", "key_id", {"model": "sora-2", "prompt": "p"}, "json"),
    "after": ("openai-videos", "get", "video_id", {}, "query"),
    # the list filter by batch: alice's batch id filters charlie's list down to nothing
    "batch": ("api-generations", "get", "batch_id", {}, "query"),
    # a file id is never accepted (uploads and URLs only): the refusal must not depend on the id
    "file_id": ("openai-videos", "post", "video_id", {"prompt": "p", "model": "sandbox-video"}, "input_reference"),
    # URL kwargs that the parsers also name (apps/generations/forms.py maps service errors by name)
    "video_id": ("openai-video", "get", "video_id", {}, "url"),
}


def _leaks(tenants, objects: dict[str, str]) -> list[str]:
    """Strings none of charlie's responses may carry."""
    values = [v for v in objects.values() if PUBLIC_ID.match(v)]  # ids, not kinds like a provider slug
    prompt = "alice's secret video"
    assert len(values) >= 5, objects
    org = tenants.org_a
    return [*values, prompt, html.escape(prompt), org.name, html.escape(org.name), f"/o/{org.slug}/"]


def _assert_no_leak(r, leaks: list[str], what: str, sent: str = "") -> None:
    """No leak in the body or the headers; ``sent``, the URL charlie asked for, may be echoed (a
    login redirect's ``next``)."""
    content = b"".join(r.streaming_content) if r.streaming else r.content  # a shared video is streamed
    body = content.decode(errors="replace") + " ".join(f"{k}: {v}" for k, v in r.items())
    if sent:
        body = body.replace(sent, "")
    for value in leaks:
        assert value not in body, f"{what} leaked {value!r}"


def _request(client, method: str, url: str, *, htmx: bool = False, data=None, content_type=None):
    headers = {"HX-Request": "true"} if htmx else {}
    call = getattr(client, method)
    if method == "get":
        return call(url, data or {}, headers=headers)
    if content_type:
        return call(url, data or {}, content_type=content_type, headers=headers)
    if method == "post":
        return call(url, data or {}, headers=headers)
    # PUT/PATCH/DELETE with an urlencoded body, as a browser form library would send it
    from urllib.parse import urlencode

    return call(url, urlencode(data or {}), content_type="application/x-www-form-urlencoded", headers=headers)


def _allowed(r) -> set[str]:
    return {m.strip().lower() for m in r.get("Allow", "").split(",") if m.strip()}


@pytest.fixture
def walk(tenants):
    objects = _alice_objects(tenants)
    own = dict(objects, org_slug=tenants.org_b.slug)
    return objects, own, _leaks(tenants, objects)


def test_pages_with_alice_ids_under_charlies_own_slug_are_404(tenants, walk):
    _objects, own, leaks = walk
    charlie = tenants.client_for(tenants.charlie)
    object_routes = list_routes = 0
    for route, _ in _routes():
        if not route.startswith("o/<slug:org_slug>/"):
            continue
        url = _fill(route, own)
        has_object = len(KWARG.findall(route)) > 1
        if has_object:
            object_routes += 1
            found_404 = False
            for method in METHODS:
                for htmx in (False, True):
                    r = _request(charlie, method, url, htmx=htmx, data=FORM_BODY)
                    what = f"{method.upper()} {url} (htmx={htmx})"
                    _assert_no_leak(r, leaks, what)
                    if r.status_code == 405:
                        assert method not in _allowed(r), f"{what} gave 405 although it allows {method}"
                        continue
                    assert r.status_code == 404, f"{what} gave {r.status_code} to charlie with alice's id"
                    found_404 = True
            assert found_404, f"no method of {url} reached its object lookup"
        else:
            list_routes += 1
            for htmx in (False, True):
                r = _request(charlie, "get", url, htmx=htmx)
                what = f"GET {url} (htmx={htmx})"
                if r.status_code == 405:  # a POST-only action (invite, leave, add a key)
                    continue
                _assert_no_leak(r, leaks, what)
                if r.status_code == 302:  # the org home sends charlie on to one of his own pages
                    assert r["Location"].startswith(f"/o/{tenants.org_b.slug}/"), what
                else:
                    assert r.status_code == 200, f"{what} gave {r.status_code}"
    assert object_routes >= 10 and list_routes >= 8


def test_api_routes_with_alice_ids_under_charlies_token_are_404(tenants, walk):
    _objects, own, leaks = walk
    api = tenants.api_client_for(tenants.charlie_token)
    lists = 0
    for route, _ in _routes():
        if not route.startswith("v1/"):
            continue
        url = _fill(route, own)
        has_object = bool(KWARG.search(route))
        found_404 = False
        for method in METHODS:
            r = getattr(api, method)(url, {}, content_type="application/json")
            what = f"{method.upper()} {url}"
            _assert_no_leak(r, leaks, what)
            assert r.status_code < 500, f"{what} gave {r.status_code}"
            assert r.status_code != 403, f"{what} gave 403"
            if has_object:
                if r.status_code == 405:
                    continue
                assert r.status_code == 404, f"{what} gave {r.status_code} to charlie with alice's id"
                assert r.json()["error"]["type"] == "not_found_error"
                found_404 = True
            elif method == "get" and r.status_code != 405:
                assert r.status_code == 200, f"{what} gave {r.status_code}"
                lists += 1
        if has_object:
            assert found_404, f"no method of {url} reached its object lookup"
    assert lists >= 5


def _probe(tenants, field: str, value: str):
    route_name, method, _, extra, how = BODY_ID_PROBES[field]
    if route_name.startswith(("api-", "openai-")):
        client = tenants.api_client_for(tenants.charlie_token)
        kwargs = {"video_id": value} if how == "url" else {}
        url = reverse(route_name, kwargs=kwargs)
    else:
        client = tenants.client_for(tenants.charlie)
        url = reverse(route_name, kwargs={"org_slug": tenants.org_b.slug})
    if how == "json":
        return client.post(url, {**extra, field: value}, content_type="application/json")
    if how == "input_reference":
        return client.post(url, {**extra, "input_reference": {field: value}}, content_type="application/json")
    if how == "query":
        return getattr(client, method)(url, {field: value})
    if how == "url":
        return getattr(client, method)(url)
    return getattr(client, method)(url, {**extra, field: value})


@pytest.mark.parametrize("field", sorted(BODY_ID_PROBES))
def test_alice_id_in_a_body_field_is_the_same_as_no_such_id(tenants, walk, field):
    """Alice's id in an id-carrying field answers exactly as an id that does not exist (a 404 for
    a body field that names the object to act on), creates nothing and shows nothing of hers."""
    objects, _own, leaks = walk
    kind = BODY_ID_PROBES[field][2]
    with org_scope(tenants.org_b):
        before = Generation.objects.filter(organization=tenants.org_b).count()
    alice = _probe(tenants, field, objects[kind])
    nobody = _probe(tenants, field, objects[kind][:4] + "0" * (len(objects[kind]) - 4))
    _assert_no_leak(alice, leaks, f"{field}={objects[kind]}")
    assert alice.status_code == nobody.status_code, (
        f"{field}: alice's id {alice.status_code}, no id {nobody.status_code}"
    )
    assert alice.status_code != 403 and alice.status_code < 500
    how = BODY_ID_PROBES[field][4]
    if how in ("form", "json", "url"):
        assert alice.status_code == 404, f"{field}={objects[kind]} gave {alice.status_code}"
    if how == "json":
        assert alice.json()["error"]["param"] == field
    if how == "query" and field != "after":
        assert alice.status_code == 200  # a prefill from an unknown video is an empty form
    if field == "after":
        assert alice.status_code == 200 and alice.json()["data"] == []
    with org_scope(tenants.org_b):
        assert Generation.objects.filter(organization=tenants.org_b).count() == before, f"{field} created a video"


def _app_modules():
    """The modules of the project's installed apps (an app not installed yet is not served)."""
    from django.apps import apps as registry

    for config in registry.get_app_configs():
        if not config.name.startswith("apps."):
            continue
        package = importlib.import_module(config.name)
        yield package
        for info in pkgutil.walk_packages(package.__path__, config.name + "."):
            if ".migrations" in info.name or ".management" in info.name or info.name.endswith(".admin"):
                continue
            yield importlib.import_module(info.name)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _request_field_names() -> set[str]:
    """Every request field a form, an input serializer or a view of the project reads."""
    modules = list(_app_modules())
    names: set[str] = set()
    for form in _subclasses(forms.BaseForm):
        if form.__module__.startswith("apps."):
            names.update(getattr(form, "base_fields", {}))
    raw = re.compile(r"""(?:POST|GET|data|query_params|ref)\.get\(\s*f?["'](\w+)["']""")
    parses = re.compile(r"(\w+)\(\s*data=")  # a serializer that parses a request: X(data=...)
    parsing: set[str] = set()
    for module in modules:
        if module.__name__.startswith("apps.providers."):
            continue  # adapters read the providers' answers, not requests
        source = Path(module.__file__).read_text()
        names.update(raw.findall(source))
        parsing.update(parses.findall(source))
    for ser in _subclasses(serializers.Serializer):
        if ser.__module__.startswith("apps.") and ser.__name__ in parsing:
            names.update(ser._declared_fields)
    return names


def test_every_id_carrying_field_is_probed():
    names = _request_field_names()
    assert {"remix_of", "key_id", "prompt", "after"} <= names  # the discovery itself works
    id_fields = {n for n in names if ID_NAME.match(n)}
    missing = id_fields - set(BODY_ID_PROBES)
    assert not missing, f"id-carrying request fields not walked with alice's ids: {sorted(missing)}"


def test_root_routes_with_alice_ids(tenants, walk):
    objects, own, leaks = walk
    charlie = tenants.client_for(tenants.charlie)
    with org_scope(tenants.org_a):
        invitation_id = objects["invitation_id"]
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    root = dict(own, uidb64=urlsafe_base64_encode(force_bytes(tenants.alice.pk)))
    # the invitation's public id (shown on alice's members page) is not its link token
    invite = dict(root, token=invitation_id)
    seen = set()
    for route, _ in _routes():
        if route.startswith(("o/", "v1/", "admin")):
            continue
        seen.add(route)
        url = _fill(route, invite if route.startswith("invite/") else root)
        for method in METHODS:
            charlie = tenants.client_for(tenants.charlie)  # a fresh session: logout/ ends the last one
            r = _request(charlie, method, url, data=FORM_BODY)
            what = f"{method.upper()} {url}"
            _assert_no_leak(r, leaks, what, sent=url)
            assert r.status_code < 500 and r.status_code != 403, f"{what} gave {r.status_code}"
            if route.startswith("invite/") and method == "get":
                assert r.status_code == 404, f"{what} gave {r.status_code}"
            elif route.startswith("invite/") and r.status_code != 405:
                # a POST of a dead link goes home with the reason: the same as for a made-up token
                made_up = _request(charlie, method, f"/invite/{invitation_id[:4]}{'0' * 24}/", data=FORM_BODY)
                assert (r.status_code, r.get("Location")) == (made_up.status_code, made_up.get("Location")), what
    assert set(ROOT_ROUTES_SEEN) <= seen
    # a real reset token of alice's in charlie's session changes nothing of hers either
    r = charlie.get(f"/password/reset/{root['uidb64']}/{default_token_generator.make_token(tenants.alice)}x/")
    _assert_no_leak(r, leaks, "password reset with a wrong token")
    for path in ("/account/", "/orgs/"):
        r = charlie.get(path)
        assert r.status_code == 200 and tenants.org_b.name in r.content.decode()


def _admin_urls(tenants):
    """(name, url) for every admin URL of every registered model, alice's object in <object_id>."""
    gen = Generation.all_orgs.filter(organization=tenants.org_a).first()
    urls = []
    for model, model_admin in admin.site._registry.items():
        obj = gen if model is Generation else model._base_manager.first()
        pk = str(obj.pk) if obj is not None else "1"
        for pattern in model_admin.get_urls():
            if not pattern.name or not hasattr(pattern.pattern, "converters"):
                continue
            kwargs = {}
            for name in pattern.pattern.converters:
                kwargs[name] = pk
            urls.append((pattern.name, reverse(f"admin:{pattern.name}", kwargs=kwargs)))
    urls.append(("index", reverse("admin:index")))
    urls.append(("health", reverse("admin-health")))
    return urls


STANDARD_ADMIN = re.compile(r"_(changelist|add|change|delete|history|autocomplete)$")


def test_admin_is_closed_to_charlie_and_to_staff_without_permissions(tenants, walk):
    _objects, _own, leaks = walk
    charlie = tenants.client_for(tenants.charlie)
    urls = _admin_urls(tenants)
    custom = [(n, u) for n, u in urls if not STANDARD_ADMIN.search(n) and n not in ("index", "autocomplete")]
    assert {"generations_generation_content", "billing_usageentry_totals"} <= {n for n, _ in custom}
    for _name, url in urls:
        for method in ("get", "post"):
            r = getattr(charlie, method)(url)
            assert r.status_code == 302 and "/login/" in r["Location"], f"{method.upper()} {url}: {r.status_code}"
    staff = User.objects.create_user("staff@example.com", "pw-staff-12345", is_staff=True)
    assert not Permission.objects.filter(user=staff).exists()
    staff_client = tenants.client_for(staff)
    for name, url in urls:
        r = staff_client.get(url)
        _assert_no_leak(r, leaks, f"staff GET {url}")
        if name == "index":
            assert r.status_code == 200
        elif (name, url) in custom or name == "health":
            assert r.status_code == 403, f"staff without permissions: GET {url} gave {r.status_code}"
        else:
            assert r.status_code in (403, 302), f"staff without permissions: GET {url} gave {r.status_code}"
