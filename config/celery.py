"""The Celery app (cookiecutter-django layout): settings under the CELERY_ namespace, tasks autodiscovered."""

import os

from celery import Celery, signals

from config.db import connections_keep_for_task

# Whether the settings module came from the caller; the dev stack does not pass on our default.
SETTINGS_FROM_ENVIRONMENT = "DJANGO_SETTINGS_MODULE" in os.environ
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("payments")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# A worker keeps its database session from task to task, as gunicorn keeps it from request to request.
signals.task_prerun.connect(connections_keep_for_task, dispatch_uid="config.db.connections_keep_for_task.pre")
signals.task_postrun.connect(connections_keep_for_task, dispatch_uid="config.db.connections_keep_for_task.post")
