"""
The currencies we accept and the rules an amount must meet before we store it: what Stripe would
refuse, we refuse at once (a 400 naming the parameter) rather than as a failed payment later.

Nothing here is a hand-written list. The ISO 4217 codes come from Babel (Unicode CLDR): the currencies
that are legal tender today in some territory, which leaves out fund codes (usn, clf, …), precious
metals (xau, …), test codes (xts) and retired codes (ang, std, hrk, …). We accept those that Stripe can
also charge (`payments.gateway.stripe_currencies.PRESENTMENT_CURRENCIES`).

Exponents follow Stripe, because `amount` is what Stripe receives: two decimals unless Stripe lists
the currency as zero- or three-decimal. Babel's count (CLDR's digits in everyday use) agrees except
for isk and ugx (Stripe's special cases: two decimals, whole units only) and afn, all, lak, lbp,
mmk, rsd, sos, yer (CLDR counts no minor unit in use; ISO 4217 and Stripe count two). huf and twd
agree (two): Stripe's whole-unit rule for them is for payouts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from babel.core import get_global
from babel.numbers import get_territory_currencies

from payments.errors import AmountInvalidForCurrency, AmountTooSmall
from payments.gateway import stripe_currencies


@dataclass(frozen=True)
class Currency:
    code: str
    exponent: int  # digits of `amount` below the major unit, as Stripe counts them
    amount_step: int  # every amount is a multiple of this (10 for kwd, 100 for isk)
    minimum_amount: int | None  # Stripe's minimum charge, where it lists one


def _legal_tender(*, on: date) -> frozenset[str]:
    """Return the ISO 4217 codes that are legal tender somewhere on `on`, lower case (Babel's CLDR data)."""
    return frozenset(
        code.lower()
        for territory in get_global("territory_currencies")
        for code in get_territory_currencies(territory, start_date=on, tender=True)
    )


# Read once, when the process starts: a currency retired since is refused from the next restart on.
ISO_4217_CURRENCIES = _legal_tender(on=date.today())

CURRENCIES = {
    code: Currency(
        code=code,
        exponent=stripe_currencies.amount_exponent(code),
        amount_step=stripe_currencies.amount_step(code),
        minimum_amount=stripe_currencies.MINIMUM_CHARGE_AMOUNTS.get(code),
    )
    for code in sorted(ISO_4217_CURRENCIES & stripe_currencies.PRESENTMENT_CURRENCIES)
}


def _major(amount: int, currency: Currency) -> str:
    return f"{Decimal(amount).scaleb(-currency.exponent)} {currency.code.upper()}"


def _step_validate(amount: int, currency: Currency) -> None:
    if amount % currency.amount_step:
        step = currency.amount_step
        unit = "whole units" if step == 10**currency.exponent else f"multiples of {step}"
        raise AmountInvalidForCurrency(
            f"{currency.code} amounts must be {unit}; the provider cannot charge {amount}", param="amount"
        )


def charge_amount_validate(*, amount: int, currency: str) -> None:
    """
    Refuse an amount that Stripe would refuse to charge or capture in `currency`.

    Only the listed minimum of the charge's own currency is checked: a charge that Stripe converts
    into another settlement currency must meet that currency's minimum after conversion, which
    needs the day's rate and is left to Stripe. A currency we no longer accept (a payment stored
    before it was retired) has nothing to check against and is left to Stripe too.

    :raises AmountInvalidForCurrency: if the amount is not a multiple of the currency's step
    :raises AmountTooSmall: if the amount is below Stripe's minimum charge for the currency
    """
    spec = CURRENCIES.get(currency)
    if spec is None:
        return
    _step_validate(amount, spec)
    if spec.minimum_amount is not None and amount < spec.minimum_amount:
        raise AmountTooSmall(
            f"Amount must be at least {spec.minimum_amount} ({_major(spec.minimum_amount, spec)}), "
            f"the provider's minimum charge in {currency}",
            param="amount",
        )


def refund_amount_validate(*, amount: int, currency: str) -> None:
    """
    Refuse a refund amount that Stripe would refuse in `currency` (Stripe lists no refund minimum).

    :raises AmountInvalidForCurrency: if the amount is not a multiple of the currency's step
    """
    spec = CURRENCIES.get(currency)
    if spec is not None:
        _step_validate(amount, spec)
