"""
Settings of the bare Django anchor: production settings, no middleware, the benchmark's own URLconf.

Served by `make bench` only, on a loopback port of its own, through the same gunicorn command line
as the product: it is the ceiling of this framework and server on this machine (issue 11).
"""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.bare_urls"
MIDDLEWARE: list[str] = []  # no sessions, auth, CSRF, logging or metrics: Django's own request cycle only
