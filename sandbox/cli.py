"""Command line of the sandbox, shared by `python -m sandbox` and `manage.py stripe_sandbox`."""

from __future__ import annotations

import argparse
import json
import os

from sandbox.faults import parse_spec
from sandbox.server import SandboxServer, serve


def add_arguments(
    parser: argparse.ArgumentParser, *, api_version: str | None = None, webhook_events: list[str] | None = None
) -> None:
    """
    Declare the sandbox's flags. `api_version` is the default of --api-version (the caller's pin),
    `webhook_events` that of --webhook-events (the types the caller handles); the environment wins.
    """
    env = os.environ.get
    api_version = api_version or env("SANDBOX_API_VERSION")
    parser.add_argument(
        "--api-version",
        default=api_version,
        required=api_version is None,
        help="the Stripe API version to speak, e.g. the backend's pinned STRIPE_API_VERSION "
        "(env SANDBOX_API_VERSION; manage.py stripe_sandbox passes the backend's)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(env("SANDBOX_PORT") or 12111))
    parser.add_argument(
        "--seed",
        type=int,
        default=int(env("SANDBOX_SEED")) if env("SANDBOX_SEED") else None,
        help="makes probabilistic faults repeat (env SANDBOX_SEED)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="e.g. http_503:p=0.2:path=/v1/payment_intents or timeout_after_commit:count=1 "
        "(repeatable; env SANDBOX_FAULTS takes a JSON list)",
    )
    parser.add_argument(
        "--webhook-url",
        default=env("SANDBOX_WEBHOOK_URL"),
        help="register this endpoint at start (env SANDBOX_WEBHOOK_URL)",
    )
    parser.add_argument(
        "--webhook-secret",
        default=env("SANDBOX_WEBHOOK_SECRET"),
        help="its whsec_ signing secret (env SANDBOX_WEBHOOK_SECRET); generated if absent",
    )
    parser.add_argument(
        "--webhook-events",
        type=event_types,
        default=event_types(env("SANDBOX_WEBHOOK_EVENTS") or ",".join(webhook_events or ["*"])),
        metavar="TYPE,...",
        help="the endpoint's enabled_events: only these types are delivered to it, comma-separated "
        "(env SANDBOX_WEBHOOK_EVENTS; default *, every type; manage.py stripe_sandbox passes the backend's)",
    )
    parser.add_argument(
        "--async-settle-seconds", type=float, default=2.0, help="how long pm_sandbox_async payments stay processing"
    )
    parser.add_argument("--webhook-retry-base-seconds", type=float, default=1.0)
    parser.add_argument("--webhook-max-attempts", type=int, default=8)


def event_types(value: str) -> list[str]:
    """`a,b , c` -> ["a", "b", "c"]; `*` (or nothing) subscribes to every type."""
    return [name.strip() for name in value.split(",") if name.strip()] or ["*"]


def build(options: argparse.Namespace | dict) -> SandboxServer:
    options = vars(options) if isinstance(options, argparse.Namespace) else options
    faults = json.loads(os.environ.get("SANDBOX_FAULTS") or "[]") + [parse_spec(s) for s in options["fault"]]
    server = SandboxServer(
        api_version=options["api_version"],
        host=options["host"],
        port=options["port"],
        seed=options["seed"],
        faults=faults,
        async_settle_seconds=options["async_settle_seconds"],
        webhook_retry_base_seconds=options["webhook_retry_base_seconds"],
        webhook_max_attempts=options["webhook_max_attempts"],
    )
    if options.get("webhook_url"):
        endpoint = server.register_webhook(
            options["webhook_url"], secret=options.get("webhook_secret"), enabled_events=options.get("webhook_events")
        )
        events = ",".join(endpoint["enabled_events"])
        print(f"webhooks -> {endpoint['url']} ({endpoint['id']}; events {events})", flush=True)
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    add_arguments(parser)
    serve(build(parser.parse_args(argv)))
    return 0
