"""The outbox relay: a long-running process that hands due outbox rows to Celery (outbox/relay.py)."""

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from outbox.relay import CeleryPublisher, OutboxRelay


class Command(BaseCommand):
    help = "Run the outbox relay until SIGTERM/SIGINT."

    def add_arguments(self, parser):
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="seconds between polls when idle (default OUTBOX_RELAY_POLL_SECONDS); NOTIFY wakes it sooner",
        )

    def handle(self, *args, interval: float | None, **options):
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        relay = OutboxRelay(
            publisher=CeleryPublisher(),
            poll_interval=interval if interval is not None else settings.OUTBOX_RELAY_POLL_SECONDS,
            stop=stop,
        )
        relay.run()
