"""python manage.py stripe_sandbox --port 12111: the local Stripe-compatible sandbox (docs/sandbox.md)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from sandbox.cli import add_arguments, build
from sandbox.server import serve


class Command(BaseCommand):
    help = "Run the local Stripe-compatible sandbox (faults on demand; see docs/sandbox.md)."

    def add_arguments(self, parser):
        add_arguments(parser, api_version=settings.STRIPE_API_VERSION)

    def handle(self, *args, **options):
        serve(build(options))
