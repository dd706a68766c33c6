"""Faults on demand: set per run (flags, SANDBOX_FAULTS) and changed at run time (/_sandbox/faults).

A fault fires for the next `count` matching requests, or with `probability` from a seeded random
generator (so a run with the same seed and the same request order repeats its faults), optionally
only for requests whose path starts with `path` (or matches it as a regex when it starts with ^)
and whose method is `method`.
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import asdict, dataclass, field

REQUEST_KINDS = (
    "latency",
    "http_500",
    "http_502",
    "http_503",
    "rate_limit",
    "timeout_after_commit",
    "connection_reset",
    "error_200",
)
WEBHOOK_KINDS = (
    "webhook_duplicate",
    "webhook_reorder",
    "webhook_delay",
    "webhook_before_response",
    "webhook_drop",
)
KINDS = (*REQUEST_KINDS, *WEBHOOK_KINDS, "rps_limit")


@dataclass
class Fault:
    kind: str
    probability: float | None = None
    count: int | None = None
    path: str | None = None
    method: str | None = None
    ms: int = 0  # latency, hold before dropping (timeout_after_commit), webhook delay/reorder window
    retry_after: int = 1  # seconds, for rate_limit
    rps: float = 0.0  # for rps_limit
    fired: int = field(default=0)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(KINDS)}")
        if self.probability is None and self.count is None:
            self.probability = 1.0
        if self.probability is not None and not 0 <= float(self.probability) <= 1:
            raise ValueError("probability must be between 0 and 1")

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        if self.path:
            return bool(re.match(self.path, path)) if self.path.startswith("^") else path.startswith(self.path)
        return True


def parse_spec(spec: str) -> dict:
    """`http_503:p=0.2:path=/v1/payment_intents:count=3:ms=200:method=POST` -> a fault dict."""
    kind, *options = spec.split(":")
    fault: dict = {"kind": kind.strip()}
    names = {
        "p": "probability",
        "probability": "probability",
        "count": "count",
        "path": "path",
        "method": "method",
        "ms": "ms",
        "retry_after": "retry_after",
        "rps": "rps",
    }
    for option in options:
        name, _, value = option.partition("=")
        if name not in names:
            raise ValueError(f"unknown fault option {name!r} in {spec!r}")
        fault[names[name]] = value
    return coerce(fault)


def coerce(raw: dict) -> dict:
    casts = {"probability": float, "count": int, "ms": int, "retry_after": int, "rps": float}
    return {key: casts[key](value) if key in casts and value is not None else value for key, value in raw.items()}


class Faults:
    def __init__(self, *, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self.seed = seed
        self._random = random.Random(seed)
        self._faults: list[Fault] = []
        self._tokens = float("inf")  # a full bucket, clamped to the rate on first use
        self._refilled_at = time.monotonic()

    def replace(self, specs: list[dict], *, seed: int | None = None) -> None:
        faults = [Fault(**coerce(spec)) for spec in specs]
        with self._lock:
            self._faults = faults
            self._tokens = float("inf")
            if seed is not None:
                self.seed = seed
            self._random = random.Random(self.seed)

    def add(self, specs: list[dict]) -> None:
        faults = [Fault(**coerce(spec)) for spec in specs]
        with self._lock:
            self._faults.extend(faults)

    def describe(self) -> dict:
        with self._lock:
            return {"seed": self.seed, "faults": [asdict(fault) for fault in self._faults]}

    def fire(self, kinds: tuple[str, ...], method: str, path: str) -> list[Fault]:
        """Return the faults of these kinds that fire for this request (consuming counts)."""
        fired = []
        with self._lock:
            for fault in self._faults:
                if fault.kind not in kinds or not fault.matches(method, path):
                    continue
                if fault.count is not None:
                    if fault.count <= 0:
                        continue
                    fault.count -= 1
                elif self._random.random() >= fault.probability:
                    continue
                fault.fired += 1
                fired.append(fault)
        return fired

    def rps_exceeded(self, method: str, path: str) -> bool:
        """A token bucket per run: more than `rps` requests in a second answer 429."""
        with self._lock:
            limits = [f for f in self._faults if f.kind == "rps_limit" and f.matches(method, path) and f.rps > 0]
            if not limits:
                return False
            rate = min(f.rps for f in limits)
            now = time.monotonic()
            self._tokens = min(rate, self._tokens + (now - self._refilled_at) * rate)
            self._refilled_at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return False
            for fault in limits:
                fault.fired += 1
            return True
