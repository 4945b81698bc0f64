import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

# The embedded default's broker (no server): kombu's filesystem transport with atomic writes.
TRANSPORT_ALIASES["mrfs"] = "apps.core.broker:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediarouter.settings")

app = Celery("mediarouter")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
