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

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache

from babel import Locale
from babel.core import get_global
from babel.numbers import format_currency, get_currency_symbol, get_territory_currencies

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


# People reading amounts in the admin read them the way this locale writes them ("€20.00", "¥2,000").
MONEY_LOCALE = "en"
# CLDR's currencySpacing (the root rule every `en` locale inherits): a symbol that ends, or starts, with
# a letter gets a no-break space before, or after, an adjacent digit ("KWD 5.120", never "KWD5.120").
# Babel formats the pattern but does not apply this rule, so it is applied here.
CURRENCY_SPACE = "\u00a0"


@cache
def _money_pattern(exponent: int) -> str:
    """The locale's currency pattern with exactly `exponent` fraction digits: Stripe's count, not CLDR's."""
    pattern = Locale.parse(MONEY_LOCALE).currency_formats["standard"].pattern
    fraction = "." + "0" * exponent if exponent else ""
    return re.sub(r"0(?:\.0+)?(?![0#,.])", "0" + fraction, pattern)


def _is_letter_like(char: str) -> bool:
    # CLDR's currencyMatch: [[:^S:]&[:^Z:]], anything but a symbol or a separator.
    return unicodedata.category(char)[0] not in ("S", "Z")


def money_format(*, amount: int, currency: str) -> str:
    """
    Return `amount` (minor units, as stored and sent to Stripe) as people read it: "€20.00", "¥2,000",
    "KWD 5.120". The exponent is Stripe's (`amount` is what Stripe receives), so an lak amount of 1050
    reads LAK 10.50 even though CLDR counts no minor unit in use for lak; nothing is ever rounded away.
    """
    code = currency.upper()
    exponent = stripe_currencies.amount_exponent(currency.lower())
    text = format_currency(
        Decimal(amount).scaleb(-exponent),
        code,
        format=_money_pattern(exponent),
        locale=MONEY_LOCALE,
        currency_digits=False,
    )
    symbol = get_currency_symbol(code, locale=MONEY_LOCALE)
    if _is_letter_like(symbol[-1]):
        text = re.sub(f"({re.escape(symbol)})(?=\\d)", rf"\1{CURRENCY_SPACE}", text, count=1)
    if _is_letter_like(symbol[0]):
        text = re.sub(f"(?<=\\d)({re.escape(symbol)})", rf"{CURRENCY_SPACE}\1", text, count=1)
    return text
