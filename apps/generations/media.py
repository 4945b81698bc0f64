"""What a stored video really is: probe it, give it a poster, and compare it with the request.

Called once by ``engine.generation_download`` after the video is stored and before the job is
completed (:func:`inspect_stored`), and by the ``backfill_posters`` command for videos stored
before this existed (:func:`backfill`). Both also read the file's C2PA content credentials
(:mod:`apps.generations.credentials`) through the same open file, after the probe.

- :func:`probe` opens the stored file with PyAV (FFmpeg) through the storage backend's file object
  (local file or S3), reads the container's header and decodes frames one at a time: memory stays
  constant whatever the size of the video, and decoding stops after ``POSTER_MAX_FRAMES``
  frames or ``PROBE_SECONDS`` of wall time.
- The poster is the frame at 10 % of the duration (at least 0.5 s in, when the video is that long),
  scaled to at most ``POSTER_MAX_WIDTH`` px wide, as WebP next to the video
  (``storage.thumbnail_key``). A thumbnail the provider handed over is kept instead.
- :func:`mismatches` compares the figures with the request: a duration off by more than
  ``DURATION_TOLERANCE`` seconds, another width x height, no audio where the model promises it.

A file with no decodable video frame is not a video: the job fails without charge.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from fractions import Fraction
from io import BytesIO

import av
from PIL import Image

from apps.generations import credentials, storage
from apps.generations.models import Generation, State
from apps.providers.modelinfo import ModelInfo

logger = logging.getLogger(__name__)

POSTER_MAX_WIDTH = 640
POSTER_QUALITY = 80
POSTER_FRACTION = 0.10  # of the duration
POSTER_MIN_SECONDS = 0.5  # skip fades from black at the very start
DURATION_TOLERANCE = 0.5  # seconds
SIZE_TOLERANCE = 8  # px per side: encoders pad to macroblocks (1080 -> 1088)
POSTER_MAX_FRAMES = 600  # decoded after the seek, at most, looking for the poster frame
PROBE_SECONDS = 20.0  # wall time for the decode, at most (well inside the download lease)


class NotAVideo(Exception):
    """The stored file has no video stream FFmpeg can decode."""


@dataclass
class Probe:
    """What the stored file is, with the poster frame when one was asked for."""

    duration: float | None
    width: int
    height: int
    fps: float | None
    video_codec: str
    audio_codec: str | None
    has_audio: bool
    poster: Image.Image | None = field(default=None, repr=False)

    def as_json(self) -> dict:
        return {
            "duration": self.duration,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "video_codec": self.video_codec,
            "audio_codec": self.audio_codec,
            "has_audio": self.has_audio,
        }


def _seconds(value, time_base) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _duration(container, stream) -> float | None:
    """The video stream's duration, else the container's (microseconds), in seconds."""
    seconds = _seconds(stream.duration, stream.time_base)
    if seconds is None and container.duration is not None:
        seconds = container.duration / av.time_base
    return round(seconds, 3) if seconds is not None else None


def _poster_target(duration: float | None) -> float:
    if not duration:
        return 0.0
    target = duration * POSTER_FRACTION
    if duration > POSTER_MIN_SECONDS * 2:
        target = max(target, POSTER_MIN_SECONDS)
    return target


def probe(fileobj, *, want_poster: bool = True) -> Probe:
    """Probe ``fileobj`` (a seekable binary file) and decode its poster frame (the first frame
    when ``want_poster`` is false: a file that does not decode is :class:`NotAVideo` either way)."""
    max_frames, time_limit = POSTER_MAX_FRAMES, time.monotonic() + PROBE_SECONDS
    try:
        container = av.open(fileobj, mode="r")
    except av.FFmpegError as exc:  # FFmpeg's verdict on the bytes; a failing read (storage) propagates
        raise NotAVideo(f"not a media file: {exc.strerror or type(exc).__name__}") from None
    try:
        if not container.streams.video:
            raise NotAVideo("no video stream")
        stream = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = _duration(container, stream)
        rate = stream.average_rate or stream.guessed_rate
        frame = _decode_poster(
            container, stream, _poster_target(duration) if want_poster else 0.0, max_frames, time_limit
        )
        if frame is None:
            raise NotAVideo("no decodable video frame")
        width = stream.codec_context.width or frame.width
        height = stream.codec_context.height or frame.height
        poster = frame.to_image() if want_poster else None
        return Probe(
            duration=duration,
            width=int(width),
            height=int(height),
            fps=round(float(Fraction(rate)), 3) if rate else None,
            video_codec=stream.codec_context.name or "",
            audio_codec=(audio.codec_context.name or None) if audio is not None else None,
            has_audio=audio is not None,
            poster=poster,
        )
    finally:
        container.close()


def _decode_poster(container, stream, target: float, max_frames: int, time_limit: float):
    """The first frame at or after ``target`` seconds (the last one decoded if the video ends, or
    the limits are hit, before it); None when not a single frame decodes."""
    if target > 0:
        try:
            # to the keyframe at or before the target, then decode forward
            container.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
        except (av.FFmpegError, OverflowError, ValueError, ZeroDivisionError, TypeError):
            container.seek(0)
    last = None
    try:
        for decoded, frame in enumerate(container.decode(stream)):
            last = frame
            if frame.time is None or frame.time >= target - 1e-3:
                return frame
            if decoded >= max_frames or time.monotonic() > time_limit:
                break
    except av.FFmpegError as exc:
        logger.info("video stopped decoding: %s", exc)
    return last


def poster_bytes(image: Image.Image) -> bytes:
    """``image`` at most ``POSTER_MAX_WIDTH`` px wide (aspect kept), as WebP."""
    image = image.convert("RGB")
    if image.width > POSTER_MAX_WIDTH:
        height = max(1, round(image.height * POSTER_MAX_WIDTH / image.width))
        image = image.resize((POSTER_MAX_WIDTH, height), Image.Resampling.LANCZOS)
    out = BytesIO()
    image.save(out, format="WEBP", quality=POSTER_QUALITY, method=4)
    return out.getvalue()


def _parse_size(size: str) -> tuple[int, int] | None:
    width, _, height = (size or "").partition("x")
    try:
        return int(width), int(height)
    except ValueError:
        return None


def mismatches(
    *, probed: Probe | dict, seconds: int, size: str, model: ModelInfo | None, audio: bool | None
) -> list[dict]:
    """How ``probed`` differs from a request for ``seconds`` s at ``size`` (with ``audio``) on
    ``model``: a list of ``{"field", "asked", "delivered", "message"}``; empty when as asked."""
    figures = probed.as_json() if isinstance(probed, Probe) else probed
    found = []
    duration = figures.get("duration")
    if duration is not None and abs(duration - seconds) > DURATION_TOLERANCE:
        found.append(
            {
                "field": "duration",
                "asked": seconds,
                "delivered": duration,
                "message": f"{duration:g} s delivered, {seconds} s asked.",
            }
        )
    asked = _parse_size(size)
    width, height = figures.get("width"), figures.get("height")
    if asked and width and height and (model is None or model.delivers_requested_size):
        if abs(width - asked[0]) > SIZE_TOLERANCE or abs(height - asked[1]) > SIZE_TOLERANCE:
            found.append(
                {
                    "field": "size",
                    "asked": size,
                    "delivered": f"{width}x{height}",
                    "message": f"{width}x{height} delivered, {size} asked.",
                }
            )
    if model is not None and model.audio_for(audio) and not figures.get("has_audio"):
        found.append(
            {
                "field": "audio",
                "asked": True,
                "delivered": False,
                "message": "No audio track, though the model makes videos with sound.",
            }
        )
    return found


def _model_of(gen: Generation) -> ModelInfo | None:
    from apps.generations.resolve import generation_model

    return generation_model(gen)


def _save_poster(gen: Generation, image: Image.Image) -> str:
    return storage.save_bytes(
        storage.thumbnail_key(gen.organization.slug, gen.public_id, "webp"), poster_bytes(image)
    ).key


def inspect_stored(gen: Generation, video_key: str, thumbnail: str) -> str | None:
    """The download step's check of the stored video, before the job completes: probe it, keep
    the figures and the mismatches on the row, make a poster unless the provider gave one
    (``thumbnail``). Returns the poster's key (``""`` if none could be made), or None when the file
    is not a video: the generation has then been failed without charge (its hold released)."""
    from apps.generations import engine

    try:
        with storage.open_for_read(video_key) as fh:
            probed = probe(fh, want_poster=not thumbnail)
            found_credentials = read_credentials(fh)
    except NotAVideo as exc:
        storage.delete(video_key)
        storage.delete(thumbnail)
        engine.fail(
            gen, code="not_a_video", message=f"The provider's file does not decode as video ({exc}). No charge."
        )
        return None
    except Exception as exc:  # storage trouble while reading: never lose a delivered video over its check
        logger.exception("could not probe %s", gen.public_id)
        engine.note(gen, f"Could not probe the stored video: {type(exc).__name__}.")
        return thumbnail
    found = mismatches(probed=probed, seconds=gen.seconds, size=gen.size, model=_model_of(gen), audio=gen.audio)
    fields = {**probe_fields(probed.as_json(), found), "content_credentials": found_credentials}
    Generation.objects.filter(pk=gen.pk, state=State.DOWNLOADING).update(**fields)
    for name, value in fields.items():
        setattr(gen, name, value)
    if found:
        engine.note(gen, "Not as asked: " + " ".join(m["message"] for m in found))
    if note := credentials_note(found_credentials):
        engine.note(gen, note)
    if thumbnail or probed.poster is None:
        return thumbnail
    try:
        return _save_poster(gen, probed.poster)
    except Exception as exc:  # a poster is a nicety: the video completes without one
        logger.exception("could not store the poster of %s", gen.public_id)
        engine.note(gen, f"No poster: {type(exc).__name__}.")
        return ""


def probe_fields(media_probe: dict, found: list) -> dict:
    """The columns a probe writes: its figures and how the file differs from the request, and the
    two flags the usage report counts from an index (``output_probed``, ``output_flagged``). Every
    write of ``media_probe`` or ``output_mismatch`` goes through here, so the flags cannot drift."""
    return {
        "media_probe": media_probe,
        "output_mismatch": found,
        "output_probed": bool(media_probe),
        "output_flagged": bool(found),
    }


def read_credentials(fh) -> dict:
    """The C2PA summary of the open stored file (read from its start, after the probe): never
    raises, so a credential problem never fails the generation nor loses its probe."""
    return credentials.checked(credentials.read(fh))


def credentials_note(summary: dict) -> str:
    """The history line for what was found (empty when there are none)."""
    state = summary.get("state")
    if state in (None, credentials.NONE):
        return ""
    if state == credentials.UNREADABLE:
        return f"Content credentials could not be read: {summary.get('error')}"
    return f"Content credentials: issued by {summary.get('issuer') or 'an unknown signer'}, {state}."


@dataclass(frozen=True)
class BackfillResult:
    poster: bool  # a poster was (or, dry run, would be) made
    probed: bool  # figures were (or would be) recorded
    credentials: bool = False  # content credentials were (or would be) read


def backfill(gen: Generation, *, dry_run: bool = False) -> BackfillResult:
    """Give a completed, stored video what :func:`inspect_stored` would have: a poster if it has
    none, the probe figures and mismatches if they are missing, its content credentials if they
    were never read. Idempotent: a video that has all three is left alone. A file that does not
    decode keeps its state (it was delivered and charged). The stored file is only read."""
    need_poster = not gen.thumbnail_file
    need_probe = not gen.media_probe
    need_credentials = not gen.content_credentials
    if gen.state != State.COMPLETED or not gen.video_file or not (need_poster or need_probe or need_credentials):
        return BackfillResult(False, False)
    if dry_run:
        return BackfillResult(need_poster, need_probe, need_credentials)
    probed = None
    with storage.open_for_read(gen.video_file) as fh:
        if need_poster or need_probe:
            probed = probe(fh, want_poster=need_poster)
        found_credentials = read_credentials(fh) if need_credentials else None
    fields: dict = {}
    if found_credentials is not None:
        fields["content_credentials"] = found_credentials
    if need_probe:
        found = mismatches(probed=probed, seconds=gen.seconds, size=gen.size, model=_model_of(gen), audio=gen.audio)
        fields.update(probe_fields(probed.as_json(), found))
    if need_poster and probed.poster is not None:
        fields["thumbnail_file"] = _save_poster(gen, probed.poster)
    if fields:
        Generation.all_orgs.filter(pk=gen.pk).update(**fields)
    for name, value in fields.items():
        setattr(gen, name, value)
    return BackfillResult("thumbnail_file" in fields, need_probe, need_credentials)


def backfill_candidates():
    """Completed, stored videos without a poster, probe figures or read content credentials,
    oldest first, across organizations (for the operators' ``backfill_posters`` command); read in
    chunks."""
    from django.db.models import Q

    return (
        Generation.all_orgs.select_related("organization")
        .filter(state=State.COMPLETED, deleted_at=None)
        .exclude(video_file="")
        .filter(Q(thumbnail_file="") | Q(media_probe={}) | Q(content_credentials={}))
        .order_by("pk")
        .iterator(chunk_size=200)
    )


def verified(gen: Generation) -> dict | None:
    """The ``verified`` object of the native API (and the pages' badge): None until probed."""
    if not gen.media_probe:
        return None
    return {"as_requested": not gen.output_mismatch, "mismatches": list(gen.output_mismatch), **gen.media_probe}
