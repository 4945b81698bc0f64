"""The Celery app of a recyclable test worker (``WorkerProcess(recyclable=True)``, tests/worker.py):
MediaRouter's own app, unchanged but for pool restarts being allowed, which lets one worker serve
several tests with fresh pool processes for each (tests/live.py)."""

from mediarouter.celery import app

app.conf.worker_pool_restarts = True
