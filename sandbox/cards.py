"""Stripe's test payment methods (https://docs.stripe.com/testing) and what each one does here."""

from __future__ import annotations

from dataclasses import dataclass

SUCCEED = "succeed"
DECLINE = "decline"
AUTHENTICATE = "authenticate"  # 3-D Secure: requires_action until /_sandbox/.../authenticate
ASYNC_SUCCEED = "async_succeed"  # processing for a while, then succeeded
ASYNC_FAIL = "async_fail"  # processing for a while, then failed


@dataclass(frozen=True)
class Outcome:
    kind: str
    brand: str = "visa"
    last4: str = "4242"
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None


METHODS = {
    "pm_card_visa": Outcome(SUCCEED),
    "pm_card_mastercard": Outcome(SUCCEED, brand="mastercard", last4="4444"),
    "pm_card_amex": Outcome(SUCCEED, brand="amex", last4="8431"),
    "pm_card_chargeDeclined": Outcome(
        DECLINE, last4="0002", code="card_declined", decline_code="generic_decline", message="Your card was declined."
    ),
    "pm_card_visa_chargeDeclinedInsufficientFunds": Outcome(
        DECLINE,
        last4="9995",
        code="card_declined",
        decline_code="insufficient_funds",
        message="Your card has insufficient funds.",
    ),
    "pm_card_chargeDeclinedExpiredCard": Outcome(
        DECLINE, last4="0069", code="expired_card", decline_code="expired_card", message="Your card has expired."
    ),
    "pm_card_chargeDeclinedIncorrectCvc": Outcome(
        DECLINE,
        last4="0127",
        code="incorrect_cvc",
        decline_code="incorrect_cvc",
        message="Your card's security code is incorrect.",
    ),
    "pm_card_authenticationRequired": Outcome(AUTHENTICATE, last4="3184"),
    "pm_card_threeDSecure2Required": Outcome(AUTHENTICATE, last4="3220"),
    # Sandbox-only: asynchronous methods (like bank debits) that stay `processing`, then settle.
    "pm_sandbox_async": Outcome(ASYNC_SUCCEED, brand="sepa_debit", last4="3000"),
    "pm_sandbox_async_fail": Outcome(
        ASYNC_FAIL, brand="sepa_debit", last4="3002", code="payment_method_failed", message="The bank debit failed."
    ),
}


def outcome_for(payment_method: str) -> Outcome | None:
    return METHODS.get(payment_method)
