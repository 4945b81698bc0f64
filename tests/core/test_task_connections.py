"""A worker keeps its database connection across tasks, as a web process keeps it across requests
(``CELERY_DB_REUSE_MAX`` and mediarouter.celery.close_old_connections), and drops a broken one."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from django.db import connection

from mediarouter.celery import close_old_connections

pytestmark = pytest.mark.integration

POSTGRESQL_ONLY = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL leg only (pg_stat_activity)")


def _worker_backends(since) -> set[tuple[int, object]]:
    """(pid, start) of the backends connected to the test database since ``since``, but ours."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_start >= %s",
            [since],
        )
        return set(cursor.fetchall())


def _tasks_succeeded(worker) -> int:
    return worker.log().count(" succeeded in ")


@POSTGRESQL_ONLY
def test_a_worker_keeps_its_connection_across_tasks(celery_worker):
    with connection.cursor() as cursor:
        cursor.execute("SELECT now() - interval '60 seconds'")
        since = cursor.fetchone()[0]
    # beat sends the poll step every second, and the dispatchers: tasks that read the database
    time.sleep(3)
    before, done_before = _worker_backends(since), _tasks_succeeded(celery_worker)
    time.sleep(6)
    after, done_after = _worker_backends(since), _tasks_succeeded(celery_worker)
    assert done_after - done_before >= 3, celery_worker.log()[-3000:]
    # the same backends (same pid, same start) served the tasks in between; closing around each
    # task (Celery's default) leaves none alive from one look to the next
    assert before & after, (before, after)


def _task(*, eager: bool):
    """What Celery's task signals send as ``sender``: a task whose request says whether it is eager."""
    return SimpleNamespace(request=SimpleNamespace(is_eager=eager))


@pytest.mark.django_db(transaction=True)
def test_around_a_task_a_broken_connection_is_closed_and_a_sound_one_kept():
    connection.ensure_connection()
    sound = connection.connection
    close_old_connections(sender=_task(eager=False))
    assert connection.connection is sound  # kept: not past CONN_MAX_AGE, no error
    connection.errors_occurred = True
    connection.is_usable = lambda: False  # what the health check finds after a dropped socket
    try:
        close_old_connections(sender=_task(eager=False))
        assert connection.connection is None  # closed; the next query opens a new one
    finally:
        del connection.is_usable
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db(transaction=True)
def test_eager_tasks_leave_the_callers_connection_alone():
    connection.ensure_connection()
    sound = connection.connection
    connection.errors_occurred = True
    connection.is_usable = lambda: False
    try:
        close_old_connections(sender=_task(eager=True))
        assert connection.connection is sound
    finally:
        del connection.is_usable
        connection.errors_occurred = False
