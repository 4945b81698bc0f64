"""Fixtures for the generation pages: keys stored without calling a provider, and videos (with
their ledger rows) created in bulk, as the engine leaves them."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.utils import timezone

from apps.api_keys import crypto
from apps.api_keys.models import KeyStatus, ProviderKey
from apps.billing.ledger import period_of
from apps.billing.models import EntryKind, UsageEntry
from apps.core.ids import public_id
from apps.generations import media, storage
from apps.generations.models import Generation, State, reported_cost

HX = {"HX-Request": "true"}
VIDEO_BYTES = bytes(range(256)) * 40  # 10 240 bytes standing in for an MP4


def page_url(org, suffix: str = "") -> str:
    return f"/o/{org.slug}/{suffix}"


@pytest.fixture
def add_key(tenants):
    def add(provider: str, status: str = KeyStatus.VALID, org=None) -> ProviderKey:
        return ProviderKey.all_orgs.create(
            organization=org or tenants.org_a,
            public_id=public_id("key"),
            provider=provider,
            ciphertext=crypto.encrypt(json.dumps({"api_key": f"{provider}-test-key-1234"})),
            last4="1234",
            status=status,
            is_default=True,
        )

    return add


@pytest.fixture
def make_videos(tenants):
    """``make_videos(n, **fields)``: n generations (completed, charged) in one bulk insert each for
    generations and ledger rows. ``stored=True`` also writes the video and thumbnail files."""

    def make(n: int = 1, *, org=None, user=None, stored: bool = False, days_ago: int = 0, **fields) -> list[Generation]:
        org, user = org or tenants.org_a, user or tenants.alice
        now = timezone.now()
        state = fields.pop("state", State.COMPLETED)
        cost = Decimal(fields.pop("cost", "0.24"))
        prompt = fields.pop("prompt", None)
        progress = 100 if state == State.COMPLETED else fields.pop("progress", None)
        defaults = {
            "provider": "runway",
            "model": "gen4.5",
            "seconds": 2,
            "size": "1280x720",
        }
        defaults.update(fields)
        # the columns the real writers derive from these (apps.generations.media, engine)
        if "media_probe" in defaults or "output_mismatch" in defaults:
            defaults.update(media.probe_fields(defaults.get("media_probe", {}), defaults.get("output_mismatch", [])))
        if "provider_usage" in defaults:
            defaults["provider_cost"] = reported_cost(defaults["provider_usage"])
        rows = []
        for i in range(n):
            gen_id = public_id("video")
            stored_fields = {}
            if stored and state == State.COMPLETED:
                stored_fields = {
                    "video_file": storage.save_bytes(storage.video_key(org.slug, gen_id), VIDEO_BYTES).key,
                    "thumbnail_file": storage.save_bytes(
                        storage.thumbnail_key(org.slug, gen_id), b"\xff\xd8\xff fake jpeg"
                    ).key,
                    "content_type": "video/mp4",
                    "bytes": len(VIDEO_BYTES),
                }
            elif state == State.COMPLETED:
                stored_fields = {"video_file": storage.video_key(org.slug, gen_id), "content_type": "video/mp4"}
            rows.append(
                Generation(
                    organization=org,
                    public_id=gen_id,
                    user=user,
                    prompt=prompt or f"video number {i}",
                    state=state,
                    progress=progress,
                    deadline_at=now + timedelta(hours=2),
                    estimated_cost=cost,
                    final_cost=cost if state == State.COMPLETED else None,
                    price_version="test",
                    completed_at=now if state == State.COMPLETED else None,
                    **defaults,
                    **stored_fields,
                )
            )
        gens = Generation.all_orgs.bulk_create(rows)
        if days_ago:
            Generation.all_orgs.filter(pk__in=[g.pk for g in gens]).update(created_at=now - timedelta(days=days_ago))
        entries = []
        for gen in gens:
            kinds = [(EntryKind.HOLD, cost)]
            if state == State.COMPLETED:
                kinds += [(EntryKind.RELEASE, -cost), (EntryKind.CHARGE, cost)]
            elif state in (State.FAILED, State.CANCELED):
                kinds += [(EntryKind.RELEASE, -cost)]
            for kind, amount in kinds:
                entries.append(
                    UsageEntry(
                        organization=org,
                        user=user,
                        generation=gen,
                        kind=kind,
                        amount=amount,
                        provider=gen.provider,
                        model=gen.model,
                        seconds=gen.seconds,
                        period=period_of(now - timedelta(days=days_ago)),
                        video_day=timezone.localdate(now - timedelta(days=days_ago)),
                    )
                )
        UsageEntry.all_orgs.bulk_create(entries)
        if days_ago:
            UsageEntry.all_orgs.filter(generation__in=gens).update(created_at=now - timedelta(days=days_ago))
        return list(Generation.all_orgs.filter(pk__in=[g.pk for g in gens]).order_by("-created_at", "-id"))

    return make


class _Forms(HTMLParser):
    """Every form with its attributes and the names of its fields."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"attrs": attrs, "inputs": []})
        elif tag in ("input", "select", "textarea", "button") and self.forms:
            self.forms[-1]["inputs"].append(attrs.get("name"))


def forms_of(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def assert_forms_work_without_js(html: str) -> None:
    """Every POST form carries the CSRF token; every htmx form and link also has a plain target."""
    forms = forms_of(html)
    for form in forms:
        attrs = form["attrs"]
        if attrs.get("method") == "post":
            assert "csrfmiddlewaretoken" in form["inputs"], form
            if "hx-post" in attrs:
                assert attrs.get("action") == attrs["hx-post"], form
        if "hx-get" in attrs:
            assert attrs.get("action") == attrs["hx-get"], form
