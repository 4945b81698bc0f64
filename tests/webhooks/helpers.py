"""Shared helpers for the webhook tests: a fake clock, a sandbox generation, a lifecycle."""

from __future__ import annotations

from datetime import timedelta

from apps.core.scoping import org_scope
from apps.generations import engine
from apps.generations import services as generation_services
from apps.generations.models import State
from apps.webhooks import services
from apps.webhooks.models import WebhookEndpoint


class Clock:
    def __init__(self) -> None:
        self.now = services.timezone.now()

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def to(self, when) -> None:
        self.now = when


def install_clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(services, "_now", c)
    monkeypatch.setattr(services, "_jitter", lambda delay: delay)  # the upper bound, deterministic
    return c


def endpoint(alice_m, url: str, **kwargs) -> tuple[WebhookEndpoint, str]:
    with org_scope(alice_m.organization):
        return services.endpoint_create(by=alice_m, url=url, **kwargs)


def generation(tenants):
    with org_scope(tenants.org_a):
        return generation_services.generation_create(
            org=tenants.org_a,
            user=tenants.alice,
            request=generation_services.GenerationRequest(model="sandbox-video", prompt="a fox", seconds=2),
        )


def complete(gen) -> None:
    with org_scope(gen.organization):
        assert engine.transition(gen, from_states=[State.CREATED], to=State.QUEUED)
        assert engine.transition(gen, from_states=[State.QUEUED], to=State.IN_PROGRESS, progress=40)
        assert engine.transition(gen, from_states=[State.IN_PROGRESS], to=State.DOWNLOADING, progress=100)
        assert engine.transition(gen, from_states=[State.DOWNLOADING], to=State.COMPLETED, progress=100)
