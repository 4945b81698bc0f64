"""The input-image validator: a file that declares a huge picture (an image bomb) is refused from
its header, before anything is decoded, and every refusal is an ApplicationError (a 400), never a
500. The upload is written to storage outside the transaction that locks the organization's row.

Memory is measured, not time: peak resident memory (Linux VmHWM, reset before the block) and
Python's allocations (tracemalloc). Pillow allocates pixels with malloc, which tracemalloc does not
see, so the resident peak is the figure that catches a decode."""

from __future__ import annotations

import ctypes
import gc
import io
import struct
import threading
import tracemalloc
import warnings
import zlib
from contextlib import contextmanager
from decimal import Decimal
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.db import DatabaseError, close_old_connections, connection, transaction
from PIL import Image, ImageFile

from apps.billing.models import UsageEntry
from apps.core.errors import ApplicationError, PaymentRequired
from apps.core.scoping import org_scope
from apps.generations import engine, images, services, storage
from apps.generations.models import Generation
from tests.emulators.base import sample_image

MB = 1024 * 1024
# the largest image the default limits accept: 8192 px wide and at most 40 000 000 pixels
LARGEST = (8192, 40_000_000 // 8192)


# --- crafted images ---------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@cache
def png(width: int, height: int, mode: str = "1") -> bytes:
    """A complete, valid PNG of one colour, written chunk by chunk: a 20000 x 20000 one is ~50 KB
    on disk and 400 MB once decoded. ``mode``: "1" (1-bit grey), "L" (8-bit grey), "RGB", "RGBA"."""
    color_type, bit_depth, channels = {"1": (0, 1, 1), "L": (0, 8, 1), "RGB": (2, 8, 3), "RGBA": (6, 8, 4)}[mode]
    row = b"\0" * (1 + (width * channels * bit_depth + 7) // 8)  # filter byte + zero pixels
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small baseline JPEG whose frame header (SOF0) is rewritten to declare ``width x height``."""
    data = bytearray(sample_image("JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def webp_declaring(width: int, height: int) -> bytes:
    """A small lossy WebP whose VP8 frame header is rewritten to declare ``width x height``."""
    data = bytearray(sample_image("WEBP"))
    assert data[12:16] == b"VP8 " and data[23:26] == b"\x9d\x01\x2a"
    struct.pack_into("<HH", data, 26, width, height)
    return bytes(data)


def gif_declaring(width: int, height: int) -> bytes:
    """A small GIF whose logical screen is rewritten to declare ``width x height``."""
    data = bytearray(sample_image("GIF"))
    struct.pack_into("<HH", data, 6, width, height)
    return bytes(data)


def real_image(fmt: str, size: tuple[int, int], mode: str = "RGB", **options) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 90).save(out, format=fmt, **options)
    return out.getvalue()


BOMBS = {
    # above Pillow's own error limit (2 x MAX_IMAGE_PIXELS): this used to raise, a 500
    "png 20000x20000 (400 MP)": lambda: png(20000, 20000),
    # above Pillow's warning limit, below its error: the warning is an error here
    "png 10000x10000 (100 MP)": lambda: png(10000, 10000),
    # below Pillow's limits, above ours: this one used to be decoded (324 MB) before being refused
    "png rgb 9000x9000 (81 MP)": lambda: png(9000, 9000, "RGB"),
    "png 8000x8000 (sides fine, 64 MP)": lambda: png(8000, 8000),
    "png 8193x16 (too wide)": lambda: png(8193, 16),
    "jpeg 20000x20000": lambda: jpeg_declaring(20000, 20000),
    "jpeg 8000x8000": lambda: jpeg_declaring(8000, 8000),
    "webp 16383x16383": lambda: webp_declaring(16383, 16383),
    "webp 9000x9000": lambda: webp_declaring(9000, 9000),
    "gif 20000x20000": lambda: gif_declaring(20000, 20000),
}


# --- measuring --------------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


@contextmanager
def peak_memory():
    """``.rss``: growth of the resident peak over the block; ``.python``: tracemalloc's peak."""
    gc.collect()
    # hand freed heap back to the kernel first: memory an earlier test freed but glibc kept would
    # otherwise be reused without the resident size growing, and the peak would read too low
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux)
    base = _status_kb("VmRSS") * 1024
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    result = SimpleNamespace(rss=0, python=0)
    try:
        yield result
    finally:
        result.python = tracemalloc.get_traced_memory()[1]
        if not tracing:
            tracemalloc.stop()
        result.rss = _status_kb("VmHWM") * 1024 - base


@pytest.fixture
def decodes(monkeypatch):
    """Counts pixel decodes (every format's load goes through ImageFile.load)."""
    calls = []
    real_load = ImageFile.ImageFile.load

    def load(self):
        calls.append(self.format)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return calls


@pytest.fixture
def media(settings, tmp_path):
    """The default storage in a temporary directory, removed after the test."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "allow_overwrite": True},
        },
    }
    return tmp_path / "media"


def stored_inputs(media: Path) -> list[str]:
    return sorted(p.name for p in media.glob("orgs/*/inputs/*"))


# --- the validator ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_bomb_is_refused_from_its_header_without_decoding(name, decodes):
    data = BOMBS[name]()
    assert len(data) < 400 * 1024  # small files, all of them
    with pytest.raises(ApplicationError) as info:
        images.validate_image(data, None)
    assert info.value.param == "input_reference" and info.value.status_code == 400
    if name.startswith("gif"):
        assert "could not be read" in info.value.message  # not an accepted format: never parsed
    else:
        assert info.value.code == "image_too_large"
        limit = (
            "for WebP images is 8192 pixels on each side and 10"
            if name == "webp 9000x9000"
            else "is 8192 pixels on each side and 40"
        )
        assert f"the limit {limit} megapixels in all" in info.value.message
    assert decodes == []


def test_a_bomb_that_pillow_would_decode_keeps_memory_low():
    """81 megapixels is under Pillow's own limit: decoded, it takes 324 MB. Refused from its
    header, the peak stays a few MB above the file itself."""
    data = png(9000, 9000, "RGB")
    with peak_memory() as peak, pytest.raises(ApplicationError, match="9000x9000 pixels"):
        images.validate_image(data, "image/png")
    assert peak.rss < 50 * MB, peak
    assert peak.python < 50 * MB, peak


def test_the_largest_accepted_image_is_decoded_and_accepted(decodes):
    data = png(*LARGEST, mode="L")
    with peak_memory() as peak:
        assert images.validate_image(data, "image/png") == (data, "image/png", "png")
    assert decodes == ["PNG"]  # it was decoded in full: truncated pixel data is caught
    assert 30 * MB < peak.rss < 120 * MB, peak  # 40 MB of 8-bit pixels, within the bound

    width, height = LARGEST
    with pytest.raises(ApplicationError, match="limit is 8192 pixels"):
        images.validate_image(png(width, height + 1, mode="L"), None)  # one row more: 40.0 MP + 8192


def test_the_largest_accepted_webp_is_a_quarter_of_the_pixels(decodes):
    """libwebp's decoder keeps two canvases besides Pillow's copy: a WebP gets a quarter of the
    pixels, which keeps its decode within the same memory as the largest PNG."""
    width, height = 4096, 10_000_000 // 4096
    data = real_image("WEBP", (width, height), "RGBA", lossless=True)
    with peak_memory() as peak:
        assert images.validate_image(data, "image/webp") == (data, "image/webp", "webp")
    assert decodes == ["WEBP"]
    assert peak.rss < 200 * MB, peak
    with pytest.raises(ApplicationError, match="the limit for WebP images is 8192 pixels on each side and 10 mega"):
        images.validate_image(webp_declaring(width, height + 1), None)
    assert decodes == ["WEBP"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_every_format_is_held_to_the_limits(fmt, settings, decodes):
    settings.INPUT_IMAGE_MAX_SIDE = 64
    settings.INPUT_IMAGE_MAX_PIXELS = 64 * 32 * images.PIXEL_COST.get(fmt, 1)
    content_type, extension = images.IMAGE_TYPES[fmt]
    data = real_image(fmt, (64, 32))
    assert images.validate_image(data, content_type) == (data, content_type, extension)
    assert decodes == [fmt]
    for size, message in [
        ((65, 16), "65x16 pixels; the limit( for WebP images)? is 64 pixels on each side and 0.002048 megapixels"),
        ((16, 65), "16x65 pixels"),
        ((64, 33), "64x33 pixels"),
        ((15, 40), "at least 16 pixels on each side"),
    ]:
        with pytest.raises(ApplicationError, match=message) as info:
            images.validate_image(real_image(fmt, size), None)
        assert info.value.param == "input_reference"
    assert decodes == [fmt]  # none of the refused ones was decoded


def test_a_16_bit_rgba_png_within_the_limits_is_accepted():
    out = io.BytesIO()
    Image.new("RGBA", (32, 32), (1, 2, 3, 4)).save(out, format="PNG")
    assert images.validate_image(out.getvalue(), None)[1:] == ("image/png", "png")


@pytest.mark.parametrize(
    ("data", "declared", "message"),
    [
        (b"GIF89a not really an image", "image/png", "could not be read"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png", "could not be read"),  # truncated PNG
        (png(64, 64, "RGB")[:-40], "image/png", "could not be read"),  # pixel data cut short
        (real_image("JPEG", (512, 512))[:-200], None, "could not be read"),  # truncated JPEG
        (real_image("GIF", (64, 64)), None, "could not be read"),  # a real GIF: not accepted
        (real_image("BMP", (64, 64)), None, "could not be read"),  # nor any other format
        (None, "image/jpeg", "it is a PNG image"),  # a PNG that claims to be a JPEG
        (b"x" * (11 * MB), "image/png", "the limit is"),
        (b"<html><script>alert(1)</script></html>\x89PNG", "image/png", "could not be read"),  # polyglot
    ],
)
def test_images_are_checked_by_their_content(data, declared, message, settings):
    settings.INPUT_IMAGE_MAX_BYTES = 10 * MB
    with pytest.raises(ApplicationError, match=message) as info:
        images.validate_image(data if data is not None else sample_image("PNG"), declared)
    assert info.value.param == "input_reference"


def test_a_good_image_is_accepted_with_its_real_type():
    data = sample_image("WEBP")
    assert images.validate_image(data, "application/octet-stream") == (data, "image/webp", "webp")
    jpeg = sample_image("JPEG")
    assert images.validate_image(jpeg, "image/jpeg; charset=binary") == (jpeg, "image/jpeg", "jpg")


def test_no_global_state_is_left_changed():
    limit = Image.MAX_IMAGE_PIXELS
    filters = list(warnings.filters)
    with pytest.raises(ApplicationError):
        images.validate_image(png(10000, 10000), None)
    images.validate_image(sample_image("PNG"), None)
    assert Image.MAX_IMAGE_PIXELS == limit and warnings.filters == filters


# --- the create: the upload is written outside the organization's lock ------------------------


@pytest.fixture
def sora_key(tenants, settings, openai_emulator):
    from apps.accounts.models import Membership
    from apps.api_keys import services as key_services

    settings.OPENAI_BASE_URL = openai_emulator.base_url
    with org_scope(tenants.org_a):
        key_services.provider_key_create(
            by=Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a),
            provider="sora",
            api_key=openai_emulator.api_key,
        )


def _create_with_image(tenants, **kw):
    request = services.GenerationRequest(
        model="sora-2", prompt="a fox", seconds=4, size="1280x720", image=sample_image("PNG")
    )
    with org_scope(tenants.org_a):
        return services.generation_create(org=tenants.org_a, user=tenants.alice, request=request, **kw)


def _org_row_is_free(org_pk: int) -> bool:
    """Whether another connection can lock the organization's row right now (PostgreSQL)."""
    from apps.accounts.models import Organization

    outcome = []

    def probe():
        try:
            with transaction.atomic():
                Organization.objects.select_for_update(nowait=True).get(pk=org_pk)
            outcome.append(True)
        except DatabaseError:  # could not obtain lock on row
            outcome.append(False)
        finally:
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(timeout=30)
    return outcome == [True]


@pytest.mark.django_db(transaction=True)
def test_the_image_is_written_before_the_org_row_is_locked(tenants, sora_key, media, monkeypatch):
    writes = []
    real_save_stream = storage.save_stream

    def recording_save_stream(key, chunks, **kw):
        writes.append(
            {
                "key": key,
                "in_transaction": connection.in_atomic_block,
                "row_free": _org_row_is_free(tenants.org_a.pk) if connection.vendor == "postgresql" else None,
            }
        )
        return real_save_stream(key, chunks, **kw)

    monkeypatch.setattr(storage, "save_stream", recording_save_stream)
    monkeypatch.setattr(engine, "schedule", lambda *a, **k: None)  # no worker here
    gen = _create_with_image(tenants)
    assert [w["key"] for w in writes] == [gen.input_image]
    assert writes[0]["in_transaction"] is False
    if connection.vendor == "postgresql":
        assert writes[0]["row_free"] is True
    assert stored_inputs(media) == [Path(gen.input_image).name]
    assert UsageEntry.all_orgs.get(generation=gen).amount == gen.estimated_cost > 0


def test_a_refused_create_leaves_no_image_behind(tenants, sora_key, media):
    """Over budget on a priced model: no generation, no hold, and the image written before the
    lock was taken is deleted again."""
    tenants.org_a.monthly_budget = Decimal("0.01")
    tenants.org_a.save()
    with pytest.raises(PaymentRequired):
        _create_with_image(tenants)
    assert not Generation.all_orgs.exists() and not UsageEntry.all_orgs.exists()
    assert stored_inputs(media) == []


def test_an_idempotent_replay_keeps_only_the_first_image(tenants, sora_key, media, monkeypatch):
    monkeypatch.setattr(engine, "schedule", lambda *a, **k: None)
    first = _create_with_image(tenants, idempotency_key="once")
    again = _create_with_image(tenants, idempotency_key="once")
    assert again.pk == first.pk
    assert stored_inputs(media) == [Path(first.input_image).name]
    held = [e.amount for e in UsageEntry.all_orgs.filter(generation=first, kind="hold")]
    assert held == [first.estimated_cost] and first.estimated_cost > 0  # one hold, not two
