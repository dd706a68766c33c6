"""The Celery app (cookiecutter-django layout): settings under the CELERY_ namespace, tasks autodiscovered."""

import os

from celery import Celery

# Whether the settings module came from the caller; the dev stack does not pass on our default.
SETTINGS_FROM_ENVIRONMENT = "DJANGO_SETTINGS_MODULE" in os.environ
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("payments")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
