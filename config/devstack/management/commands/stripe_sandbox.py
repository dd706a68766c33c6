"""python manage.py stripe_sandbox --port 12111: the local Stripe-compatible sandbox (docs/sandbox.md).

A development command: only the local and test settings install the dev stack's app, and the sandbox
itself (sandbox/ of a checkout) is never installed, so production offers neither.
"""

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the local Stripe-compatible sandbox (faults on demand; see docs/sandbox.md)."

    def add_arguments(self, parser):
        try:
            from sandbox import cli
        except ModuleNotFoundError as exc:
            if exc.name != "sandbox":
                raise
            parser.error("the Stripe sandbox is a development tool (sandbox/ in a checkout) and is not installed here")
        from webhooks.handlers import WEBHOOK_EVENT_TYPES

        # The backend's pin and its handled types: the endpoint is registered as production's should be.
        cli.add_arguments(parser, api_version=settings.STRIPE_API_VERSION, webhook_events=list(WEBHOOK_EVENT_TYPES))

    def handle(self, *args, **options):
        from sandbox import cli, server

        server.serve(cli.build(options))
