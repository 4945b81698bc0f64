"""The S3 path against a real S3 API: moto's standalone server, spoken to by boto3 through
django-storages, exactly as production talks to S3, MinIO or R2."""

from __future__ import annotations

import hashlib
import io
import socket
import subprocess
import time
import urllib.request
from decimal import Decimal

import boto3
import pytest
from django.core.files.storage import storages

from apps.core.scoping import org_scope
from apps.generations import services
from apps.generations.models import State
from tests.generations.helpers import assert_ledger_balanced, ledger_of, run_steps
from tests.utils import PYTHON

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

BUCKET = "mediarouter-test"
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    port = _free_port()
    proc = subprocess.Popen(
        [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("moto server did not start")
    boto3.client("s3", endpoint_url=endpoint, **CREDS).create_bucket(Bucket=BUCKET)
    yield endpoint
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3_storage(settings, moto_endpoint):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": moto_endpoint,
                "access_key": CREDS["aws_access_key_id"],
                "secret_key": CREDS["aws_secret_access_key"],
                "region_name": CREDS["region_name"],
                "default_acl": None,
                "file_overwrite": True,
                "querystring_auth": True,
                "querystring_expire": 60,
            },
        },
    }
    settings.SANDBOX_JOB_SECONDS = 0.2
    yield boto3.client("s3", endpoint_url=moto_endpoint, **CREDS)


def test_a_video_is_streamed_into_s3_and_served_by_a_short_lived_redirect(tenants, s3_storage):
    assert type(storages["default"]).__name__ == "S3Storage"
    with org_scope(tenants.org_a):
        gen = services.generation_create(
            org=tenants.org_a,
            user=tenants.bob,
            request=services.GenerationRequest(model="sandbox-video", prompt="into the bucket", seconds=2),
        )
    gen = run_steps(gen)
    assert gen.state == State.COMPLETED
    assert_ledger_balanced(gen)

    stored = s3_storage.get_object(Bucket=BUCKET, Key=gen.video_file)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == gen.sha256 and len(stored) == gen.bytes
    assert gen.video_file == f"orgs/{tenants.org_a.slug}/videos/{gen.public_id}.mp4"

    # members get a presigned redirect to the bucket, after the tenant check
    r = tenants.api_client_for(tenants.alice_token).get(f"/v1/videos/{gen.public_id}/content")
    assert (
        r.status_code == 302
        and "Signature=" in r["Location"]
        and r["Location"].startswith(s3_storage.meta.endpoint_url)
    )
    with urllib.request.urlopen(r["Location"], timeout=10) as response:
        assert response.read() == stored
    assert tenants.api_client_for(tenants.charlie_token).get(f"/v1/videos/{gen.public_id}/content").status_code == 404

    # delete removes the objects, keeps the row and the ledger
    from apps.accounts.models import Membership

    with org_scope(tenants.org_a):
        services.generation_delete(by=Membership.objects.get(user=tenants.alice), generation=gen)
    listed = s3_storage.list_objects_v2(Bucket=BUCKET, Prefix=f"orgs/{tenants.org_a.slug}/").get("Contents", [])
    assert not [o for o in listed if gen.public_id in o["Key"]]


def test_a_download_cut_mid_stream_is_retried_into_the_same_single_object(
    tenants, s3_storage, monkeypatch, priced_sandbox
):
    """The first download breaks after its first chunk reached S3; the retry writes the whole video
    to the same key: one object per video (no partial or second object), one charge."""
    from apps.providers.base import Download, ProviderError
    from apps.providers.sandbox.adapter import SandboxProvider

    original = SandboxProvider.download
    broken = []

    def cut_once(self, job_id, **kwargs):
        download = original(self, job_id, **kwargs)
        if kwargs.get("variant", "video") != "video" or broken:
            return download
        broken.append(job_id)

        def chunks():
            yield next(iter(download.chunks))
            raise ProviderError("The connection was reset mid-stream.", code="network_error")

        return Download(chunks=chunks(), content_type=download.content_type)

    monkeypatch.setattr(SandboxProvider, "download", cut_once)
    with org_scope(tenants.org_a):
        gen = services.generation_create(
            org=tenants.org_a,
            user=tenants.bob,
            request=services.GenerationRequest(model="sandbox-video", prompt="cut, then whole", seconds=2),
        )
    gen = run_steps(gen)
    assert gen.state == State.COMPLETED and broken and gen.download_attempts == 2
    with org_scope(tenants.org_a):
        assert gen.events.filter(message__startswith="Download failed, retrying").count() == 1
    assert_ledger_balanced(gen)
    assert ledger_of(gen)["charge"] == [Decimal("1.00")]  # 2 s at $0.50, charged once
    listed = s3_storage.list_objects_v2(Bucket=BUCKET, Prefix=f"orgs/{tenants.org_a.slug}/")["Contents"]
    videos = [o["Key"] for o in listed if gen.public_id in o["Key"] and o["Key"].endswith(".mp4")]
    assert videos == [gen.video_file]
    stored = s3_storage.get_object(Bucket=BUCKET, Key=gen.video_file)["Body"].read()
    assert len(stored) == gen.bytes and hashlib.sha256(stored).hexdigest() == gen.sha256


def _multipart_storage(settings, moto_endpoint):
    """The production S3 options: 5 MiB parts (S3's smallest), 2 in flight, 2 held in memory."""
    from boto3.s3.transfer import TransferConfig

    part = 5 * 1024 * 1024
    config = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=2)
    config.max_in_memory_upload_chunks = 2
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {**settings.STORAGES["default"]["OPTIONS"], "transfer_config": config},
        },
    }


def _pieces(count: int, size: int = 1024 * 1024):
    for i in range(count):
        yield bytes([i % 251]) * size


def test_a_multipart_upload_stores_the_exact_bytes_and_sha256(s3_storage, settings, moto_endpoint):
    from apps.generations import storage

    _multipart_storage(settings, moto_endpoint)
    key = "orgs/test-s3/videos/vid_multipart.mp4"
    data = b"".join(_pieces(17)) + b"tail"
    stored = storage.save_stream(key, [*_pieces(17), b"tail"])
    try:
        head = s3_storage.head_object(Bucket=BUCKET, Key=key)
        assert head["ETag"].strip('"').endswith("-4")  # 4 parts of 5 MiB (the last shorter)
        body = s3_storage.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert body == data and stored.size == len(data) == head["ContentLength"]
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
    finally:
        s3_storage.delete_object(Bucket=BUCKET, Key=key)


def test_a_stream_cut_short_is_never_stored_in_s3(s3_storage, settings, moto_endpoint):
    """A download that breaks after 12 MiB: the error reaches the caller (to be retried), the
    multipart upload is aborted, and no object exists under the key."""
    from apps.generations import storage
    from apps.providers.base import ProviderError

    _multipart_storage(settings, moto_endpoint)
    key = "orgs/test-s3/videos/vid_cut.mp4"

    def cut():
        yield from _pieces(12)
        raise ProviderError("The download was interrupted after 12 MiB.", code="download_interrupted")

    with pytest.raises(ProviderError) as info:
        storage.save_stream(key, cut())
    assert info.value.code == "download_interrupted"
    assert "Contents" not in s3_storage.list_objects_v2(Bucket=BUCKET, Prefix=key)
    assert not s3_storage.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_a_signed_video_keeps_its_content_credentials_in_s3(tenants, s3_storage, monkeypatch, settings, tmp_path):
    """The C2PA read goes through the S3 file object, after the probe, and changes nothing: the
    object is the provider's bytes, whose credentials still validate."""
    from apps.generations import credentials
    from apps.providers.sandbox import adapter as sandbox
    from tests.generations import c2pa_assets

    identity = c2pa_assets.signing_identity("Google LLC")
    signed = c2pa_assets.sign_mp4(sandbox.render_mp4("signed into s3", 2, "1280x720"), identity, generator="Veo")
    (tmp_path / "anchors.pem").write_bytes(identity.root_pem)
    settings.C2PA_TRUST_ANCHORS = str(tmp_path / "anchors.pem")
    monkeypatch.setattr(sandbox, "render_mp4", lambda prompt, seconds, size: signed)
    with org_scope(tenants.org_a):
        gen = services.generation_create(
            org=tenants.org_a,
            user=tenants.bob,
            request=services.GenerationRequest(model="sandbox-video", prompt="signed into s3", seconds=2),
        )
    gen = run_steps(gen)
    assert gen.state == State.COMPLETED
    stored = s3_storage.get_object(Bucket=BUCKET, Key=gen.video_file)["Body"].read()
    assert stored == signed and hashlib.sha256(stored).hexdigest() == gen.sha256
    cc = gen.content_credentials
    assert (cc["state"], cc["issuer"], cc["claim_generator"]) == ("valid", "Google LLC", "Veo 2.0")
    assert credentials.read(io.BytesIO(stored))["state"] == "valid"


def test_a_batch_zip_streams_its_videos_from_the_bucket(tenants, s3_storage, priced_sandbox):
    """The batch's zip reads each object's body as it arrives (not django-storages' temporary
    copy) and holds exactly the stored bytes."""
    import io
    import zipfile

    from apps.accounts.models import Membership
    from apps.generations import batches
    from apps.generations.models import Generation

    with org_scope(tenants.org_a):
        batch = batches.batch_create(
            by=Membership.objects.select_related("organization", "user").get(user=tenants.alice),
            requests=[
                services.GenerationRequest(model="sandbox-video", prompt=f"bucket batch {i}", seconds=2)
                for i in range(2)
            ],
            concurrency=2,
        )
    items = [run_steps(g) for g in Generation.all_orgs.filter(batch=batch).order_by("batch_index")]
    assert [g.state for g in items] == [State.COMPLETED] * 2
    r = tenants.api_client_for(tenants.alice_token).get(f"/v1/video/batches/{batch.public_id}/content")
    assert r.status_code == 200
    data = b"".join(r.streaming_content)
    assert int(r["Content-Length"]) == len(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for gen, name in zip(items, z.namelist(), strict=True):
            assert z.read(name) == s3_storage.get_object(Bucket=BUCKET, Key=gen.video_file)["Body"].read()
