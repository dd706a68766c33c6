"""Development on a checkout: `make run` and any `manage.py` command run from it."""

import secrets

from config.devstack import paths

from .base import *
from .base import env

DEBUG = env.bool("DEBUG", default=True)
INSTALLED_APPS = [*INSTALLED_APPS, "config.devstack"]  # development commands: manage.py stripe_sandbox
# Generated once into .data/dev-secrets.json: no secret default in code, nothing to set by hand.
SECRET_KEY = env("SECRET_KEY", default=None) or paths.dev_secret("SECRET_KEY", lambda: secrets.token_urlsafe(50))
