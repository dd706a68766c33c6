"""
Personal data planted in what the tests send, and the detector that must never find it in a log.

The factories and the request-building tests put these values where customers put theirs (descriptions,
metadata values, customer references, e-mails, card numbers in fields that should never hold one);
tests/conftest.py captures every log record the suite emits, and the log files of the processes it
starts, and fails the session if `find_pii` finds anything. The chaos suite scans its runs' logs with
the same function. Every value is ASCII, so the JSON log renderer (ensure_ascii) writes it unchanged.
"""

from __future__ import annotations

import logging
import re

# Luhn-valid test PANs (Visa, Mastercard, Amex) and distinctive text no log line could hold by chance.
PLANTED = {
    "card_number": "4000056655665556",
    "card_number_spaced": "5555 5555 5555 4444",
    "card_number_amex": "378282246310005",
    "email": "planted.customer+pii@example.org",
    "description": "PLANTED-DESCRIPTION-c4f1e9 birthday gift for Jane Roe",
    "metadata_value": "PLANTED-METADATA-VALUE-8d2b71",
    "customer_reference": "PLANTED-CUSTOMER-REF-5a03e2",
    "name": "PLANTED-NAME Jane Roe",
    "phone": "+44 7700 900461 PLANTED-PHONE",
    "address": "17 PLANTED-ADDRESS Lane, Leeds LS1 4AP",
}

# Addresses that are nobody's personal data: the provider's own, quoted in the Stripe SDK's error messages
# ("... contact us at support@stripe.com", seen in the chaos run's worker logs).
NOT_PERSONAL_EMAILS = frozenset({"support@stripe.com"})
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
# 13 to 19 digits, optionally grouped by single spaces or dashes, not part of a longer word, number or
# dashed id (a UUID's first three groups, 8-4-4 digits, can be a Luhn-valid "card" by chance).
_CARD_LIKE = re.compile(r"(?<![\w.-])(?:\d[ -]?){12,18}\d(?![\w.-])")
# Card networks' leading digits (Visa 4, Mastercard 51-55 and 2221-2720, Amex 34/37, Discover 6011/64/65,
# JCB 35, Diners 36/38/300-305, UnionPay 62): a Luhn-valid run that starts otherwise is an id, not a card.
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[4-8]|30[0-5]|6011|6[245])")
# Our API keys (djangorestframework-api-key: an 8-character prefix, a dot, a 32-character secret) and
# Stripe secrets (https://docs.stripe.com/keys#obtain-api-keys).
_API_KEY = re.compile(r"(?<![\w.])[A-Za-z0-9]{8}\.[A-Za-z0-9]{32}(?![\w])")
_STRIPE_SECRET = re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}|\bwhsec_[A-Za-z0-9]{8,}")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def find_pii(text: str) -> list[str]:
    """Return a description of each piece of personal data or secret in `text` (empty: none)."""
    hits = [f"planted {kind}: {value!r}" for kind, value in PLANTED.items() if value in text]
    for match in _CARD_LIKE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn_valid(digits):
            hits.append(f"card number: {match.group()!r}")
    hits += [
        f"e-mail address: {match.group()!r}"
        for match in _EMAIL.finditer(text)
        if match.group().lower() not in NOT_PERSONAL_EMAILS
    ]
    hits += [f"API key: {match.group()[:8]}…" for match in _API_KEY.finditer(text)]
    hits += [f"provider secret: {match.group()[:10]}…" for match in _STRIPE_SECRET.finditer(text)]
    return hits


def app_log_formatter() -> logging.Formatter | None:
    """The formatter of the app's own log handler (config/log.py), as set on the root logger."""
    import structlog

    return next(
        (
            h.formatter
            for h in logging.getLogger().handlers
            if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)
        ),
        None,
    )


class LogScan(logging.Handler):
    """A logging handler that renders each record as the app's handler would and keeps what `find_pii` finds.

    `extra` adds literal secrets of the running configuration (e.g. the Stripe key in settings).
    """

    def __init__(self, *, formatter: logging.Formatter | None = None, extra: tuple[str, ...] = ()) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(formatter)
        self.extra = tuple(value for value in extra if value)
        self.where = "session start"
        self.hits: list[tuple[str, str]] = []

    def scan(self, text: str, *, where: str) -> None:
        found = find_pii(text) + [f"configured secret: {value[:10]}…" for value in self.extra if value in text]
        self.hits += [(where, hit) for hit in found]

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) if self.formatter else record.getMessage()
        except Exception:  # a record that cannot be rendered is still scanned, raw
            text = f"{record.msg} {record.args}"
        self.scan(text, where=self.where)
