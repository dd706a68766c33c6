"""
The seeded fault plan: what the sandbox breaks (a share of provider calls, webhooks) and what the
harness breaks (process kills, the broker stopped), and when. The same seed gives the same plan; the
sandbox rolls its own seeded dice per request, so with concurrent workers which request a fault hits
still depends on scheduling (docs/sandbox.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

PROVIDER_PATHS = "^/v1/(payment_intents|refunds)"
# Shares of provider calls per kind, rolled independently by the sandbox: about 30 % fail in all.
PROVIDER_FAULTS = {
    "timeout_after_commit": 0.06,
    "http_500": 0.05,
    "http_503": 0.05,
    "rate_limit": 0.06,
    "connection_reset": 0.05,
    "error_200": 0.04,
    "latency": 0.05,
}
WEBHOOK_FAULTS = {"webhook_duplicate": 0.10, "webhook_reorder": 0.10, "webhook_delay": 0.10, "webhook_drop": 0.05}
# The short run inside `make test`: every kind of provider fault, at lower rates.
SHORT_PROVIDER_SCALE = 0.6
HARNESS_KINDS = (
    "kill_worker",
    "kill_relay",
    "kill_web_worker",
    "kill_web_master",
    "stop_broker",
    "restart_postgres",
)
# PostgreSQL's shutdown modes, taken in turn by the restarts: `fast` (SIGINT: sessions are told and
# cut, a checkpoint) and `immediate` (SIGQUIT: every process gone at once, crash recovery on start).
# https://www.postgresql.org/docs/current/server-shutdown.html
POSTGRES_SHUTDOWN_MODES = ("immediate", "fast")


def sandbox_faults(*, short: bool) -> list[dict]:
    """The fault specs sent to `POST /_sandbox/faults` (seeded there by the run's seed)."""
    scale = SHORT_PROVIDER_SCALE if short else 1.0
    specs = []
    for kind, probability in PROVIDER_FAULTS.items():
        spec = {"kind": kind, "probability": round(probability * scale, 4), "path": PROVIDER_PATHS}
        if kind == "timeout_after_commit":
            spec["ms"] = 2500  # past STRIPE_TIMEOUT_SECONDS: the worker sees a timeout, the effect happened
        elif kind == "latency":
            spec["ms"] = 400
        elif kind == "rate_limit":
            spec["retry_after"] = 1
        specs.append(spec)
    for kind, probability in WEBHOOK_FAULTS.items():
        spec = {"kind": kind, "probability": probability, "path": PROVIDER_PATHS}
        if kind in ("webhook_reorder", "webhook_delay"):
            spec["ms"] = 800
        specs.append(spec)
    return specs


@dataclass(frozen=True)
class HarnessFault:
    at_payment: int  # fired once this many checkouts are done
    kind: str
    target: int = 0  # which worker
    seconds: float = 0.0  # how long the broker stays down
    mode: str = ""  # how PostgreSQL is shut down (restart_postgres)

    @property
    def name(self) -> str:
        """The kind as counted in the figures: a PostgreSQL restart by its shutdown mode."""
        return f"{self.kind}_{self.mode}" if self.mode else self.kind


@dataclass
class FaultPlan:
    seed: int
    sandbox: list[dict]
    harness: list[HarnessFault] = field(default_factory=list)

    def describe(self) -> str:
        kinds = ", ".join(f"{f.name}@{f.at_payment}" for f in self.harness) or "none"
        return f"seed {self.seed}: sandbox {len(self.sandbox)} fault kinds; harness {kinds}"


# Each harness fault kind fires once per this many checkouts, up to HARNESS_ROUNDS_MAX times a run. The
# harness's faults are stalls of a fixed length (a broker outage stops every payment for 30 s): at one
# round per 500 checkouts the 10 000 run would spend 10 of its 20 minutes with the broker stopped, 20
# outages proving no more than 6 do. What the long run adds is volume for the faults that scale with
# it: about 30 % of provider calls and a third of webhook deliveries.
CHECKOUTS_PER_ROUND = 500
HARNESS_ROUNDS_MAX = 6


def harness_rounds(payments: int) -> int:
    return min(max(1, payments // CHECKOUTS_PER_ROUND), HARNESS_ROUNDS_MAX)


def fault_plan(*, seed: int, payments: int, short: bool, broker_outage_seconds: float) -> FaultPlan:
    """Spread the harness's faults over the run: every kind at least once, more for longer runs (up to
    HARNESS_ROUNDS_MAX rounds), and PostgreSQL shut down both ways at least once each."""
    rng = random.Random(f"chaos-harness-{seed}")
    rounds = harness_rounds(payments)
    kinds = [kind for _ in range(rounds) for kind in HARNESS_KINDS]
    if rounds < len(POSTGRES_SHUTDOWN_MODES):
        kinds += ["restart_postgres"] * (len(POSTGRES_SHUTDOWN_MODES) - rounds)
    rng.shuffle(kinds)
    harness, restarts = [], 0
    for index, kind in enumerate(kinds):
        mode = ""
        if kind == "restart_postgres":
            mode = POSTGRES_SHUTDOWN_MODES[restarts % len(POSTGRES_SHUTDOWN_MODES)]
            restarts += 1
        at = int(payments * (index + 1) / (len(kinds) + 1))
        at += rng.randint(0, max(1, payments // (4 * (len(kinds) + 1))))
        harness.append(
            HarnessFault(
                at_payment=min(at, payments - 1),
                kind=kind,
                target=rng.randrange(2),
                seconds=broker_outage_seconds if kind == "stop_broker" else 0.0,
                mode=mode,
            )
        )
    return FaultPlan(
        seed=seed, sandbox=sandbox_faults(short=short), harness=sorted(harness, key=lambda f: f.at_payment)
    )
