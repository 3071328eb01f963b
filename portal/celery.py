"""The Celery app every worker and beat process loads; tasks are autodiscovered per app."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("inference"))
# Model calls get their own queue and I/O-bound workers; everything else is "default".
app.conf.task_routes = {"apps.inference.tasks.execute_run": {"queue": "inference"}}
app.autodiscover_tasks()
# New runs are taken by a step of the worker itself, not by kombu's consumer.
app.steps["worker"].add("apps.inference.intake:RunIntake")
