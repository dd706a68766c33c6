"""
schemathesis hooks for test_api_schemathesis.py, loaded by the CLI through SCHEMATHESIS_HOOKS.

Our integer fields take a JSON integer only (`2000`, never `2000.0`: payments/api/fields.py refuses a
float so that an amount in major units is never taken for minor units). JSON Schema 2020-12, and so
OpenAPI 3.1, counts `2000.0` as the integer 2000 and cannot state the difference; the schema says it
in words. schemathesis sends some integers spelled as floats on purpose: here they are sent as the
integers they spell, so what it checks is everything the schema can state.

Each valid Idempotency-Key is also made unique to its request: schemathesis draws keys from a small
space ("0", "00", …), and the same key with another body is, rightly, 422 idempotency_key_reused,
which would hide what the request itself comes to. Replays are tested in test_idempotency.py.
"""

from __future__ import annotations

import itertools
import os
import re

import schemathesis

# From payments.idempotency, passed by the test: the CLI loads this module without Django set up.
HEADER = "Idempotency-Key"
KEY_PATTERN = os.environ["IDEMPOTENCY_KEY_PATTERN"]
MAX_KEY_LENGTH = int(os.environ["IDEMPOTENCY_KEY_MAX_LENGTH"])
_requests = itertools.count(1)


def _spell_whole_floats_as_integers(value):
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = _spell_whole_floats_as_integers(item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            value[index] = _spell_whole_floats_as_integers(item)
    elif isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


def _unique_key(key: str) -> str:
    suffix = f"-{next(_requests)}"
    return key[: MAX_KEY_LENGTH - len(suffix)].rstrip(" ") + suffix


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return  # a case meant to be refused is sent as drawn (an edit would make schemathesis re-judge it)
    _spell_whole_floats_as_integers(case.body)
    key = (case.headers or {}).get(HEADER)
    if isinstance(key, str) and len(key) <= MAX_KEY_LENGTH and re.fullmatch(KEY_PATTERN, key):
        case.headers[HEADER] = _unique_key(key)  # a valid key stays valid; an invalid one is left to be refused
