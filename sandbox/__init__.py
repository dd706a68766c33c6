"""
A local Stripe-compatible sandbox: a separate process that speaks Stripe's wire format, so the real
`stripe` SDK (pointed at it with STRIPE_API_BASE) cannot tell the difference for the calls we make.

Stateful PaymentIntents, charges, refunds, events and webhook endpoints; Stripe's test payment
methods; Stripe's idempotency semantics; signed webhooks with retries; faults on demand; a ledger
for the judge. Standard library only, and no Django, so it starts fast and runs anywhere.
"""

from sandbox.server import SandboxServer, serve

__all__ = ["SandboxServer", "serve"]
