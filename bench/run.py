"""
`make bench`: every benchmark row in one run, on the same PostgreSQL and Redis, A-B-A against its anchors.

Starts two gunicorn servers with docker-compose's `web` settings and DEBUG off (ours, and the bare
Django anchor of bench/bare_urls.py), runs the row groups in order, prints the table and writes
bench/results/<timestamp>.json and .md. Knobs (environment): BENCH_SECONDS (one measured run, 2),
BENCH_ROUNDS (3), BENCH_ONLY (comma-separated groups: create,read,relay,webhook,e2e,scale,sandbox),
BENCH_CLIENTS (1,4,16), BENCH_OUTBOX_ROWS (20000), BENCH_WEBHOOK_CLIENTS (4), BENCH_E2E_N (300),
BENCH_SCALE_PAYMENTS (1000000), BENCH_SCALE_DATABASE (bench_payments_scale), BENCH_RESULTS_DIR.
The e2e group starts a pipeline of its own (bench/e2e.py).
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import servers

GROUPS = ["create", "read", "relay", "webhook", "e2e", "scale", "sandbox"]
HTTP_GROUPS = {"create", "read", "webhook", "scale"}


@dataclass
class Context:
    dsn: str
    client_id: int
    api_key: str
    ours_port: int | None = None
    bare_port: int | None = None
    rows: list = field(default_factory=list)  # the rows measured so far: scale sets its own beside them


def main() -> int:
    servers.configure_environment()
    import django

    django.setup()
    from bench import harness

    selected = [g.strip() for g in os.environ.get("BENCH_ONLY", ",".join(GROUPS)).split(",") if g.strip()]
    unknown = set(selected) - set(GROUPS)
    if unknown:
        print(f"unknown BENCH_ONLY groups: {', '.join(sorted(unknown))} (known: {', '.join(GROUPS)})")
        return 2
    started = datetime.now(UTC)
    host = harness.machine()
    harness.progress(f"bench database {servers.DATABASE}: migrating if needed")
    dsn = servers.setup_database()
    client_id, api_key = servers.api_key()
    ctx = Context(dsn=dsn, client_id=client_id, api_key=api_key)
    rows = ctx.rows
    with ExitStack() as stack:
        if HTTP_GROUPS & set(selected):
            harness.progress("starting gunicorn (compose's web settings, DEBUG off): ours and the bare Django anchor")
            ctx.ours_port = stack.enter_context(
                servers.gunicorn(app="config.wsgi:application", client_id=client_id, name="ours")
            )
            ctx.bare_port = stack.enter_context(
                servers.gunicorn(app="bench.bare_wsgi:application", client_id=client_id, name="bare")
            )
        for index, group in enumerate(selected):
            if not HTTP_GROUPS & set(selected[index:]):
                stack.close()  # the two web servers are idle from here: stop them before the next group
            module = __import__(
                {
                    "create": "bench.api_create",
                    "read": "bench.api_read",
                    "relay": "bench.relay_drain",
                    "webhook": "bench.webhook_intake",
                    "e2e": "bench.e2e",
                    "sandbox": "bench.sandbox_throughput",
                    "scale": "bench.scale",
                }[group],
                fromlist=["rows"],
            )
            rows.extend(module.rows(ctx))
    settings = {
        "seconds_per_run": harness.SECONDS,
        "warmup_seconds": harness.WARMUP_SECONDS,
        "rounds": harness.ROUNDS,
        "groups": selected,
    }
    json_path, md_path = harness.write_results(rows, started=started, settings=settings, host=host)
    print()
    print(harness.text_table(rows))
    print(f"\nwrote {json_path} and {md_path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
