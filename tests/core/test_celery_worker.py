import pytest

from apps.core.tasks import ping

pytestmark = pytest.mark.integration


def test_task_round_trips_through_a_real_worker_and_broker(celery_worker):
    result = ping.apply_async(args=["hello from the test"], ignore_result=False)
    assert result.get(timeout=30) == "hello from the test"
    # the worker process, not this one, ran it
    assert "core.ping" in celery_worker.log() and "succeeded" in celery_worker.log()
