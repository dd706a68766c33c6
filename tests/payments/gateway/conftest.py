"""A `StripeGateway` pointed at the in-process sandbox, built with parameters (never from settings)."""

from __future__ import annotations

import socket

import pytest
from django.conf import settings
from ulid import ULID

from payments.gateway.base import IntentResult
from payments.gateway.stripe import StripeGateway


def _make_gateway(url: str, **overrides) -> StripeGateway:
    options = {
        "api_key": "sk_test_gateway",
        "api_base": url,
        "api_version": settings.STRIPE_API_VERSION,
        "timeout_seconds": 2.0,
        "connect_timeout_seconds": 1.0,
        **overrides,
    }
    return StripeGateway(**options)


@pytest.fixture
def make_gateway():
    """Build a gateway at `url` with test defaults; override any constructor argument."""
    return _make_gateway


@pytest.fixture
def gateway(stripe_sandbox) -> StripeGateway:
    return _make_gateway(stripe_sandbox.url)


@pytest.fixture
def pay(gateway):
    """Create and confirm a payment as the worker would: our id in metadata, a key derived from it."""

    def pay(
        *,
        through: StripeGateway | None = None,
        payment_id: str | None = None,
        payment_method: str = "pm_card_visa",
        capture_method: str = "automatic",
        amount: int = 2000,
        description: str = "Order 1234",
    ) -> IntentResult:
        payment_id = payment_id or f"pay_{ULID()}"
        return (through or gateway).intent_create_and_confirm(
            payment_id=payment_id,
            amount=amount,
            currency="eur",
            payment_method=payment_method,
            capture_method=capture_method,
            description=description,
            idempotency_key=f"{payment_id}:create",
        )

    return pay


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def unanswered_port():
    """A loopback port whose accept queue is full: a new connection's handshake never completes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=1)  # takes the only slot
    yield port
    filler.close()
    listener.close()
