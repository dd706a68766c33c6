"""The bare anchor's WSGI application (gunicorn bench.bare_wsgi:application), for `make bench` only."""

import os

from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.bare_settings"
application = get_wsgi_application()
