"""Posters and verified outputs (apps/generations/media.py): the probe, the poster frame, the
comparison with the request, the download step's use of them (a file that is not a video fails
without charge), each emulator's video, and the ``backfill_posters`` command."""

from __future__ import annotations

import io
import os
import tempfile
from decimal import Decimal

import av
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image

from apps.accounts.models import Membership
from apps.api_keys import services as key_services
from apps.billing.models import UsageEntry
from apps.core.scoping import org_scope
from apps.generations import media, services, storage
from apps.generations.models import Generation, GenerationEvent, State
from apps.generations.services import GenerationRequest
from apps.providers import catalog, registry
from apps.providers.sandbox import adapter as sandbox
from tests.emulators import emulator_class
from tests.emulators.base import padded_mp4
from tests.generations.helpers import assert_ledger_balanced, ledger_of, run_steps

pytestmark = pytest.mark.django_db

EMULATED = [slug for slug in registry.PROVIDERS if emulator_class(slug) is not None]


@pytest.fixture(autouse=True)
def fast_sandbox(settings):
    settings.SANDBOX_JOB_SECONDS = 0.2


def _poster_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _create(tenants, *, seconds=2, size="1280x720", prompt="a lighthouse at dusk", model="sandbox-video"):
    with org_scope(tenants.org_a):
        return services.generation_create(
            org=tenants.org_a,
            user=tenants.bob,
            request=GenerationRequest(model=model, prompt=prompt, seconds=seconds, size=size),
        )


def _video_only_mp4(seconds: int = 1, size: tuple[int, int] = (64, 48)) -> bytes:
    """An MP4 with a video stream and no audio."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "silent.mp4")
        with av.open(path, mode="w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
            for i in range(seconds * 10):
                frame = av.VideoFrame.from_image(Image.new("RGB", size, (i * 20 % 255, 80, 160)))
                frame.pts = i
                out.mux(stream.encode(frame))
            out.mux(stream.encode())
        with open(path, "rb") as fh:
            return fh.read()


# --- the probe and the poster ----------------------------------------------------------------


def test_the_sandbox_mp4_is_probed_and_gets_a_small_decodable_poster():
    data = sandbox.render_mp4("a red fox in fresh snow", 4, "1280x720")
    probed = media.probe(io.BytesIO(data))
    assert probed.as_json() == {
        "duration": 4.0,
        "width": 320,
        "height": 180,
        "fps": 15.0,
        "video_codec": "h264",
        "audio_codec": "aac",
        "has_audio": True,
    }
    poster = _poster_image(media.poster_bytes(probed.poster))
    assert poster.format == "WEBP" and poster.size == (320, 180)
    # the frame at 10 % of 4 s, not the first: the sandbox's box and bars have moved
    first = media.probe(io.BytesIO(data), want_poster=False)
    assert first.poster is None
    with av.open(io.BytesIO(data)) as container:
        frame0 = next(container.decode(video=0)).to_image()
    assert probed.poster.tobytes() != frame0.tobytes()


def test_a_wide_frame_is_scaled_to_640_pixels_keeping_its_aspect():
    poster = _poster_image(media.poster_bytes(Image.new("RGB", (1920, 1080), (10, 20, 30))))
    assert poster.size == (640, 360)
    assert _poster_image(media.poster_bytes(Image.new("RGB", (400, 300)))).size == (400, 300)


@pytest.mark.parametrize("slug", EMULATED)
def test_each_emulators_video_is_probed_with_a_poster(slug):
    """What each emulator serves as its video (``video_bytes`` padding included, as the drills use)."""
    emulator = emulator_class(slug)()
    for body in (emulator.video_response().body, padded_mp4(3 * 1024 * 1024)):
        data = body if isinstance(body, bytes) else b"".join(body)
        probed = media.probe(io.BytesIO(data))
        assert probed.duration == 2.0 and (probed.width, probed.height) == (320, 180) and probed.has_audio
        assert _poster_image(media.poster_bytes(probed.poster)).size == (320, 180)
    assert len(data) == 3 * 1024 * 1024


@pytest.mark.parametrize("data", [b"", b"<html>Access denied</html>" * 50, bytes(range(256)) * 64])
def test_bytes_that_are_not_a_video_are_refused(data):
    with pytest.raises(media.NotAVideo):
        media.probe(io.BytesIO(data))


# --- the comparison ----------------------------------------------------------------------------


def test_a_video_of_another_duration_is_flagged_and_one_as_asked_is_not():
    model = catalog.get_model("sandbox-video")  # promises sound
    probed = media.probe(io.BytesIO(sandbox.render_mp4("short", 2, "1280x720")), want_poster=False)
    assert media.mismatches(probed=probed, seconds=2, size="320x180", model=model, audio=None) == []
    found = media.mismatches(probed=probed, seconds=8, size="320x180", model=model, audio=None)
    assert found == [{"field": "duration", "asked": 8, "delivered": 2.0, "message": "2 s delivered, 8 s asked."}]
    # half a second either way is as asked
    assert (
        media.mismatches(
            probed={**probed.as_json(), "duration": 2.5}, seconds=2, size="320x180", model=model, audio=None
        )
        == []
    )
    # the sandbox declares it renders a preview size, so its size is not held against it...
    assert media.mismatches(probed=probed, seconds=2, size="1280x720", model=model, audio=None) == []
    # ...but a model that delivers the requested size is
    veo = catalog.get_model("fal/veo-3.1")
    assert [
        m["field"] for m in media.mismatches(probed=probed, seconds=2, size="1280x720", model=veo, audio=False)
    ] == ["size"]


def test_no_audio_is_flagged_only_where_the_model_promises_sound():
    probed = media.probe(io.BytesIO(_video_only_mp4(2)), want_poster=False)
    assert probed.has_audio is False and probed.audio_codec is None and probed.duration == 2.0
    with_sound = catalog.get_model("sandbox-video")
    assert [
        m["field"] for m in media.mismatches(probed=probed, seconds=2, size="64x48", model=with_sound, audio=None)
    ] == ["audio"]
    silent = next(m for m in catalog.list_models() if not m.has_audio)
    assert media.mismatches(probed=probed, seconds=2, size="64x48", model=silent, audio=None) == []
    switchable = catalog.get_model("vertex/veo-3.1")  # sound can be switched off
    assert switchable.audio_toggle
    assert media.mismatches(probed=probed, seconds=2, size="64x48", model=switchable, audio=False) == []
    assert [
        m["field"] for m in media.mismatches(probed=probed, seconds=2, size="64x48", model=switchable, audio=True)
    ] == ["audio"]


# --- in the download step ----------------------------------------------------------------------


def test_a_stored_video_keeps_its_figures_and_a_short_one_is_flagged(tenants, monkeypatch, priced_sandbox):
    real = sandbox.render_mp4
    monkeypatch.setattr(sandbox, "render_mp4", lambda prompt, seconds, size: real(prompt, 2, size))  # asked 4
    gen = run_steps(_create(tenants, seconds=4))
    assert gen.state == State.COMPLETED
    assert gen.media_probe["duration"] == 2.0 and gen.media_probe["has_audio"] is True
    fields = {m["field"]: m for m in gen.output_mismatch}
    assert fields["duration"]["asked"] == 4 and fields["duration"]["delivered"] == 2.0
    stored = Generation.all_orgs.get(pk=gen.pk)  # the usage report's columns, written with them
    assert stored.output_probed is True and stored.output_flagged is True
    assert GenerationEvent.all_orgs.filter(
        generation=gen, message__startswith="Not as asked: 2 s delivered, 4 s asked."
    ).exists()
    # the charge is what was asked (the sandbox bills per requested second, as every catalog entry)
    assert gen.final_cost == Decimal("2.0000")
    assert ledger_of(gen) == {
        "hold": [Decimal("2.0000")],
        "release": [Decimal("-2.0000")],
        "charge": [Decimal("2.0000")],
    }
    # the sandbox hands over its own thumbnail: kept
    assert gen.thumbnail_file.endswith(".jpg") and default_storage.exists(gen.thumbnail_file)


def test_without_a_provider_thumbnail_a_poster_is_extracted_next_to_the_video(tenants, monkeypatch):
    monkeypatch.setattr(sandbox.SandboxProvider, "supports_thumbnail", False)
    gen = run_steps(_create(tenants, seconds=2, size="720x1280"))
    assert gen.state == State.COMPLETED
    assert gen.thumbnail_file == storage.thumbnail_key(tenants.org_a.slug, gen.public_id, "webp")
    with default_storage.open(gen.thumbnail_file, "rb") as fh:
        poster = _poster_image(fh.read())
    assert poster.format == "WEBP" and poster.size == (180, 320)  # the render of 720x1280
    assert gen.media_probe["width"] == 180 and gen.media_probe["height"] == 320


def test_a_file_that_is_not_a_video_fails_without_charge(tenants, monkeypatch, priced_sandbox):
    monkeypatch.setattr(sandbox, "render_mp4", lambda prompt, seconds, size: b"<html>Access denied</html>" * 400)
    gen = _create(tenants, seconds=4)
    assert gen.estimated_cost == Decimal("2.0000")  # 4 s x $0.50
    gen = run_steps(gen)
    assert gen.state == State.FAILED and gen.error_code == "not_a_video"
    assert "No charge" in gen.error_message and gen.final_cost is None
    assert ledger_of(gen) == {"hold": [Decimal("2.0000")], "release": [Decimal("-2.0000")]}
    assert_ledger_balanced(gen)
    assert not gen.video_file and not gen.thumbnail_file
    assert not default_storage.exists(storage.video_key(tenants.org_a.slug, gen.public_id))  # not kept
    assert not UsageEntry.all_orgs.filter(generation=gen, kind="charge").exists()


def test_storage_trouble_reading_the_video_back_completes_it_unverified(tenants, monkeypatch, priced_sandbox):
    def broken(fileobj, *, want_poster=True):
        raise OSError("connection reset by the bucket")

    monkeypatch.setattr(media, "probe", broken)
    gen = run_steps(_create(tenants, seconds=2))
    assert gen.state == State.COMPLETED and gen.media_probe == {} and gen.output_mismatch == []
    assert gen.final_cost == Decimal("1.0000") and ledger_of(gen)["charge"] == [Decimal("1.0000")]
    assert GenerationEvent.all_orgs.filter(
        generation=gen, message="Could not probe the stored video: OSError."
    ).exists()
    assert gen.thumbnail_file.endswith(".jpg")  # the sandbox's own


@pytest.mark.parametrize("slug", EMULATED)
def test_each_emulators_video_gets_a_poster_and_its_figures(slug, tenants, settings):
    """The whole download step against each provider's emulator, in-process."""
    cls = emulator_class(slug)
    model = next(
        m
        for m in (catalog.get_model(f"{slug}/{name}") for name in cls.live_models)
        if catalog.TEXT_TO_VIDEO in m.capabilities
    )
    with cls(job_seconds=0.1) as emulator:
        for name, value in emulator.settings().items():
            setattr(settings, name, value)
        alice = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
        with org_scope(tenants.org_a):
            key_services.provider_key_create(by=alice, provider=slug, **emulator.key_fields())
        size = model.default_size if model.default_size in model.allowed_sizes(has_image=False) else model.sizes[0]
        gen = run_steps(_create(tenants, seconds=model.default_seconds, size=size, model=model.qualified_id))
    assert gen.state == State.COMPLETED, (gen.error_code, gen.error_message)
    with default_storage.open(gen.thumbnail_file, "rb") as fh:
        poster = _poster_image(fh.read())
    # the provider's own thumbnail where it has one (the Sora emulator's 64x36 image), else the frame
    assert poster.size == ((64, 36) if registry.get_provider_class(slug).supports_thumbnail else (320, 180))
    assert gen.media_probe["duration"] == 2.0 and gen.media_probe["video_codec"] == "h264"
    flagged = {m["field"] for m in gen.output_mismatch}
    assert ("duration" in flagged) == (abs(model.default_seconds - 2) > 0.5)
    assert "size" in flagged  # the sample is 320x180, whatever was asked


# --- the backfill command ----------------------------------------------------------------------


def test_backfill_posters_is_a_dry_run_first_then_idempotent(tenants):
    gen = run_steps(_create(tenants, seconds=2))
    storage.delete(gen.thumbnail_file)
    Generation.all_orgs.filter(pk=gen.pk).update(
        thumbnail_file="", media_probe={}, output_mismatch=[], content_credentials={}
    )
    failed = run_steps(_create(tenants, prompt="please [fail]"))
    assert failed.state == State.FAILED

    out = io.StringIO()
    call_command("backfill_posters", "--dry-run", stdout=out)
    assert f"would add poster, probe, credentials: {gen.public_id}" in out.getvalue()
    assert "would make 1 poster(s), 1 probe(s) and 1 credential read(s); 0 file(s) failed." in out.getvalue()
    gen.refresh_from_db()
    assert gen.thumbnail_file == "" and gen.media_probe == {} and gen.content_credentials == {}

    out = io.StringIO()
    call_command("backfill_posters", stdout=out)
    assert "made 1 poster(s), 1 probe(s) and 1 credential read(s)" in out.getvalue()
    gen.refresh_from_db()
    assert gen.thumbnail_file.endswith(".webp") and gen.media_probe["duration"] == 2.0
    assert gen.content_credentials["state"] == "none"  # the sandbox does not sign
    assert gen.output_mismatch == []  # 320x180: the sandbox's declared preview size, not a mismatch
    assert gen.output_probed is True and gen.output_flagged is False
    with default_storage.open(gen.thumbnail_file, "rb") as fh:
        assert _poster_image(fh.read()).size == (320, 180)

    out = io.StringIO()
    call_command("backfill_posters", stdout=out)
    assert out.getvalue().strip() == "made 0 poster(s), 0 probe(s) and 0 credential read(s); 0 file(s) failed."


def test_backfill_reports_a_stored_file_that_does_not_decode_and_leaves_it(tenants):
    gen = run_steps(_create(tenants, seconds=2))
    storage.save_bytes(gen.video_file, b"garbage" * 100)
    Generation.all_orgs.filter(pk=gen.pk).update(media_probe={})
    err = io.StringIO()
    call_command("backfill_posters", stdout=io.StringIO(), stderr=err)
    assert f"{gen.public_id}: does not decode as video" in err.getvalue()
    gen.refresh_from_db()
    assert gen.state == State.COMPLETED and gen.media_probe == {} and gen.video_file
