import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from kombu.transport import TRANSPORT_ALIASES

# The embedded default's broker (no server): kombu's filesystem transport with atomic writes.
TRANSPORT_ALIASES["mrfs"] = "apps.core.broker:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediarouter.settings")

app = Celery("mediarouter")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_connections(sender=None, **kwargs) -> None:
    """Around each task, what Django does around each request: close the database connections
    that are broken or past ``CONN_MAX_AGE``, keep the others (``CELERY_DB_REUSE_MAX`` stops
    Celery's fix-up from closing them all). Not for eager tasks: they run inside the caller's
    request or test transaction, whose connection is the caller's to manage."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections as close

    close()
