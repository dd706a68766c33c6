"""
Stripe's published facts about currencies and amounts, in one place (STYLE §2: provider constants
live in the gateway). Standard library only, so validating a request never loads the SDK; the client
is `payments/gateway/stripe.py`.

Source for everything below, unless a comment says otherwise: https://docs.stripe.com/currencies
("Supported presentment currencies", "Zero-decimal currencies", "Special cases", "Minimum and maximum
charge amounts"). Codes are lower case, as Stripe's API wants them.
"""

from __future__ import annotations

from decimal import Decimal

# Every currency Stripe documents as a presentment (charge) currency for card payments. The list a
# given account can use depends on its country (https://docs.stripe.com/api/country_specs), so this
# is the widest set; a charge the account cannot make is refused by Stripe and surfaces as a failed
# payment. payments.currencies keeps only those that are also legal tender today (it drops `ang` and
# `std`, which Stripe still lists after ISO retired them).
PRESENTMENT_CURRENCIES = frozenset(
    """
    usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd
    cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq gyd
    hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd lsl mad
    mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln
    pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd std szl thb tjs tnd top try ttd twd tzs
    uah ugx uyu uzs vnd vuv wst xaf xcd xof xpf yer zar zmw
    """.split()  # noqa: SIM905 - a block that reads like the page's list, not 139 lines of literals
)

# "Currencies are two-decimal currencies unless otherwise specified." These are specified:
# the amount is in the major unit (to charge 500 JPY, send 500).
ZERO_DECIMAL_CURRENCIES = frozenset(
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "vnd", "vuv", "xaf", "xof", "xpf"]
)

# Three-decimal currencies: "these API calls require the least-significant (last) digit to be 0 …
# 5.124 KWD must be rounded to 5120 or 5130" (Payment Intents, Refunds and Disputes alike). The
# section is gone from the current page but the five codes are still charged; the rule is quoted from
# https://web.archive.org/web/20221231002856/https://stripe.com/docs/currencies and kept, as the safe side.
THREE_DECIMAL_CURRENCIES = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])

# "Special cases": ISK and UGX "transitioned to a zero-decimal currency, but backwards compatibility
# requires you to represent it as a two-decimal value, where the decimal amount is always 00 … You
# can't charge fractions". Stripe answers `invalid_charge_amount_no_decimal_compatible` otherwise
# (https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds).
# HUF and TWD are whole units only for payouts; charges may carry two decimals, so they are not here.
WHOLE_UNIT_TWO_DECIMAL_CURRENCIES = frozenset(["isk", "ugx"])

# Minimum charge amounts, in major units as the page prints them. Stripe sets them so that its fee
# never exceeds the charge, per settlement currency: a charge converted into another settlement
# currency must meet that currency's minimum after conversion, which no static table can check (it
# needs the day's rate). So we refuse what is below the listed minimum of the charge's own currency (the
# exact rule when the account settles in it) and let Stripe judge the rest.
_MINIMUM_CHARGE_MAJOR_UNITS = {
    "usd": "0.50",
    "aed": "2.00",
    "ars": "0.50",
    "aud": "0.50",
    "brl": "0.50",
    "cad": "0.50",
    "chf": "0.50",
    "cop": "0.50",
    "czk": "15.00",
    "dkk": "2.50",
    "eur": "0.50",
    "gbp": "0.30",
    "hkd": "4.00",
    "huf": "175.00",
    "idr": "0.50",
    "ils": "0.50",
    "inr": "0.50",
    "jpy": "50",
    "krw": "50",
    "mxn": "10",
    "myr": "2.00",
    "nok": "3.00",
    "nzd": "0.50",
    "php": "0.50",
    "pln": "2.00",
    "ron": "2.00",
    "rub": "0.50",
    "sek": "3.00",
    "sgd": "0.50",
    "thb": "10",
    "zar": "0.50",
}


def amount_exponent(currency: str) -> int:
    """Return how many digits of Stripe's `amount` are below the major unit (2 for usd: 1099 is 10.99)."""
    if currency in ZERO_DECIMAL_CURRENCIES:
        return 0
    if currency in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def amount_step(currency: str) -> int:
    """Return what every `amount` in the currency must be a multiple of (1 unless Stripe says otherwise)."""
    if currency in THREE_DECIMAL_CURRENCIES:
        return 10
    if currency in WHOLE_UNIT_TWO_DECIMAL_CURRENCIES:
        return 100
    return 1


def _minor_units(currency: str, major: str) -> int:
    minor = Decimal(major).scaleb(amount_exponent(currency))
    if minor != minor.to_integral_value():
        raise ValueError(f"{major} {currency} is not a whole number of minor units")
    return int(minor)


# The same minimums in the minor units of `amount` (usd 50, jpy 50, huf 17500).
MINIMUM_CHARGE_AMOUNTS = {
    currency: _minor_units(currency, major) for currency, major in _MINIMUM_CHARGE_MAJOR_UNITS.items()
}
