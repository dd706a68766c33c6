"""
The currencies we accept: what Stripe would refuse, we refuse at once (a 400 naming the
parameter) rather than as a failed payment later.

Nothing here is a hand-written list. The ISO 4217 codes come from Babel (Unicode CLDR): the currencies
that are legal tender today in some territory, which leaves out fund codes (usn, clf, …), precious
metals (xau, …), test codes (xts) and retired codes (ang, std, hrk, …). We accept those that Stripe can
also charge (`payments.gateway.stripe.PRESENTMENT_CURRENCIES`).

Exponents follow Stripe, because `amount` is what Stripe receives: two decimals unless Stripe lists
the currency as zero- or three-decimal. Babel's count (CLDR's digits in everyday use) agrees except
for isk and ugx (Stripe's special cases: two decimals, whole units only) and afn, all, lak, lbp,
mmk, rsd, sos, yer (CLDR counts no minor unit in use; ISO 4217 and Stripe count two). huf and twd
agree (two): Stripe's whole-unit rule for them is for payouts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from babel.core import get_global
from babel.numbers import get_territory_currencies

from payments.gateway import stripe


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
        exponent=stripe.amount_exponent(code),
        amount_step=stripe.amount_step(code),
        minimum_amount=stripe.MINIMUM_CHARGE_AMOUNTS.get(code),
    )
    for code in sorted(ISO_4217_CURRENCIES & stripe.PRESENTMENT_CURRENCIES)
}
