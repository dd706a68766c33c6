"""python manage.py create_api_key NAME: print a new key for client NAME, alone on stdout."""

from django.core.management.base import BaseCommand, CommandError

from payments.services.clients import api_key_create


class Command(BaseCommand):
    help = "Create an API key for the client NAME (created if new) and print it once; only a hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the API client's name (a shop, a frontend)")
        parser.add_argument("--key-name", default="default", help="a label for this key (rotation, ownership)")
        parser.add_argument("--rate-limit", type=int, default=None, help="requests per minute for this client")

    def handle(self, *args, name: str, key_name: str, rate_limit: int | None, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("NAME must be 1 to 100 characters")
        if rate_limit is not None and rate_limit < 1:
            raise CommandError("--rate-limit must be a positive number of requests per minute")
        key = api_key_create(client_name=name, key_name=key_name, rate_limit_per_minute=rate_limit)
        self.stderr.write(f"API key for {name!r} (shown once; only its hash is stored):")
        self.stdout.write(key)
