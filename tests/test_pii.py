"""The log scan can fail: tests/pii.py finds each kind of personal data and secret, and only those."""

import logging

import pytest
import structlog

from tests.pii import PLANTED, LogScan, app_log_formatter, find_pii, luhn_valid


@pytest.mark.parametrize("kind", PLANTED)
def test_every_planted_value_is_found_inside_a_json_log_line(kind):
    line = f'{{"event": "payment_created", "detail": "x {PLANTED[kind]} y", "level": "info"}}'

    assert any(kind in hit for hit in find_pii(line))


@pytest.mark.parametrize(
    "text",
    [
        "card 4242424242424242 declined",  # Visa
        "pan=5105-1051-0510-5100",  # Mastercard, dashed
        "4012 8888 8888 1881",  # Visa, spaced
        "amex 371449635398431",
        '{"customer_reference": "6011111111111117"}',  # Discover, in a field meant for something else
    ],
)
def test_a_luhn_valid_card_number_is_found_plain_spaced_or_dashed(text):
    assert any(hit.startswith("card number") for hit in find_pii(text))


@pytest.mark.parametrize(
    "text",
    [
        "evt_test_1_1795632532123456789",  # a nanosecond timestamp inside an id
        "pay_01M8A24HV5SJBKXD8EK23J076J",  # a ULID
        "4242424242424241",  # fails the Luhn check
        "duration_ms 1234567890123",  # 13 digits, Luhn-invalid
        "port 18931, pid 10753, 2026-11-25T18:41:26.550234+00:00",
        "9999999999999995",  # Luhn-valid, but no card network starts with 9
        "Task payments.payment_submit[24720269-6409-4767-9c84-ed83c3261afb] received",  # a UUID, 8-4-4 Luhn-valid
    ],
)
def test_ids_timestamps_and_other_numbers_are_not_card_numbers(text):
    assert [hit for hit in find_pii(text) if hit.startswith("card number")] == []


def test_the_luhn_check_is_the_standard_one():
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("receipt to jane.roe@example.com sent", "e-mail address"),
        ("Bearer ueHLdYKL.h2A4KMJwttJDHicuU7mG5g8NyN8382qD", "API key"),
        ("key sk_live_51H8xYzAbCdEfGhIjKl", "provider secret"),
        ("secret whsec_AbCdEfGh12345678", "provider secret"),
    ],
)
def test_emails_api_keys_and_provider_secrets_are_found(text, kind):
    assert any(hit.startswith(kind) for hit in find_pii(text))


def test_the_providers_own_support_address_in_an_sdk_error_is_not_personal_data():
    text = "APIConnectionError: Unexpected error communicating with Stripe. ... contact us at support@stripe.com."

    assert find_pii(text) == []


def test_nothing_is_found_in_an_ordinary_access_log_line():
    line = (
        '{"client_request_id": null, "method": "POST", "path": "/api/v1/payments/pay_01M8A24HV5SJBKXD8EK23J076J/'
        'refunds", "status": 202, "duration_ms": 12.5, "client": "merchant", "bytes_in": 41, "event": '
        '"api_request", "request_id": "req_01M8A0QZM6G56V13YQ5RZ0V7TA", "level": "info", "timestamp": '
        '"2026-11-25T18:41:26.550234Z"}'
    )

    assert find_pii(line) == []


@pytest.fixture
def isolated_logger():
    """A logger that does not reach the root, so what the test logs on purpose is not a leak of the suite."""
    logger = logging.getLogger("tests.pii.isolated")
    scan = LogScan(formatter=app_log_formatter(), extra=("sk_test_configured",))
    logger.addHandler(scan)
    logger.propagate, logger.level = False, logging.INFO
    yield logger, scan
    logger.removeHandler(scan)


def test_the_log_scan_finds_what_a_standard_library_or_structlog_logger_leaks(isolated_logger):
    logger, scan = isolated_logger

    logger.info("customer %s", PLANTED["email"])
    structlog.wrap_logger(logger, **structlog.get_config()).info("provider_call", description=PLANTED["description"])
    logger.warning("calling with sk_test_configured")

    found = " ".join(hit for _, hit in scan.hits)
    assert "planted email" in found and "planted description" in found and "configured secret" in found
