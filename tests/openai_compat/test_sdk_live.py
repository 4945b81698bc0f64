"""The official ``openai`` SDK, unmodified, against a live MediaRouter (pytest-django's
``live_server``) with a real Celery worker and beat (``live_engine``) in front of the sandbox and
every provider's emulator (found through the registry): create, create_and_poll, retrieve, list
(auto-paginated), content, remix, delete, and the errors the SDK maps to its exception classes,
including what it retries."""

from __future__ import annotations

import uuid
from collections import Counter
from decimal import Decimal

import httpx2
import openai
import pytest
from django.core.files.storage import default_storage
from openai import OpenAI

from apps.accounts.models import Membership
from apps.api_keys import services as key_services
from apps.billing.models import UsageEntry
from apps.core.scoping import org_scope
from apps.generations.models import Generation
from apps.providers import catalog, registry
from tests.emulators import emulator_class
from tests.emulators.base import sample_image, sample_mp4
from tests.generations.helpers import assert_ledger_balanced

pytestmark = [
    pytest.mark.integration,
    # every videos.* call warns of the upstream Sora shutdown, attributed to the caller (this module)
    pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning"),
]

POLL_MS = 200


class RecordingTransport(httpx2.BaseTransport):
    """The real transport, recording every request; ``lose_posts=n`` lets the server handle the
    next n POSTs and then answers 502 instead, as a proxy that lost the response would (so the SDK
    retries a request the server has already acted on)."""

    def __init__(self, lose_posts: int = 0) -> None:
        self.inner = httpx2.HTTPTransport()
        self.lose_posts = lose_posts
        self.requests: list[httpx2.Request] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        response = self.inner.handle_request(request)
        if request.method == "POST" and self.lose_posts:
            self.lose_posts -= 1
            response.read()
            response.close()
            body = {"error": {"message": "Bad gateway", "type": "server_error", "param": None, "code": None}}
            return httpx2.Response(502, json=body, request=request)
        return response

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path == path)

    def close(self) -> None:
        self.inner.close()


_OPEN_CLIENTS: list[OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients():
    """Close every SDK client after the test: a kept-alive connection holds a live-server thread,
    and with it a database connection (which would block dropping the test database)."""
    yield
    while _OPEN_CLIENTS:
        _OPEN_CLIENTS.pop().close()


def _sdk(live_server, token: str, transport: RecordingTransport | None = None, **kwargs) -> OpenAI:
    http_client = httpx2.Client(transport=transport or RecordingTransport(), timeout=30)
    client = OpenAI(base_url=f"{live_server.url}/v1", api_key=token, http_client=http_client, **kwargs)
    _OPEN_CLIENTS.append(client)
    return client


def _stored(public_id: str) -> bytes:
    gen = Generation.all_orgs.get(public_id=public_id)
    with default_storage.open(gen.video_file, "rb") as fh:
        return fh.read()


def _revoked_token(tenants) -> str:
    _, token = key_services.api_token_create(org=tenants.org_a, user=tenants.alice, name="to revoke")
    alice = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
    with org_scope(tenants.org_a):
        public_id = key_services.ApiToken.objects.get(name="to revoke").public_id
        key_services.api_token_revoke(by=alice, public_id=public_id)
    return token


def test_the_sdk_end_to_end_on_the_sandbox(tenants, live_server, live_engine):
    transport = RecordingTransport()
    client = _sdk(live_server, tenants.alice_token, transport)

    video = client.videos.create_and_poll(
        model="sandbox-video", prompt="a lighthouse at dusk", seconds="2", size="1280x720", poll_interval_ms=POLL_MS
    )
    assert (video.status, video.progress, video.model, video.seconds, video.size) == (
        "completed", 100, "sandbox/sandbox-video", "2", "1280x720",
    )  # fmt: skip
    assert video.error is None and video.completed_at >= video.created_at and video.expires_at is None
    polls = [r for r in transport.requests if r.headers.get("X-Stainless-Poll-Helper") == "true"]
    assert polls, "create_and_poll polled through retrieve"

    fetched = client.videos.retrieve(video.id)
    assert fetched.id == video.id and fetched.status == "completed" and fetched.prompt == "a lighthouse at dusk"

    content = client.videos.download_content(video.id)
    assert content.read() == _stored(video.id)
    assert any(r.headers.get("Accept") == "application/binary" for r in transport.requests)
    thumbnail = client.videos.download_content(video.id, variant="thumbnail")
    assert thumbnail.response.headers["content-type"].startswith("image/") and thumbnail.read()

    remix = client.videos.remix(video.id, prompt="the same lighthouse in a storm")
    assert remix.remixed_from_video_id == video.id and remix.status in ("queued", "in_progress")
    remix = client.videos.poll(remix.id, poll_interval_ms=POLL_MS)
    assert remix.status == "completed" and client.videos.download_content(remix.id).read() == _stored(remix.id)

    more = [client.videos.create(model="sandbox-video", prompt=f"filler {i}", seconds="2").id for i in range(3)]
    before = transport.count("GET", "/v1/videos")
    listed = [v.id for v in client.videos.list(limit=2)]  # auto-pagination follows after=<last_id>
    assert listed == [*more[::-1], remix.id, video.id]
    assert transport.count("GET", "/v1/videos") - before == 3
    oldest_first = client.videos.list(limit=100, order="asc")
    assert [v.id for v in oldest_first.data] == listed[::-1] and oldest_first.has_more is False

    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
    with pytest.raises(openai.NotFoundError) as info:
        client.videos.retrieve(video.id)
    assert info.value.status_code == 404 and info.value.request_id

    # errors: the SDK's exception classes, with param and the request id
    with pytest.raises(openai.BadRequestError) as info:
        client.videos.create(model="sandbox-video", prompt="wrong size", size="1024x1024")
    assert info.value.param == "size" and info.value.code == "invalid_value" and info.value.request_id
    with pytest.raises(openai.BadRequestError) as info:
        client.videos.create(model="sandbox-video", prompt="wrong length", seconds="20")
    assert info.value.param == "seconds"
    with pytest.raises(openai.BadRequestError) as info:
        client.videos.create(model="no-such-model", prompt="x")
    assert info.value.param == "model"
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content("video_0000000000000000")
    with pytest.raises(openai.AuthenticationError) as info:
        _sdk(live_server, _revoked_token(tenants)).videos.list()
    assert info.value.code == "invalid_api_key" and info.value.request_id

    # a different body under a used Idempotency-Key: 409, which the SDK would retry unless told not to
    key = {"Idempotency-Key": f"sandbox-{uuid.uuid4()}"}
    first = client.videos.create(model="sandbox-video", prompt="keyed", seconds="2", extra_headers=key)
    assert client.videos.create(model="sandbox-video", prompt="keyed", seconds="2", extra_headers=key).id == first.id
    posts = transport.count("POST", "/v1/videos")
    with pytest.raises(openai.ConflictError) as info:
        client.videos.create(model="sandbox-video", prompt="another body", seconds="2", extra_headers=key)
    assert info.value.code == "idempotency_key_reused"
    assert transport.count("POST", "/v1/videos") == posts + 1  # sent once, not retried
    live_engine.wait(first.id)


def _provider_cases() -> list[tuple[str, str, str, str, str, bool]]:
    """One case per provider with an emulator, from the registry and each emulator's first live
    model: (model as the client names it — pinned to the supplier —, the canonical model the API
    answers, size, seconds, provider slug, can remix)."""
    cases = []
    for slug in registry.PROVIDERS:
        emulator = emulator_class(slug)
        if emulator is None or not emulator.live_models:
            continue
        model = catalog.get_model(f"{slug}/{emulator.live_models[0]}")
        cases.append(
            (
                model.qualified_id,
                model.id,
                model.default_size,
                str(model.default_seconds),
                slug,
                catalog.REMIX in model.capabilities,
            )
        )
    return cases


PROVIDER_CASES = _provider_cases()


def test_the_sdk_against_every_provider(tenants, live_server, live_engine):
    """One worker for all three providers (each live_engine start costs seconds): the cases run
    side by side. The first create of each goes through a proxy that loses the response, so the
    SDK retries it with the same Idempotency-Key: one video, one provider job, one charge."""
    created = {}
    transports = {}
    for name, _canonical, size, seconds, provider, _ in PROVIDER_CASES:
        transports[provider] = RecordingTransport(lose_posts=1)
        client = _sdk(live_server, tenants.bob_token, transports[provider])
        video = client.videos.create(
            model=name,
            prompt=f"a {provider} test clip",
            size=size,
            seconds=seconds,
            extra_headers={"Idempotency-Key": f"{provider}-{uuid.uuid4()}"},
        )
        assert video.model == name and (video.size, video.seconds) == (size, seconds)  # supplier/model
        assert transports[provider].count("POST", "/v1/videos") == 2  # the lost response, then the retry
        created[provider] = video.id
    # image to video: the SDK uploads the file as multipart (the first provider whose model takes one)
    client = _sdk(live_server, tenants.bob_token)
    image_case = next(c for c in PROVIDER_CASES if catalog.IMAGE_TO_VIDEO in catalog.get_model(c[0]).capabilities)
    image_video = client.videos.create(
        model=image_case[0],
        prompt="wind in the trees",
        size=image_case[2],
        seconds=image_case[3],
        input_reference=("frame.png", sample_image("PNG")),
    )

    client = _sdk(live_server, tenants.alice_token)  # alice sees bob's videos: same organization
    for name, _, size, seconds, provider, can_remix in PROVIDER_CASES:
        video = client.videos.poll(created[provider], poll_interval_ms=POLL_MS)
        assert video.status == "completed", (provider, video.error)
        assert client.videos.download_content(video.id).read() == sample_mp4(), provider
        gen = live_engine.wait(video.id)
        assert gen.provider == provider and gen.user == tenants.bob
        assert_ledger_balanced(gen)
        assert Generation.all_orgs.filter(prompt=f"a {provider} test clip").count() == 1, provider

        if can_remix:
            remix = client.videos.remix(video.id, prompt=f"the {provider} clip, remixed")
            remix = client.videos.poll(remix.id, poll_interval_ms=POLL_MS)
            assert remix.status == "completed" and remix.remixed_from_video_id == video.id
            assert client.videos.download_content(remix.id).read() == sample_mp4()
        else:
            with pytest.raises(openai.BadRequestError) as info:
                client.videos.remix(video.id, prompt="not here")
            assert info.value.param == "model" and "cannot remix" in info.value.message

        with pytest.raises(openai.BadRequestError) as info:
            client.videos.create(model=name, prompt="bad size", size="1000x1000", seconds=seconds)
        assert info.value.param == "size", provider
        with pytest.raises(openai.BadRequestError) as info:
            client.videos.create(model=name, prompt="bad length", size=size, seconds="30")
        assert info.value.param == "seconds", provider
        with pytest.raises(openai.NotFoundError):
            client.videos.retrieve(f"{video.id}0")

        assert client.videos.delete(video.id).deleted is True

    image_video = client.videos.poll(image_video.id, poll_interval_ms=POLL_MS)
    assert image_video.status == "completed"
    assert Generation.all_orgs.get(public_id=image_video.id).input_image_type == "image/png"

    stats = {provider: emulator.stats() for provider, emulator in live_engine.emulators.items()}
    expected_jobs = Counter()
    for _, _, _, _, provider, can_remix in PROVIDER_CASES:
        # the video (created once despite the SDK's retry), its remix, and the image-to-video job
        expected_jobs[provider] += 1 + int(can_remix) + int(provider == image_case[4])
        assert stats[provider]["jobs_created"] == expected_jobs[provider], provider

    # over budget: 402, which the SDK does not retry (sent exactly once, with retries enabled)
    tenants.org_a.monthly_budget = Decimal("0.01")
    tenants.org_a.save()
    for name, _, size, seconds, provider, _ in PROVIDER_CASES:
        transport = RecordingTransport()
        budgeted = _sdk(live_server, tenants.alice_token, transport, max_retries=2)
        with pytest.raises(openai.APIStatusError) as info:
            budgeted.videos.create(model=name, prompt="over budget", size=size, seconds=seconds)
        assert info.value.status_code == 402 and info.value.code == "org_budget_exceeded", provider
        assert info.value.type == "insufficient_quota"
        assert transport.count("POST", "/v1/videos") == 1, provider
    assert not Generation.all_orgs.filter(prompt="over budget").exists()
    charges = Counter(UsageEntry.all_orgs.filter(kind="charge").values_list("provider", flat=True))
    assert charges == expected_jobs
