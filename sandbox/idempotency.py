"""Stripe's idempotency semantics (https://docs.stripe.com/api/idempotent_requests), per API key."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.errors import StripeError

DEFAULT_TTL_SECONDS = 24 * 60 * 60


@dataclass
class Stored:
    fingerprint: str
    status: int
    body: bytes
    stored_at: float


class IdempotencyStore:
    """Replays a stored result for the same key and parameters; refuses reuse and concurrent use."""

    def __init__(self, *, ttl_seconds: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._stored: dict[tuple[str, str], Stored] = {}
        self._in_flight: set[tuple[str, str]] = set()
        self.requests_per_key: dict[str, int] = {}

    def begin(self, scope: str, key: str, fingerprint: str) -> Stored | None:
        """Return the stored result to replay, or None if the caller should run the request.

        :raises StripeError: 400 idempotency_error for other parameters, 409 while the key is in flight
        """
        with self._lock:
            self.requests_per_key[key] = self.requests_per_key.get(key, 0) + 1
            stored = self._stored.get((scope, key))
            if stored is not None and self.clock() - stored.stored_at > self.ttl_seconds:
                del self._stored[(scope, key)]
                stored = None
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    raise StripeError(
                        400,
                        "idempotency_error",
                        f"Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                    )
                return stored
            if (scope, key) in self._in_flight:
                raise StripeError(
                    409,
                    "idempotency_error",
                    "There is currently another in-progress request using this Stripe API key and idempotency "
                    "key. Please try again later.",
                    code="idempotency_key_in_use",
                )
            self._in_flight.add((scope, key))
            return None

    def finish(self, scope: str, key: str, fingerprint: str, status: int, body: bytes) -> None:
        """Store the result, except a 5xx (Stripe lets those be retried with the same key)."""
        with self._lock:
            self._in_flight.discard((scope, key))
            if status < 500:
                self._stored[(scope, key)] = Stored(fingerprint, status, body, self.clock())

    def reset(self) -> None:
        with self._lock:
            self._stored.clear()
            self._in_flight.clear()
            self.requests_per_key.clear()
