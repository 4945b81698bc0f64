"""The S3 path against a real S3 API: moto's standalone server, spoken to by boto3 through
django-storages, exactly as production talks to S3, MinIO or R2."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time
import urllib.request

import boto3
import pytest
from django.core.files.storage import storages

from apps.core.scoping import org_scope
from apps.generations import services
from apps.generations.models import State
from tests.generations.helpers import assert_ledger_balanced, run_steps
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

    # a retried download overwrites the same key: one object per video
    keys = [
        o["Key"]
        for o in s3_storage.list_objects_v2(Bucket=BUCKET, Prefix=f"orgs/{tenants.org_a.slug}/videos/")["Contents"]
    ]
    assert keys.count(gen.video_file) == 1

    # delete removes the objects, keeps the row and the ledger
    from apps.accounts.models import Membership

    with org_scope(tenants.org_a):
        services.generation_delete(by=Membership.objects.get(user=tenants.alice), generation=gen)
    listed = s3_storage.list_objects_v2(Bucket=BUCKET, Prefix=f"orgs/{tenants.org_a.slug}/").get("Contents", [])
    assert not [o for o in listed if gen.public_id in o["Key"]]
