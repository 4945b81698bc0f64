"""The sandbox provider: real MP4s rendered locally, no key, zero cost.

It makes the quick start and browser tests work end to end with no external service.

Stateless by design, so any worker process can answer for any job: the job id carries everything
(``sbx_`` + base64url of a compact JSON payload: created time in ms, simulated job length,
seconds, size, a nonce, a fail flag and the prompt, truncated so the id stays within 255 chars).
The payload is not signed: job ids come from MediaRouter's own database, and every decoded value
is validated before use, so a forged id can at worst render another test pattern.

Lifecycle (``SANDBOX_JOB_SECONDS``, default 6): ``queued`` for the first 20 %, then
``in_progress`` with linear progress, then ``completed``. A prompt containing ``[fail]`` ends
``failed`` halfway through, for demos of the failure path.

The video is H.264 + AAC in MP4 (moov first), rendered with PyAV and Pillow: scrolling colour bars,
a bouncing box, a timecode, the prompt as text, and a 440 Hz tone. It is scaled down so the long
side is 320 px, 15 fps; a 4 s clip renders in about 0.1 s.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import secrets
import struct
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO

import av
from django.conf import settings
from PIL import Image, ImageDraw, ImageFont

from apps.providers.base import Download, GenerationSpec, JobState, JobStatus, ProviderError, VideoProvider

JOB_PREFIX = "sbx_"
MAX_JOB_ID = 255
MAX_SECONDS = 20
RENDER_LONG_SIDE = 320
FPS = 15
SAMPLE_RATE = 44100
TONE_HZ = 440.0
CHUNK = 64 * 1024
QUEUE_FRACTION = 0.2
FAIL_MARKER = "[fail]"
DEFAULT_JOB_SECONDS = 6.0

_BARS = [
    (192, 192, 192),
    (192, 192, 0),
    (0, 192, 192),
    (0, 192, 0),
    (192, 0, 192),
    (192, 0, 0),
    (0, 0, 192),
]


@dataclass(frozen=True)
class SandboxJob:
    created_ms: int
    job_seconds: float
    seconds: int
    size: str
    prompt: str
    fail: bool
    nonce: str

    def encode(self) -> str:
        """The job id; the prompt is shortened until the id fits in 255 characters."""
        prompt = self.prompt
        while True:
            payload = {
                "t": self.created_ms,
                "d": self.job_seconds,
                "s": self.seconds,
                "z": self.size,
                "n": self.nonce,
                "f": int(self.fail),
                "p": prompt,
            }
            raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            job_id = JOB_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")
            if len(job_id) <= MAX_JOB_ID:
                return job_id
            prompt = prompt[: max(len(prompt) - max(len(prompt) // 8, 1), 0)]

    @classmethod
    def decode(cls, job_id: str) -> SandboxJob:
        if not job_id.startswith(JOB_PREFIX) or len(job_id) > MAX_JOB_ID:
            raise _not_found(job_id)
        body = job_id[len(JOB_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            payload = json.loads(raw)
            job = cls(
                created_ms=int(payload["t"]),
                job_seconds=float(payload["d"]),
                seconds=int(payload["s"]),
                size=str(payload["z"]),
                prompt=str(payload["p"]),
                fail=bool(payload["f"]),
                nonce=str(payload["n"]),
            )
        except (binascii.Error, ValueError, TypeError, KeyError):
            raise _not_found(job_id) from None
        try:
            parse_size(job.size)
        except ValueError:
            raise _not_found(job_id) from None
        if not (0 < job.seconds <= MAX_SECONDS and 0 <= job.job_seconds <= 3600):
            raise _not_found(job_id)
        return job


def _not_found(job_id: str) -> ProviderError:
    return ProviderError(f"No sandbox job {job_id[:40]!r}.", code="not_found", permanent=True, status_code=404)


def parse_size(size: str) -> tuple[int, int]:
    width, _, height = size.partition("x")
    w, h = int(width), int(height)
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise ValueError(size)
    return w, h


def render_dimensions(size: str) -> tuple[int, int]:
    """The requested size scaled so its long side is 320 px, both sides even (yuv420p)."""
    w, h = parse_size(size)
    scale = RENDER_LONG_SIDE / max(w, h)
    return max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _background(width: int, height: int) -> Image.Image:
    """Colour bars twice as wide as the frame, so scrolling is a crop."""
    img = Image.new("RGB", (width * 2, height))
    draw = ImageDraw.Draw(img)
    bar = width / len(_BARS)
    for i in range(len(_BARS) * 2):
        x0 = round(i * bar)
        draw.rectangle([x0, 0, round((i + 1) * bar), height], fill=_BARS[i % len(_BARS)])
    return img


def _caption(prompt: str, width: int, height: int) -> Image.Image:
    """The prompt, wrapped, on a dark band (RGBA, pasted onto every frame)."""
    font_px = max(10, height // 14)
    font = _font(font_px)
    chars = max(12, int(width / (font_px * 0.55)))
    lines = textwrap.wrap(prompt, width=chars)[:3] or ["(empty prompt)"]
    if len(textwrap.wrap(prompt, width=chars)) > 3:
        lines[-1] = lines[-1][: max(chars - 1, 1)] + "…"
    band_h = (font_px + 4) * len(lines) + 8
    band = Image.new("RGBA", (width, band_h), (0, 0, 0, 170))
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        draw.text((6, 4 + i * (font_px + 4)), line, font=font, fill=(255, 255, 255, 255))
    return band


def _frame(background: Image.Image, caption: Image.Image, index: int, width: int, height: int) -> Image.Image:
    offset = (index * 4) % width
    img = background.crop((offset, 0, offset + width, height))
    draw = ImageDraw.Draw(img)
    box = max(8, height // 6)
    period = max(width - box, 1)
    x = abs((index * 6) % (2 * period) - period)
    y = height // 4 + round(math.sin(index / 5) * height / 10)
    draw.rectangle([x, y, x + box, y + box], fill=(255, 255, 255), outline=(0, 0, 0))
    font = _font(max(10, height // 12))
    seconds = index / FPS
    draw.text((6, 4), f"MediaRouter sandbox  {seconds:05.2f}s", font=font, fill=(0, 0, 0))
    img.paste(caption, (0, height - caption.height), caption)
    return img


def render_mp4(prompt: str, seconds: int, size: str) -> bytes:
    """A real H.264/AAC MP4 of ``seconds`` seconds (moov atom first, so browsers start quickly)."""
    width, height = render_dimensions(size)
    background = _background(width, height)
    caption = _caption(prompt, width, height)
    with tempfile.TemporaryDirectory(prefix="mr-sandbox-") as tmp:
        path = os.path.join(tmp, "video.mp4")
        container = av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"})
        try:
            video = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "30"})
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            audio = container.add_stream("aac", rate=SAMPLE_RATE)
            audio.layout = "mono"
            for index in range(seconds * FPS):
                frame = av.VideoFrame.from_image(_frame(background, caption, index, width, height))
                frame.pts = index
                container.mux(video.encode(frame))
            container.mux(video.encode())
            for frame in _tone(seconds):
                container.mux(audio.encode(frame))
            container.mux(audio.encode())
        finally:
            container.close()
        with open(path, "rb") as fh:
            return fh.read()


def _tone(seconds: int) -> Iterator[av.AudioFrame]:
    per_frame = 1024
    total = seconds * SAMPLE_RATE
    step = 2 * math.pi * TONE_HZ / SAMPLE_RATE
    for start in range(0, total, per_frame):
        count = min(per_frame, total - start)
        samples = [0.2 * math.sin(step * (start + k)) for k in range(count)]
        frame = av.AudioFrame(format="fltp", layout="mono", samples=count)
        frame.sample_rate = SAMPLE_RATE
        frame.planes[0].update(struct.pack(f"<{count}f", *samples))
        frame.pts = start
        yield frame


def render_thumbnail(prompt: str, size: str) -> bytes:
    """A JPEG of the first frame."""
    width, height = render_dimensions(size)
    img = _frame(_background(width, height), _caption(prompt, width, height), 0, width, height)
    out = BytesIO()
    img.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


class SandboxProvider(VideoProvider):
    slug = "sandbox"
    label = "Sandbox"
    requires_key = False
    supports_remix = True
    supports_delete = True
    supports_thumbnail = True
    key_fields = ()
    key_shapes = ()

    def _job_seconds(self) -> float:
        return float(getattr(settings, "SANDBOX_JOB_SECONDS", DEFAULT_JOB_SECONDS))

    def validate_key(self) -> None:
        return None

    def submit(self, spec: GenerationSpec) -> str:
        if spec.remix_of:
            return self.remix(spec.remix_of, spec)
        try:
            parse_size(spec.size)
        except ValueError:
            raise ProviderError(f"Size {spec.size!r} is not WxH.", code="invalid_request", permanent=True) from None
        if not 0 < spec.seconds <= MAX_SECONDS:
            raise ProviderError(
                f"The sandbox renders 1 to {MAX_SECONDS} seconds.", code="invalid_request", permanent=True
            )
        job = SandboxJob(
            created_ms=int(time.time() * 1000),
            job_seconds=self._job_seconds(),
            seconds=spec.seconds,
            size=spec.size,
            prompt=spec.prompt[:120],
            fail=FAIL_MARKER in spec.prompt.lower(),
            nonce=secrets.token_hex(3),
        )
        return job.encode()

    def remix(self, job_id: str, spec: GenerationSpec) -> str:
        source = SandboxJob.decode(job_id)
        return self.submit(
            GenerationSpec(model=spec.model, prompt=spec.prompt, seconds=source.seconds, size=source.size)
        )

    def status(self, job_id: str, *, job_data=None) -> JobStatus:
        job = SandboxJob.decode(job_id)
        elapsed = time.time() - job.created_ms / 1000
        length = job.job_seconds
        poll_after = max(min(length / 10, 1.0), 0.05)
        if job.fail and elapsed >= length / 2:
            return JobStatus(
                state=JobState.FAILED,
                raw_status="failed",
                error_code="sandbox_failure",
                error_message="The sandbox failed this job on purpose: the prompt contains [fail].",
            )
        if elapsed >= length:
            return JobStatus(state=JobState.COMPLETED, progress=100, raw_status="completed")
        if elapsed < length * QUEUE_FRACTION:
            return JobStatus(state=JobState.QUEUED, progress=0, raw_status="queued", poll_after=poll_after)
        done = (elapsed - length * QUEUE_FRACTION) / (length * (1 - QUEUE_FRACTION))
        return JobStatus(
            state=JobState.IN_PROGRESS,
            progress=max(0, min(99, int(done * 100))),
            raw_status="in_progress",
            poll_after=poll_after,
        )

    def download(self, job_id: str, *, url: str | None = None, variant: str = "video", job_data=None) -> Download:
        job = SandboxJob.decode(job_id)
        current = self.status(job_id)
        if current.state is not JobState.COMPLETED:
            raise ProviderError(
                f"The sandbox job is {current.raw_status}; nothing to download.",
                code="not_ready",
                permanent=current.state.is_terminal,
            )
        if variant == "thumbnail":
            data, content_type = render_thumbnail(job.prompt, job.size), "image/jpeg"
        elif variant == "video":
            data, content_type = render_mp4(job.prompt, job.seconds, job.size), "video/mp4"
        else:
            raise ProviderError(f"Unknown download variant {variant!r}.", code="unsupported", permanent=True)
        return Download(chunks=_chunks(data), content_type=content_type, content_length=len(data))

    def delete(self, job_id: str) -> None:
        SandboxJob.decode(job_id)  # nothing is stored, so there is nothing to delete
