"""Our storage failing while the finished video is stored (issue 18, item 11): the download step
shows the error on the job, retries with backoff until the job's deadline, then fails it and
releases the hold; a lasting fault never retries forever. On a priced model (the sandbox at $0.50
a second), with the amounts held, charged and released, and the budget room coming back."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.accounts.models import Membership
from apps.billing import selectors as billing_selectors
from apps.core.errors import ApplicationError
from apps.core.scoping import org_scope
from apps.generations import engine, services, storage
from apps.generations.models import Generation, GenerationEvent, State
from apps.generations.services import GenerationRequest
from tests.generations.helpers import ledger_of

pytestmark = pytest.mark.django_db

HOLD = Decimal("2.0000")  # 4 s at $0.50


class Media:
    """A temporary MEDIA_ROOT that a test can make unwritable and writable again."""

    def __init__(self, root, monkeypatch):
        self.root, self._monkeypatch, self._patched = root, monkeypatch, False

    def break_(self):
        os.chmod(self.root, 0o500)  # read and list only
        probe = self.root / "probe"
        try:
            probe.touch()
        except PermissionError:
            return
        # root ignores file modes: refuse writes under the folder the way the kernel would
        probe.unlink()
        real_open, root = os.open, str(self.root)

        def refusing_open(path, flags, *args, **kwargs):
            if str(path).startswith(root) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, flags, *args, **kwargs)

        self._monkeypatch.setattr(storage.os, "open", refusing_open)
        self._patched = True

    def repair(self):
        os.chmod(self.root, 0o700)
        if self._patched:
            self._monkeypatch.undo()
            self._patched = False


@pytest.fixture
def media(tmp_path, settings, monkeypatch):
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root), "allow_overwrite": True},
        },
    }
    settings.SANDBOX_JOB_SECONDS = 0.2
    m = Media(root, monkeypatch)
    yield m
    m.repair()  # tmp_path is removed by pytest; it must be writable for that


def _create(tenants) -> Generation:
    with org_scope(tenants.org_a):
        return services.generation_create(
            org=tenants.org_a,
            user=tenants.bob,
            request=GenerationRequest(model="sandbox-video", prompt="a lighthouse", seconds=4, size="1280x720"),
        )


def _to_downloading(gen: Generation) -> Generation:
    """Submit and poll (in-process) until the provider has finished and the download is due."""
    import time

    with org_scope(gen.organization):
        for _ in range(200):
            gen.refresh_from_db()
            if gen.state == State.DOWNLOADING:
                return gen
            step = engine.generation_submit if gen.state == State.CREATED else engine.generation_poll
            step(generation_id=gen.pk)
            time.sleep(0.05)
    raise AssertionError(gen.state)


def _download(gen: Generation) -> Generation:
    with org_scope(gen.organization):
        engine.generation_download(generation_id=gen.pk)
    gen.refresh_from_db()
    return gen


def _room(tenants) -> Decimal:
    with org_scope(tenants.org_a):
        membership = Membership.objects.get(organization=tenants.org_a, user=tenants.bob)
        org_use, _member = billing_selectors.budget_status(org=tenants.org_a, membership=membership)
    return org_use.limit - org_use.used


def test_an_unwritable_media_folder_is_shown_and_retried_then_the_video_is_stored(tenants, media, priced_sandbox):
    gen = _to_downloading(_create(tenants))
    media.break_()
    gen = _download(gen)
    assert gen.state == State.DOWNLOADING  # not crashed, not failed: retried
    assert gen.error_code == "storage_error" and "Permission denied" in gen.error_message
    assert str(media.root) not in gen.error_message  # no server paths in what members read
    assert gen.transient_errors == 1 and gen.next_poll_at > timezone.now()
    events = list(GenerationEvent.all_orgs.filter(generation=gen).values_list("message", flat=True))
    assert any("Storing the video failed (Permission denied); retrying" in m for m in events), events
    assert ledger_of(gen) == {"hold": [HOLD]}  # still held while it retries

    media.repair()
    gen = _download(gen)
    assert gen.state == State.COMPLETED and gen.video_file and (media.root / gen.video_file).exists()
    assert (gen.error_code, gen.error_message) == ("", "")
    assert ledger_of(gen) == {"hold": [HOLD], "release": [-HOLD], "charge": [HOLD]}


def test_a_lasting_storage_fault_fails_at_the_deadline_and_the_budget_room_comes_back(tenants, media, priced_sandbox):
    tenants.org_a.monthly_budget = Decimal("3.00")
    tenants.org_a.save(update_fields=["monthly_budget"])
    gen = _to_downloading(_create(tenants))
    assert _room(tenants) == Decimal("1.00")
    with pytest.raises(ApplicationError) as refused:  # a second $2 video does not fit now
        _create(tenants)
    assert refused.value.code == "org_budget_exceeded"

    media.break_()
    gen = _download(gen)
    assert gen.state == State.DOWNLOADING and gen.error_code == "storage_error"
    Generation.all_orgs.filter(pk=gen.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    gen = _download(gen)
    assert gen.state == State.FAILED and gen.error_code == "storage_error"
    assert "could not be stored" in gen.error_message and "No charge" in gen.error_message
    assert ledger_of(gen) == {"hold": [HOLD], "release": [-HOLD]}  # released, never charged
    assert not gen.video_file
    assert _room(tenants) == Decimal("3.00")
    media.repair()
    assert _create(tenants).estimated_cost == HOLD  # the room is usable again


def test_a_download_that_keeps_crashing_ends_at_the_deadline(tenants, media, priced_sandbox):
    """Whatever kills the step (here: a retry after a crashed attempt), a re-sent download past
    the deadline ends the job and releases the hold instead of trying again."""
    gen = _to_downloading(_create(tenants))
    Generation.all_orgs.filter(pk=gen.pk).update(download_attempts=3, deadline_at=timezone.now() - timedelta(seconds=1))
    gen = _download(gen)
    assert (gen.state, gen.error_code) == (State.FAILED, "timeout")
    assert ledger_of(gen) == {"hold": [HOLD], "release": [-HOLD]}
