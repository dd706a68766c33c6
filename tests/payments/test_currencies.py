from datetime import date

import pytest
from babel.numbers import get_currency_precision, get_territory_currencies, is_currency

from payments.currencies import (
    CURRENCIES,
    ISO_4217_CURRENCIES,
    charge_amount_validate,
    money_format,
    refund_amount_validate,
)
from payments.errors import AmountInvalidForCurrency, AmountTooSmall
from payments.gateway import stripe_currencies

FUNDS_AND_METALS = ["usn", "clf", "bov", "che", "chw", "cou", "mxv", "uyi", "uyw", "xsu", "xua", "xdr", "xau", "xag"]


def test_accepted_currencies_are_babels_legal_tender_that_stripe_can_charge():
    legal_tender = {
        code.lower()
        for territory in ("US", "DE", "JP", "KW", "IS", "UG", "CL", "ST", "CW")
        for code in get_territory_currencies(territory, start_date=date.today(), tender=True)
    }

    assert legal_tender <= ISO_4217_CURRENCIES
    assert set(CURRENCIES) == ISO_4217_CURRENCIES & stripe_currencies.PRESENTMENT_CURRENCIES
    assert {"usd", "eur", "jpy", "kwd", "isk", "ugx", "clp"} <= set(CURRENCIES)


@pytest.mark.parametrize("code", FUNDS_AND_METALS)
def test_fund_codes_and_metals_are_iso_codes_babel_knows_but_not_accepted(code):
    assert is_currency(code.upper())

    assert code not in ISO_4217_CURRENCIES
    assert code not in CURRENCIES


@pytest.mark.parametrize("code", ["ang", "std"])
def test_codes_stripe_still_lists_after_iso_retired_them_are_not_accepted(code):
    assert code in stripe_currencies.PRESENTMENT_CURRENCIES

    assert code not in CURRENCIES


def test_every_accepted_currency_has_a_known_exponent_and_step():
    for currency in CURRENCIES.values():
        assert currency.exponent in (0, 2, 3), currency
        assert currency.amount_step in (1, 10, 100), currency
        assert currency.amount_step <= 10**currency.exponent, currency


def test_exponents_agree_with_babel_except_where_stripe_counts_two_decimals():
    differing = {code for code, c in CURRENCIES.items() if get_currency_precision(code.upper()) != c.exponent}

    # isk and ugx: Stripe's special cases (two decimals, whole units only). The others: CLDR counts no
    # minor unit in everyday use, while ISO 4217 and Stripe ("two-decimal unless otherwise specified")
    # count two. A new difference means Babel or Stripe changed: look before accepting it. Babel 2.19's
    # CLDR dropped the minor unit of cop, huf and idr and gave rsd two digits again: our amounts are
    # Stripe's, so nothing we charge or show moved (test_money_format_uses_stripes_exponent...).
    assert differing == {"afn", "all", "cop", "huf", "idr", "isk", "lak", "lbp", "mmk", "sos", "ugx", "yer"}
    assert all(CURRENCIES[code].exponent == 2 for code in differing)


def test_stripes_zero_and_three_decimal_currencies_are_babels_too():
    for code in stripe_currencies.ZERO_DECIMAL_CURRENCIES:
        assert get_currency_precision(code.upper()) == 0, code
    for code in stripe_currencies.THREE_DECIMAL_CURRENCIES:
        assert get_currency_precision(code.upper()) == 3, code


def test_every_listed_minimum_is_for_an_accepted_currency_in_its_minor_units():
    assert set(stripe_currencies.MINIMUM_CHARGE_AMOUNTS) <= set(CURRENCIES)
    assert (stripe_currencies.MINIMUM_CHARGE_AMOUNTS["usd"], stripe_currencies.MINIMUM_CHARGE_AMOUNTS["jpy"]) == (
        50,
        50,
    )
    assert (stripe_currencies.MINIMUM_CHARGE_AMOUNTS["gbp"], stripe_currencies.MINIMUM_CHARGE_AMOUNTS["huf"]) == (
        30,
        17500,
    )
    for code, minimum in stripe_currencies.MINIMUM_CHARGE_AMOUNTS.items():
        assert minimum % CURRENCIES[code].amount_step == 0, code


def test_charge_amount_validate_names_the_minimum_in_minor_and_major_units():
    with pytest.raises(AmountTooSmall) as raised:
        charge_amount_validate(amount=29, currency="gbp")

    assert raised.value.param == "amount"
    assert raised.value.message == "Amount must be at least 30 (0.30 GBP), the provider's minimum charge in gbp"


def test_charge_amount_validate_checks_the_step_before_the_minimum():
    with pytest.raises(AmountInvalidForCurrency):
        charge_amount_validate(amount=1, currency="kwd")


def test_a_currency_without_a_listed_minimum_is_held_to_its_step_only():
    charge_amount_validate(amount=10, currency="kwd")
    charge_amount_validate(amount=100, currency="isk")


def test_refunds_keep_the_step_but_have_no_minimum():
    refund_amount_validate(amount=1, currency="usd")

    with pytest.raises(AmountInvalidForCurrency):
        refund_amount_validate(amount=150, currency="ugx")


def test_a_payment_in_a_currency_no_longer_accepted_is_left_to_the_provider():
    charge_amount_validate(amount=1, currency="ang")
    refund_amount_validate(amount=1, currency="std")


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (2000, "eur", "€20.00"),
        (2000, "usd", "$20.00"),
        (123456, "usd", "$1,234.56"),
        (2000, "jpy", "¥2,000"),  # zero-decimal: the amount is whole yen
        (5120, "kwd", "KWD\u00a05.120"),  # three decimals; CLDR's no-break space after a letter symbol
        (5, "eur", "€0.05"),
    ],
)
def test_money_format_shows_minor_units_as_people_read_them(amount, currency, shown):
    assert money_format(amount=amount, currency=currency) == shown


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1000, "isk", "ISK\u00a010.00"),  # CLDR counts 0 digits; Stripe's amount has 2
        (1050, "lak", "LAK\u00a010.50"),  # CLDR would round this to LAK 11
    ],
)
def test_money_format_uses_stripes_exponent_and_never_rounds_an_amount_away(amount, currency, shown):
    assert get_currency_precision(currency.upper()) == 0

    assert money_format(amount=amount, currency=currency) == shown
