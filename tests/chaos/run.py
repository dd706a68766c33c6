"""
`make chaos`: the seeded chaos run from the command line.

    .venv/bin/python -m tests.chaos.run [--payments 2000] [--seed 1] [--short] [--keep]

It lives beside the pytest short run (tests/chaos/test_chaos_short.py) because both drive the same
harness, and it is not a benchmark: it exits non-zero on a violation instead of printing a baseline.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.run", description=__doc__)
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="checkout clients at once (default: 64 up to 2 000 payments, 128 beyond)",
    )
    parser.add_argument("--broker-outage-seconds", type=float, default=30.0)
    parser.add_argument("--converge-timeout", type=float, default=300.0)
    parser.add_argument("--short", action="store_true", help="the reduced fault rates of the test suite's run")
    parser.add_argument("--keep", action="store_true", help="keep the scratch data directory and logs")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from tests.chaos.harness import Options, chaos_run, default_concurrency

    # SIGTERM (a CI timeout, `kill`) stops the run as Ctrl-C does: chaos_run's cleanup stops every
    # process of its stack. Without it the run died alone and left the stack running. A background
    # job of a non-interactive shell starts with SIGINT ignored; it gets Python's handler back.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        report = chaos_run(
            Options(
                payments=args.payments,
                seed=args.seed,
                short=args.short,
                concurrency=args.concurrency or default_concurrency(args.payments),
                broker_outage_seconds=args.broker_outage_seconds,
                converge_timeout=args.converge_timeout,
                keep=args.keep,
            )
        )
    except KeyboardInterrupt:
        print("[chaos] interrupted: the stack's processes are stopped", flush=True)  # noqa: T201
        sys.stdout.flush()
        # The checkout threads may be mid-retry against the stopped stack (up to two minutes): not
        # waited for, the run's verdict is already void.
        os._exit(130)
    print(report.render(), flush=True)  # noqa: T201 - the run's figures are its output
    return 0 if report.ok else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


if __name__ == "__main__":
    sys.exit(main())
