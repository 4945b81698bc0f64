"""The OpenAI-compatible /v1/videos API through Django's test client: shapes, validation params,
idempotency, the list cursor, content, remix, delete, errors and tenant isolation. Fast: no
worker, no provider (sandbox jobs are stepped in-process; on-commit submits never run here)."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.accounts.models import Membership
from apps.api_keys import crypto
from apps.api_keys import services as key_services
from apps.api_keys.models import ProviderKey
from apps.billing.models import UsageEntry
from apps.core.scoping import org_scope
from apps.generations import services
from apps.generations.models import Generation, State
from tests.emulators.base import sample_image
from tests.generations.helpers import run_steps
from tests.openai_compat.helpers import assert_error, assert_video

pytestmark = pytest.mark.django_db

PNG = sample_image("PNG")
PNG_DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
SANDBOX = {"model": "sandbox-video", "prompt": "a red fox in the snow", "seconds": "2", "size": "1280x720"}


def _api(tenants, token=None):
    return tenants.api_client_for(token or tenants.alice_token)


def _post(client, body, **headers):
    return client.post("/v1/videos", body, content_type="application/json", headers=headers)


def _key(tenants, provider: str) -> ProviderKey:
    """A stored (never used) key, so validation passes the "has a key" check; nothing is sent."""
    secret = '{"access_key":"ak-test","secret_key":"sk-test"}' if provider == "kling" else '{"api_key":"sk-test-0000"}'
    return ProviderKey.all_orgs.create(
        organization=tenants.org_a,
        public_id=f"key_test{provider}0000000000000",
        provider=provider,
        label=f"{provider} test key",
        ciphertext=crypto.encrypt(secret),
        last4="0000",
        is_default=True,
        created_by=tenants.alice,
    )


def _completed(tenants, prompt="a finished fox", model="sandbox-video") -> Generation:
    with org_scope(tenants.org_a):
        gen = services.generation_create(
            org=tenants.org_a,
            user=tenants.alice,
            request=services.GenerationRequest(model=model, prompt=prompt, seconds=2),
        )
    return run_steps(gen)


# --- create --------------------------------------------------------------------------------


def test_create_json_returns_the_video_object(tenants):
    r = _post(_api(tenants), {**SANDBOX, "model": "sandbox/sandbox-video", "size": "960x960"})
    assert r.status_code == 200, r.content
    assert r["x-request-id"]
    body = r.json()
    assert_video(body)
    assert body["status"] == "queued" and body["progress"] == 0
    assert body["model"] == "sandbox/sandbox-video"  # supplier/model: where it runs
    assert (body["seconds"], body["size"], body["prompt"]) == ("2", "960x960", SANDBOX["prompt"])
    assert body["completed_at"] is None and body["expires_at"] is None and body["remixed_from_video_id"] is None
    gen = Generation.all_orgs.get(public_id=body["id"])
    assert gen.organization == tenants.org_a and gen.user == tenants.alice and gen.seconds == 2


def test_create_accepts_multipart_as_the_sdk_sends_it(tenants):
    r = _api(tenants).post("/v1/videos", {"prompt": "multipart fox", "model": "sandbox-video", "seconds": "4"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert_video(body)
    assert (body["seconds"], body["size"]) == ("4", "1280x720")  # the model's default size


def test_seconds_may_be_a_json_number(tenants):
    r = _post(_api(tenants), {**SANDBOX, "seconds": 8})
    assert r.status_code == 200 and r.json()["seconds"] == "8"


def test_a_create_never_defaults_the_model(tenants):
    """The contract's default, sora-2, was retired: a request without a model is refused, even
    with a Sora key, and spends nothing."""
    _key(tenants, "sora")
    r = _post(_api(tenants), {"prompt": "no model given"})
    error = assert_error(r, 400, param="model")
    assert "Name the model" in error["message"]
    assert not Generation.all_orgs.exists()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({**SANDBOX, "size": "1234x5"}, "size"),
        ({**SANDBOX, "size": "big"}, "size"),
        ({**SANDBOX, "seconds": "3"}, "seconds"),
        ({**SANDBOX, "seconds": "four"}, "seconds"),
        ({**SANDBOX, "model": "no-such-model"}, "model"),
        ({**SANDBOX, "model": "kling/sandbox-video"}, "model"),
        ({"model": "sandbox-video"}, "prompt"),
        ({**SANDBOX, "prompt": "   "}, "prompt"),
        ({"model": "gen4.5", "prompt": "x", "size": "960x960"}, "size"),  # 960x960 needs an image
        ({"model": "runway/gen4.5", "prompt": "x", "seconds": "12"}, "seconds"),
        ({"model": "kling-v2-5-turbo", "prompt": "x", "seconds": "4"}, "seconds"),
        ({"model": "kling-v2-5-turbo", "prompt": "x", "size": "1792x1024"}, "size"),
        ({"model": "sora-2", "prompt": "x", "size": "1920x1080"}, "size"),
        ({"model": "gen4_turbo", "prompt": "needs an image"}, "input_reference"),
        ({**SANDBOX, "input_reference": {"image_url": PNG_DATA_URL}}, "input_reference"),  # t2v only
        ({**SANDBOX, "input_reference": {"file_id": "file_123"}}, "input_reference"),
        ({**SANDBOX, "input_reference": {"image_url": "https://x.test/a.png", "file_id": "f"}}, "input_reference"),
        ({**SANDBOX, "input_reference": "not an object"}, "input_reference"),
    ],
)
def test_invalid_requests_name_the_field(tenants, body, param):
    r = _post(_api(tenants), body)
    assert_error(r, 400, param=param)
    assert r["x-should-retry"] == "false"
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert Generation.all_orgs.count() == 0 and UsageEntry.all_orgs.count() == 0


def test_input_reference_as_an_upload_a_data_url_or_bracketed_keys(tenants):
    _key(tenants, "kling")
    client = _api(tenants)
    upload = SimpleUploadedFile("frame.jpg", PNG, content_type="image/jpeg")  # a wrong guess: sniffed
    r = client.post("/v1/videos", {"model": "kling-v2-5-turbo", "prompt": "from a file", "input_reference": upload})
    assert r.status_code == 200, r.content
    gen = Generation.all_orgs.get(public_id=r.json()["id"])
    assert gen.input_image_type == "image/png"
    with default_storage.open(gen.input_image, "rb") as fh:
        assert fh.read() == PNG

    r = _post(
        client,
        {"model": "kling-v2-5-turbo", "prompt": "from a data url", "input_reference": {"image_url": PNG_DATA_URL}},
    )
    assert r.status_code == 200, r.content
    assert Generation.all_orgs.get(public_id=r.json()["id"]).input_image_type == "image/png"

    r = client.post(
        "/v1/videos",
        {
            "model": "kling-v2-5-turbo",
            "prompt": "from a url",
            "input_reference[image_url]": "https://93.184.216.34/a.png",
        },
    )
    assert r.status_code == 200, r.content
    assert Generation.all_orgs.get(public_id=r.json()["id"]).input_image_url == "https://93.184.216.34/a.png"
    private = {"image_url": "https://127.0.0.1/a.png"}  # never fetched for a provider: SSRF
    r = _post(client, {"model": "kling-v2-5-turbo", "prompt": "private", "input_reference": private})
    assert_error(r, 400, param="input_reference")

    not_an_image = SimpleUploadedFile("frame.png", b"definitely not a png", content_type="image/png")
    r = client.post("/v1/videos", {"model": "kling-v2-5-turbo", "prompt": "bad file", "input_reference": not_an_image})
    assert_error(r, 400, param="input_reference")


def test_over_budget_is_402_and_not_retried(tenants):
    _key(tenants, "sora")
    tenants.org_a.monthly_budget = Decimal("0.10")
    tenants.org_a.save()
    r = _post(_api(tenants), {"model": "sora-2", "prompt": "too expensive", "seconds": "4", "size": "1280x720"})
    error = assert_error(r, 402, code="org_budget_exceeded")
    assert error["type"] == "insufficient_quota" and r["x-should-retry"] == "false"
    assert Generation.all_orgs.count() == 0


# --- idempotency ---------------------------------------------------------------------------


def test_idempotency_key_same_body_same_video_one_hold(tenants):
    client = _api(tenants)
    first = _post(client, SANDBOX, **{"Idempotency-Key": "key-1"})
    again = _post(client, SANDBOX, **{"Idempotency-Key": "key-1"})
    multipart = client.post("/v1/videos", SANDBOX, headers={"Idempotency-Key": "key-1"})  # same body, as the SDK
    assert first.status_code == again.status_code == multipart.status_code == 200
    assert first.json()["id"] == again.json()["id"] == multipart.json()["id"]
    assert Generation.all_orgs.count() == 1 and UsageEntry.all_orgs.filter(kind="hold").count() == 1

    r = _post(client, {**SANDBOX, "prompt": "another prompt"}, **{"Idempotency-Key": "key-1"})
    error = assert_error(r, 409, code="idempotency_key_reused")
    assert error["type"] == "conflict_error"
    assert r["x-should-retry"] == "false"  # the SDK retries 409s unless told not to
    assert Generation.all_orgs.count() == 1

    # without a key, every request is a new video
    assert _post(client, SANDBOX).json()["id"] != first.json()["id"]


def test_idempotency_key_on_remix(tenants):
    source = _completed(tenants)
    client = _api(tenants)
    url = f"/v1/videos/{source.public_id}/remix"
    first = client.post(
        url, {"prompt": "now at night"}, content_type="application/json", headers={"Idempotency-Key": "r1"}
    )
    again = client.post(
        url, {"prompt": "now at night"}, content_type="application/json", headers={"Idempotency-Key": "r1"}
    )
    assert first.status_code == again.status_code == 200 and first.json()["id"] == again.json()["id"]
    r = client.post(url, {"prompt": "now at dawn"}, content_type="application/json", headers={"Idempotency-Key": "r1"})
    assert_error(r, 409)
    assert Generation.all_orgs.filter(remix_of=source).count() == 1


# --- retrieve and status mapping -----------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "status", "error_code"),
    [
        (State.CREATED, "queued", None),
        (State.SUBMITTING, "queued", None),
        (State.QUEUED, "queued", None),
        (State.IN_PROGRESS, "in_progress", None),
        (State.DOWNLOADING, "in_progress", None),
        (State.COMPLETED, "completed", None),
        (State.FAILED, "failed", "moderation_blocked"),
        (State.CANCELED, "failed", "canceled"),
    ],
)
def test_states_map_to_the_four_statuses(tenants, state, status, error_code):
    video_id = _post(_api(tenants), SANDBOX).json()["id"]
    fields = {"state": state, "progress": 40}
    if state == State.FAILED:
        fields.update(error_code="moderation_blocked", error_message="Blocked by moderation.")
    if state in (State.COMPLETED, State.FAILED, State.CANCELED):
        from django.utils import timezone

        fields["completed_at"] = timezone.now()
    Generation.all_orgs.filter(public_id=video_id).update(**fields)
    r = _api(tenants).get(f"/v1/videos/{video_id}")
    assert r.status_code == 200
    body = r.json()
    assert_video(body)
    assert body["status"] == status
    assert (body["error"] or {}).get("code") == error_code
    if status in ("queued", "in_progress"):
        assert int(r["openai-poll-after-ms"]) >= 250 and body["completed_at"] is None
    else:
        assert "openai-poll-after-ms" not in r and isinstance(body["completed_at"], int)
    assert body["progress"] == {"completed": 100, "in_progress": 40}.get(status, body["progress"])


def test_unknown_video_is_404_not_found(tenants):
    for method, url in [
        ("get", "/v1/videos/video_nope"),
        ("delete", "/v1/videos/video_nope"),
        ("get", "/v1/videos/video_nope/content"),
        ("post", "/v1/videos/video_nope/remix"),
    ]:
        r = getattr(_api(tenants), method)(
            url, {"prompt": "x"} if method == "post" else None, content_type="application/json"
        )
        error = assert_error(r, 404, param="video_id", code="video_not_found")
        assert error["type"] == "not_found_error" and "video_nope" not in error["message"]


# --- list ----------------------------------------------------------------------------------


def test_list_is_a_cursor_envelope(tenants):
    client = _api(tenants)
    empty = client.get("/v1/videos").json()
    assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    ids = [_post(client, {**SANDBOX, "prompt": f"fox {i}"}).json()["id"] for i in range(5)]

    seen, after, pages = [], None, 0
    while True:
        r = client.get("/v1/videos", {"limit": 2, **({"after": after} if after else {})})
        page = r.json()
        assert set(page) == {"object", "data", "first_id", "last_id", "has_more"}
        for video in page["data"]:
            assert_video(video)
        assert page["first_id"] == page["data"][0]["id"] and page["last_id"] == page["data"][-1]["id"]
        seen += [v["id"] for v in page["data"]]
        pages += 1
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert pages == 3 and seen == ids[::-1]  # newest first by default

    asc = client.get("/v1/videos", {"order": "asc", "limit": 100}).json()
    assert [v["id"] for v in asc["data"]] == ids and asc["has_more"] is False
    after_third = client.get("/v1/videos", {"order": "asc", "after": ids[2]}).json()
    assert [v["id"] for v in after_third["data"]] == ids[3:]
    assert client.get("/v1/videos", {"after": "video_unknown"}).json()["data"] == []


@pytest.mark.parametrize(
    ("query", "param"),
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "x"}, "limit"), ({"order": "up"}, "order")],
)
def test_list_validates_its_query(tenants, query, param):
    assert_error(_api(tenants).get("/v1/videos", query), 400, param=param)


# --- content, remix, delete ----------------------------------------------------------------


def test_content_remix_and_delete_of_a_completed_video(tenants):
    gen = _completed(tenants)
    client = _api(tenants)
    body = client.get(f"/v1/videos/{gen.public_id}").json()
    assert body["status"] == "completed" and body["progress"] == 100 and isinstance(body["completed_at"], int)

    r = client.get(f"/v1/videos/{gen.public_id}/content", headers={"Accept": "application/binary"})
    assert r.status_code == 200 and r["Content-Type"] == "video/mp4"
    with default_storage.open(gen.video_file, "rb") as fh:
        assert b"".join(r.streaming_content) == fh.read()
    r = client.get(f"/v1/videos/{gen.public_id}/content?variant=thumbnail", headers={"Accept": "application/binary"})
    assert r.status_code == 200 and r["Content-Type"].startswith("image/")
    r = client.get(f"/v1/videos/{gen.public_id}/content?variant=spritesheet", headers={"Accept": "application/binary"})
    assert_error(r, 400, param="variant", code="unsupported_value")
    assert_error(client.get(f"/v1/videos/{gen.public_id}/content?variant=gif"), 400, param="variant")

    r = client.post(
        f"/v1/videos/{gen.public_id}/remix", {"prompt": "the same fox, at night"}, content_type="application/json"
    )
    assert r.status_code == 200, r.content
    remix = r.json()
    assert_video(remix)
    assert remix["remixed_from_video_id"] == gen.public_id and remix["id"] != gen.public_id
    assert (remix["model"], remix["seconds"], remix["size"]) == ("sandbox/sandbox-video", "2", gen.size)

    r = client.delete(f"/v1/videos/{gen.public_id}")
    assert r.status_code == 200 and r.json() == {"id": gen.public_id, "object": "video.deleted", "deleted": True}
    assert not default_storage.exists(gen.video_file)
    assert_error(client.get(f"/v1/videos/{gen.public_id}"), 404)
    assert_error(client.get(f"/v1/videos/{gen.public_id}/content"), 404)
    assert gen.public_id not in [v["id"] for v in client.get("/v1/videos").json()["data"]]
    assert UsageEntry.all_orgs.filter(generation=gen, kind="charge").count() == 1  # costs stay


def test_content_before_completion_is_404(tenants):
    video_id = _post(_api(tenants), SANDBOX).json()["id"]
    assert_error(_api(tenants).get(f"/v1/videos/{video_id}/content"), 404)


def test_remix_needs_a_completed_video_on_a_model_that_can_remix(tenants):
    client = _api(tenants)
    queued = _post(client, SANDBOX).json()["id"]
    r = client.post(f"/v1/videos/{queued}/remix", {"prompt": "x"}, content_type="application/json")
    assert_error(r, 400, code="invalid_state")

    gen = _completed(tenants)
    _key(tenants, "runway")
    Generation.all_orgs.filter(pk=gen.pk).update(provider="runway", model="gen4.5")
    r = client.post(f"/v1/videos/{gen.public_id}/remix", {"prompt": "x"}, content_type="application/json")
    error = assert_error(r, 400, param="model")
    assert "cannot remix" in error["message"]
    r = client.post(f"/v1/videos/{gen.public_id}/remix", {}, content_type="application/json")
    assert_error(r, 400, param="prompt")


# --- auth, request ids, tenancy ------------------------------------------------------------


def test_auth_errors_and_unknown_routes_carry_the_envelope_and_a_request_id(tenants, client):
    error = assert_error(client.get("/v1/videos"), 401)
    assert error["type"] == "authentication_error"
    r = tenants.api_client_for("mr_not_a_real_token").get("/v1/videos")
    assert assert_error(r, 401, code="invalid_api_key")["type"] == "authentication_error"

    alice = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
    with org_scope(tenants.org_a):
        token_id = next(t.public_id for t in key_services.ApiToken.objects.filter(user=tenants.alice))
        key_services.api_token_revoke(by=alice, public_id=token_id)
    assert_error(_api(tenants).get("/v1/videos"), 401, code="invalid_api_key")

    r = tenants.api_client_for(tenants.bob_token).get("/v1/videos/nope/extra/path")
    assert_error(r, 404)
    r = tenants.api_client_for(tenants.bob_token).put("/v1/videos")
    assert_error(r, 405)
    r = tenants.api_client_for(tenants.bob_token).get("/v1/videos", headers={"X-Request-Id": "client-chosen-1"})
    assert r["x-request-id"] == "client-chosen-1"


def test_members_share_the_org_and_other_orgs_see_nothing(tenants):
    gen = _completed(tenants, prompt="alice's private fox")
    bob = tenants.api_client_for(tenants.bob_token)
    assert bob.get(f"/v1/videos/{gen.public_id}").status_code == 200  # same organization

    charlie = tenants.api_client_for(tenants.charlie_token)
    for method, url, body in [
        ("get", f"/v1/videos/{gen.public_id}", None),
        ("delete", f"/v1/videos/{gen.public_id}", None),
        ("get", f"/v1/videos/{gen.public_id}/content", None),
        ("get", f"/v1/videos/{gen.public_id}/content?variant=thumbnail", None),
        ("post", f"/v1/videos/{gen.public_id}/remix", {"prompt": "steal it"}),
    ]:
        r = getattr(charlie, method)(url, body, content_type="application/json")
        assert_error(r, 404)
        assert gen.public_id.encode() not in r.content and b"private fox" not in r.content
    for query in ({}, {"after": gen.public_id}, {"order": "asc"}):
        r = charlie.get("/v1/videos", query)
        assert r.status_code == 200 and r.json()["data"] == [] and gen.public_id.encode() not in r.content
    assert Generation.all_orgs.filter(remix_of=gen).count() == 0
    assert Generation.all_orgs.get(pk=gen.pk).deleted_at is None


def test_a_server_error_is_a_500_in_the_envelope(tenants, monkeypatch):
    from django.test import Client

    from apps.generations import selectors

    def crash(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "generation_page_after", crash)
    client = Client(headers={"Authorization": f"Bearer {tenants.alice_token}"}, raise_request_exception=False)
    error = assert_error(client.get("/v1/videos"), 500, code="server_error")
    assert error["type"] == "server_error" and "boom" not in error["message"]
