"""Content credentials (apps/generations/credentials.py): the C2PA manifest of a stored video,
read with c2pa-python. Each signed asset is made here, at run time: the sandbox's real MP4 signed
with c2pa-python's Builder and a certificate chain made for the test (tests/generations/c2pa_assets.py).

The reader on its own (signed and trusted, signed by an unknown signer, unsigned, tampered with,
an undecodable manifest, too large, a failing read), then the download step (the stored bytes are
the provider's, byte for byte, and keep their credentials; a credential problem never fails the
video or its charge), the video's page, the native API, the OpenAI shape, and the backfill."""

from __future__ import annotations

import hashlib
import io
from decimal import Decimal

import c2pa
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from apps.core.scoping import org_scope
from apps.generations import credentials, services
from apps.generations.models import Generation, GenerationEvent, State
from apps.generations.services import GenerationRequest
from apps.providers.sandbox import adapter as sandbox
from tests.generations import c2pa_assets
from tests.generations.helpers import assert_ledger_balanced, ledger_of, run_steps
from tests.openai_compat.helpers import assert_video

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def identity():
    return c2pa_assets.signing_identity("OpenAI", "Sora Signer")


@pytest.fixture(scope="module")
def unsigned():
    return sandbox.render_mp4("a paper boat on a pond", 2, "1280x720")


@pytest.fixture(scope="module")
def signed(unsigned, identity):
    return c2pa_assets.sign_mp4(unsigned, identity, generator="Sora", title="paper-boat.mp4")


@pytest.fixture
def trusted(settings, tmp_path, identity):
    """The test's root CA as the only trust anchor (what the C2PA trust list is in production)."""
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(identity.root_pem)
    settings.C2PA_TRUST_ANCHORS = str(anchors)
    return anchors


@pytest.fixture(autouse=True)
def fast_sandbox(settings):
    settings.SANDBOX_JOB_SECONDS = 0.2


def _read(data: bytes) -> dict:
    return credentials.read(io.BytesIO(data))


# --- the reader ---------------------------------------------------------------------------------


def test_a_signed_video_from_a_trusted_signer_is_valid_with_its_issuer_and_assertions(signed, trusted):
    found = _read(signed)
    assert found == {
        "state": "valid",
        "present": True,
        "issuer": "OpenAI",  # the signing certificate's organization
        "signer": "Sora Signer",
        "signed_at": None,  # signed without a time-stamp authority
        "claim_generator": "Sora 2.0",
        "title": "paper-boat.mp4",
        "ai_generated": True,
        "digital_source_type": "trainedAlgorithmicMedia",
        "actions": [{"action": "c2pa.created", "digital_source_type": "trainedAlgorithmicMedia"}],
        "assertions": ["c2pa.hash.bmff.v3", "c2pa.actions.v2"],
        "failures": [],
        "manifests": 1,
        "error": None,
    }


def test_a_signer_on_no_trust_list_is_untrusted_but_its_signature_checks_out(signed, settings, tmp_path):
    settings.C2PA_TRUST_ANCHORS = ""
    found = _read(signed)
    assert found["state"] == "untrusted" and found["issuer"] == "OpenAI"
    assert found["failures"] == ["signingCredential.untrusted"]
    # another CA as the trust anchor does not make it trusted either
    anchors = tmp_path / "other.pem"
    anchors.write_bytes(c2pa_assets.signing_identity("Someone Else").root_pem)
    settings.C2PA_TRUST_ANCHORS = str(anchors)
    assert _read(signed)["state"] == "untrusted"


def test_a_trust_anchor_file_that_is_not_pem_leaves_signers_untrusted(signed, settings, tmp_path, caplog):
    bad = tmp_path / "anchors.pem"
    bad.write_text("not a certificate")
    settings.C2PA_TRUST_ANCHORS = str(bad)
    assert _read(signed)["state"] == "untrusted"
    assert "is not a readable PEM bundle" in caplog.text
    settings.C2PA_TRUST_ANCHORS = str(tmp_path / "missing.pem")
    assert _read(signed)["state"] == "untrusted"


def test_an_unsigned_video_has_no_credentials(unsigned):
    assert _read(unsigned) == credentials.empty("none")
    assert _read(unsigned)["present"] is False


def test_a_video_changed_after_signing_is_invalid_with_the_failure_code(signed, trusted):
    found = _read(c2pa_assets.tampered(signed))
    assert found["state"] == "invalid" and found["present"] is True and found["issuer"] == "OpenAI"
    assert "assertion.bmffHash.mismatch" in found["failures"]


def test_a_manifest_that_does_not_decode_is_unreadable_not_an_exception(signed):
    at = signed.index(b"c2pa.signature")
    damaged = bytearray(signed)
    damaged[at + 40 : at + 60] = bytes(20)
    found = _read(bytes(damaged))
    assert found["state"] == "unreadable" and found["present"] is None
    assert found["error"] and len(found["error"]) <= 200


def test_a_file_over_the_limit_has_its_manifest_read_but_not_verified(signed, settings, trusted):
    settings.C2PA_MAX_BYTES = len(signed) - 1
    found = _read(signed)
    assert found["state"] == "unverified" and found["failures"] == []
    assert (found["issuer"], found["claim_generator"], found["ai_generated"]) == ("OpenAI", "Sora 2.0", True)
    # not verified means not verified: a tampered file over the limit is not called invalid or valid
    assert _read(c2pa_assets.tampered(signed))["state"] == "unverified"
    settings.C2PA_MAX_BYTES = len(signed)
    assert _read(signed)["state"] == "valid"


class _BrokenRead(io.BytesIO):
    def readinto(self, buffer):
        raise OSError("connection reset by the bucket")

    def read(self, size=-1):
        raise OSError("connection reset by the bucket")


@pytest.mark.parametrize("data", [b"", b"<html>Access denied</html>" * 40])
def test_what_is_not_a_readable_asset_never_raises(data):
    assert _read(data)["state"] in ("none", "unreadable")
    assert credentials.read(_BrokenRead(b"x" * 4096))["state"] == "unreadable"


def test_the_reader_never_writes_to_the_file(signed, tmp_path):
    path = tmp_path / "video.mp4"
    path.write_bytes(signed)
    with open(path, "rb") as fh:
        assert credentials.read(fh)["present"] is True
    assert path.read_bytes() == signed


# --- in the download step -----------------------------------------------------------------------


def _create(tenants, *, seconds=2, prompt="a paper boat on a pond"):
    with org_scope(tenants.org_a):
        return services.generation_create(
            org=tenants.org_a,
            user=tenants.bob,
            request=GenerationRequest(model="sandbox-video", prompt=prompt, seconds=seconds, size="1280x720"),
        )


def _provider_serves(monkeypatch, data: bytes) -> None:
    """The sandbox hands over ``data`` as its video (what a provider's download returns)."""
    monkeypatch.setattr(sandbox, "render_mp4", lambda prompt, seconds, size: data)


def _stored(gen: Generation) -> bytes:
    with default_storage.open(gen.video_file, "rb") as fh:
        return fh.read()


def test_a_signed_video_is_stored_byte_for_byte_and_keeps_its_credentials(
    tenants, monkeypatch, signed, trusted, priced_sandbox
):
    _provider_serves(monkeypatch, signed)
    gen = run_steps(_create(tenants))
    assert gen.state == State.COMPLETED
    stored = _stored(gen)
    assert stored == signed and gen.sha256 == hashlib.sha256(signed).hexdigest() == hashlib.sha256(stored).hexdigest()
    assert _read(stored)["state"] == "valid"  # the stored copy still carries them
    cc = gen.content_credentials
    assert cc["state"] == "valid" and cc["issuer"] == "OpenAI" and cc["ai_generated"] is True
    assert cc["checked_at"]
    assert GenerationEvent.all_orgs.filter(
        generation=gen, message="Content credentials: issued by OpenAI, valid."
    ).exists()
    # a signed video is charged like any other
    one = Decimal("1.0000")
    assert ledger_of(gen) == {"hold": [one], "release": [-one], "charge": [one]}


def test_a_tampered_or_undecodable_manifest_still_completes_and_is_charged(
    tenants, monkeypatch, signed, trusted, priced_sandbox
):
    _provider_serves(monkeypatch, c2pa_assets.tampered(signed))
    gen = run_steps(_create(tenants))
    assert gen.state == State.COMPLETED and gen.content_credentials["state"] == "invalid"
    assert "assertion.bmffHash.mismatch" in gen.content_credentials["failures"]
    assert gen.final_cost == Decimal("1.0000")
    assert_ledger_balanced(gen)

    at = signed.index(b"c2pa.signature")
    damaged = bytearray(signed)
    damaged[at + 40 : at + 60] = bytes(20)
    _provider_serves(monkeypatch, bytes(damaged))
    gen = run_steps(_create(tenants, prompt="damaged"))
    assert gen.state == State.COMPLETED and gen.content_credentials["state"] == "unreadable"
    assert _stored(gen) == bytes(damaged)
    assert gen.final_cost == Decimal("1.0000") and ledger_of(gen)["charge"] == [Decimal("1.0000")]
    assert GenerationEvent.all_orgs.filter(
        generation=gen, message__startswith="Content credentials could not be read: "
    ).exists()


def test_an_sdk_failure_is_recorded_as_unreadable_and_the_video_completes(tenants, monkeypatch, signed, priced_sandbox):
    def broken(*args, **kwargs):
        raise c2pa.C2paError("the SDK fell over")

    monkeypatch.setattr(c2pa.Reader, "try_create", broken)
    _provider_serves(monkeypatch, signed)
    gen = run_steps(_create(tenants))
    assert gen.state == State.COMPLETED and gen.media_probe["duration"] == 2.0
    assert gen.content_credentials["state"] == "unreadable"
    assert gen.content_credentials["error"] == "the SDK fell over"
    assert ledger_of(gen)["charge"] == [Decimal("1.0000")]


def test_an_unsigned_video_records_none(tenants, unsigned, monkeypatch):
    _provider_serves(monkeypatch, unsigned)
    gen = run_steps(_create(tenants))
    assert gen.content_credentials["state"] == "none" and gen.content_credentials["present"] is False
    assert not GenerationEvent.all_orgs.filter(generation=gen, message__startswith="Content credentials").exists()


# --- where people see them ----------------------------------------------------------------------


def _page(tenants, gen) -> str:
    r = tenants.client_for(tenants.alice).get(f"/o/{tenants.org_a.slug}/videos/{gen.public_id}/")
    assert r.status_code == 200
    return r.content.decode()


def test_the_video_page_says_who_issued_them_and_whether_they_validate(tenants, monkeypatch, signed, unsigned, trusted):
    _provider_serves(monkeypatch, signed)
    good = run_steps(_create(tenants, prompt="signed"))
    _provider_serves(monkeypatch, c2pa_assets.tampered(signed))
    bad = run_steps(_create(tenants, prompt="tampered"))
    _provider_serves(monkeypatch, unsigned)
    plain = run_steps(_create(tenants, prompt="unsigned"))

    html = _page(tenants, good)
    assert "Content credentials: issued by OpenAI," in html and '<span class="badge ok">valid</span>' in html
    assert "made with AI" in html and "Made with Sora 2.0" in html and "c2pa.actions.v2" in html
    html = _page(tenants, bad)
    assert '<span class="badge bad">invalid</span>' in html and "assertion.bmffHash.mismatch" in html
    assert "This video has no content credentials." in _page(tenants, plain)
    # an older video, not read yet, says so
    Generation.all_orgs.filter(pk=plain.pk).update(content_credentials={})
    assert "Not checked yet." in _page(tenants, plain)
    # a signer on no trust list
    Generation.all_orgs.filter(pk=plain.pk).update(content_credentials=_read(signed) | {"state": "untrusted"})
    assert "signature valid, signer not on the trust list" in _page(tenants, plain)
    # too large to verify, and unreadable
    Generation.all_orgs.filter(pk=plain.pk).update(content_credentials=_read(signed) | {"state": "unverified"})
    assert "not verified: the file is too large to check" in _page(tenants, plain)
    broken = credentials.empty("unreadable", error="Decoding: <claim> could not be converted")
    Generation.all_orgs.filter(pk=plain.pk).update(content_credentials=broken)
    html = _page(tenants, plain)
    assert "Content credentials could not be read: Decoding: &lt;claim&gt; could not be converted" in html
    # another organization's video stays a 404
    other = tenants.client_for(tenants.charlie).get(f"/o/{tenants.org_a.slug}/videos/{good.public_id}/")
    assert other.status_code == 404


def test_the_native_api_has_the_content_credentials_object_and_the_openai_shape_keeps_13_keys(
    tenants, monkeypatch, signed, unsigned, trusted
):
    _provider_serves(monkeypatch, signed)
    gen = run_steps(_create(tenants))
    api = tenants.api_client_for(tenants.alice_token)
    body = api.get(f"/v1/video/generations/{gen.public_id}").json()
    cc = body["content_credentials"]
    assert set(cc) == set(credentials.empty("none")) | {"checked_at"}
    assert (cc["state"], cc["issuer"], cc["claim_generator"]) == ("valid", "OpenAI", "Sora 2.0")
    assert cc["ai_generated"] is True
    assert cc["failures"] == [] and "c2pa.actions.v2" in cc["assertions"]
    listed = {g["id"]: g for g in api.get("/v1/video/generations").json()["data"]}
    assert listed[gen.public_id]["content_credentials"]["state"] == "valid"
    # the bytes handed out are the signed ones
    r = api.get(f"/v1/video/generations/{gen.public_id}/content")
    assert b"".join(r.streaming_content) == signed
    # the OpenAI shape: the contract's 13 keys; its content is the same signed file
    assert_video(api.get(f"/v1/videos/{gen.public_id}").json())
    assert b"".join(api.get(f"/v1/videos/{gen.public_id}/content").streaming_content) == signed

    _provider_serves(monkeypatch, unsigned)
    plain = run_steps(_create(tenants, prompt="unsigned"))
    assert api.get(f"/v1/video/generations/{plain.public_id}").json()["content_credentials"]["state"] == "none"
    Generation.all_orgs.filter(pk=plain.pk).update(content_credentials={})
    assert api.get(f"/v1/video/generations/{plain.public_id}").json()["content_credentials"] is None
    charlie = tenants.api_client_for(tenants.charlie_token)
    assert charlie.get(f"/v1/video/generations/{gen.public_id}").status_code == 404


# --- the backfill -------------------------------------------------------------------------------


def test_backfill_reads_the_credentials_of_older_videos_without_touching_their_bytes(
    tenants, monkeypatch, signed, trusted
):
    _provider_serves(monkeypatch, signed)
    gen = run_steps(_create(tenants))
    Generation.all_orgs.filter(pk=gen.pk).update(content_credentials={})  # stored before the check

    out = io.StringIO()
    call_command("backfill_posters", "--dry-run", stdout=out)
    assert f"would add credentials: {gen.public_id}" in out.getvalue()
    assert "would make 0 poster(s), 0 probe(s) and 1 credential read(s); 0 file(s) failed." in out.getvalue()
    gen.refresh_from_db()
    assert gen.content_credentials == {}

    out = io.StringIO()
    call_command("backfill_posters", stdout=out)
    assert f"added credentials: {gen.public_id}" in out.getvalue()
    gen.refresh_from_db()
    assert gen.content_credentials["state"] == "valid" and gen.content_credentials["issuer"] == "OpenAI"
    assert _stored(gen) == signed and hashlib.sha256(_stored(gen)).hexdigest() == gen.sha256

    out = io.StringIO()
    call_command("backfill_posters", stdout=out)
    assert out.getvalue().strip() == "made 0 poster(s), 0 probe(s) and 0 credential read(s); 0 file(s) failed."
