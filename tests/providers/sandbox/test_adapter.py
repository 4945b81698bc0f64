"""The sandbox provider: stateless lifecycle from the job id, and a real, decodable MP4."""

from __future__ import annotations

import io
import time

import av
import pytest
from PIL import Image

from apps.providers import registry
from apps.providers.base import GenerationSpec, JobState, ProviderError
from apps.providers.catalog import estimate_cost, get_model
from apps.providers.sandbox import adapter as sandbox
from apps.providers.sandbox.adapter import SandboxJob, SandboxProvider


@pytest.fixture
def provider():
    return registry.build("sandbox", None)


@pytest.fixture
def clock(monkeypatch):
    """The sandbox's clock, moved by hand."""
    now = [time.time()]
    monkeypatch.setattr(sandbox.time, "time", lambda: now[0])
    return now


def spec(**kwargs):
    values = {"model": "sandbox-video", "prompt": "a lighthouse at dawn", "seconds": 2, "size": "1280x720"}
    return GenerationSpec(**{**values, **kwargs})


def test_sandbox_needs_no_key_and_costs_nothing(provider):
    assert provider.requires_key is False
    provider.validate_key()
    assert estimate_cost(get_model("sandbox-video"), seconds=12, size="720x1280") == 0


def test_lifecycle_is_computed_from_the_job_id(provider, clock, settings):
    settings.SANDBOX_JOB_SECONDS = 10
    job_id = provider.submit(spec())
    assert provider.status(job_id).state is JobState.QUEUED
    clock[0] += 6  # 20 % queued, then progress over the remaining 8 s
    running = provider.status(job_id)
    assert running.state is JobState.IN_PROGRESS and running.progress == 50
    assert running.poll_after == 1.0
    # any other process (a fresh adapter) sees the same thing
    assert SandboxProvider(None, "").status(job_id).progress == 50
    clock[0] += 4
    done = provider.status(job_id)
    assert done.state is JobState.COMPLETED and done.progress == 100


def test_job_length_is_fixed_at_submit(provider, clock, settings):
    settings.SANDBOX_JOB_SECONDS = 2
    job_id = provider.submit(spec())
    settings.SANDBOX_JOB_SECONDS = 100
    clock[0] += 2
    assert provider.status(job_id).state is JobState.COMPLETED


def test_fail_marker_ends_failed(provider, clock, settings):
    settings.SANDBOX_JOB_SECONDS = 4
    job_id = provider.submit(spec(prompt="demo the error path [FAIL] please"))
    assert provider.status(job_id).state is JobState.QUEUED
    clock[0] += 2
    failed = provider.status(job_id)
    assert failed.state is JobState.FAILED
    assert "[fail]" in failed.error_message and failed.error_code == "sandbox_failure"
    with pytest.raises(ProviderError) as info:
        provider.download(job_id)
    assert info.value.code == "not_ready" and info.value.permanent


def test_job_ids_stay_short_with_long_prompts(provider):
    for prompt in ("x" * 5000, "€" * 5000, "🎬" * 5000, ""):
        job_id = provider.submit(spec(prompt=prompt))
        assert len(job_id) <= 255
        assert SandboxJob.decode(job_id).prompt == prompt[: len(SandboxJob.decode(job_id).prompt)]
    assert provider.submit(spec()) != provider.submit(spec())  # a nonce: same request, new job


@pytest.mark.parametrize("job_id", ["", "video_123", "sbx_!!!", "sbx_e30", "sbx_" + "A" * 300])
def test_bad_job_ids_are_not_found(provider, job_id):
    with pytest.raises(ProviderError) as info:
        provider.status(job_id)
    assert info.value.code == "not_found" and info.value.permanent


def test_forged_job_ids_are_validated(provider):
    forged = SandboxJob(created_ms=0, job_seconds=0, seconds=3600, size="1280x720", prompt="", fail=False, nonce="0")
    with pytest.raises(ProviderError):
        provider.download(forged.encode())


def test_download_before_completion_is_refused(provider, settings):
    settings.SANDBOX_JOB_SECONDS = 60
    job_id = provider.submit(spec())
    with pytest.raises(ProviderError) as info:
        provider.download(job_id)
    assert info.value.code == "not_ready" and not info.value.permanent


def _finished(provider, clock, **kwargs):
    job_id = provider.submit(spec(**kwargs))
    clock[0] += 60
    assert provider.status(job_id).state is JobState.COMPLETED
    return job_id


@pytest.mark.parametrize(("seconds", "size", "dims"), [(2, "1280x720", (320, 180)), (4, "720x1280", (180, 320))])
def test_download_is_a_real_h264_aac_mp4(provider, clock, seconds, size, dims):
    job_id = _finished(provider, clock, seconds=seconds, size=size)
    with provider.download(job_id) as download:
        chunks = list(download.chunks)
    data = b"".join(chunks)
    assert download.content_type == "video/mp4" and download.content_length == len(data)
    assert len(chunks) >= 1 and all(len(c) <= sandbox.CHUNK for c in chunks)

    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert audio.codec_context.name == "aac"
        assert (video.codec_context.width, video.codec_context.height) == dims
        assert container.duration / 1_000_000 == pytest.approx(seconds, abs=0.25)
        assert float(video.duration * video.time_base) == pytest.approx(seconds, abs=0.1)
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == dims
    with av.open(io.BytesIO(data)) as container:
        sound = next(container.decode(audio=0))
        assert sound.samples > 0 and sound.sample_rate == sandbox.SAMPLE_RATE


def test_the_video_moves_and_has_sound(provider, clock):
    job_id = _finished(provider, clock, seconds=2)
    with provider.download(job_id) as download:
        data = b"".join(download.chunks)
    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_image() for f in container.decode(video=0)]
    assert len(frames) == 2 * sandbox.FPS
    assert frames[0].tobytes() != frames[-1].tobytes()  # a moving pattern, not a still
    with av.open(io.BytesIO(data)) as container:
        peak = 0.0
        for frame in container.decode(audio=0):
            plane = memoryview(bytes(frame.planes[0])).cast("f")
            peak = max(peak, max(abs(v) for v in plane[: frame.samples]))
    assert peak > 0.1  # a tone, not silence


def test_thumbnail_variant_is_a_jpeg(provider, clock):
    job_id = _finished(provider, clock)
    with provider.download(job_id, variant="thumbnail") as download:
        data = b"".join(download.chunks)
    assert download.content_type == "image/jpeg"
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.size == (320, 180)


def test_remix_keeps_length_and_size(provider, clock):
    source = _finished(provider, clock, seconds=4, size="720x1280")
    remixed = provider.remix(source, spec(prompt="now at night", seconds=2, size="1280x720"))
    job = SandboxJob.decode(remixed)
    assert (job.seconds, job.size, job.prompt) == (4, "720x1280", "now at night")
    assert provider.submit(spec(remix_of=source, prompt="again")) != remixed


def test_rendering_is_fast():
    started = time.perf_counter()
    sandbox.render_mp4("timing " * 20, 4, "1280x720")
    assert time.perf_counter() - started < 3.0


def test_sandbox_can_be_disabled(settings):
    settings.SANDBOX_PROVIDER_ENABLED = False
    with pytest.raises(registry.ProviderDisabled):
        registry.build("sandbox", None)
