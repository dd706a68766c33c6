"""The API's one body parser: JSON that is also Unicode text, or a 400 before any view sees it."""

from __future__ import annotations

import codecs
import re

from rest_framework.exceptions import ErrorDetail, ParseError, ValidationError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json

# JSON's "\ud800" escape decodes to a lone UTF-16 surrogate: valid JSON syntax, but no Unicode text.
# It cannot be encoded to UTF-8 (hashing the idempotency key failed with a 500), stored or sent on;
# I-JSON refuses it (https://www.rfc-editor.org/rfc/rfc7493#section-2.1). A pair decodes to one
# character, so whatever is left in the range after decoding is unpaired.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
NOT_UNICODE = "Must be valid Unicode text (it holds an unpaired UTF-16 surrogate escape such as \\ud800)."
# Where a surrogate in the parsed document can come from: an escape \uD800 to \uDFFF (any case) in the
# text, or a surrogate the charset's decoder let into the text itself. A document with neither holds
# none, and the walk over every string of it is skipped.
SURROGATE_SOURCE = re.compile("\\\\u[dD][89a-fA-F]|[\ud800-\udfff]")


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, with what Python's decoder lets through answered as 400, not 500.

    Nesting too deep for the decoder is invalid_json. A lone surrogate in a value is
    parameter_invalid naming the parameter (`metadata[order]`); in a key it names the object that
    holds it, and at the top level, where there is nothing to name, it is invalid_json. The value
    itself is never echoed: it could not be rendered.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        # DRF's JSONParser.parse, step by step (json.load is json.loads of the reader's read()), so the
        # text can be searched for surrogates before the document is walked.
        encoding = get_encoding(parser_context or {})  # a text charset, or a 400
        try:
            text = codecs.getreader(encoding)(stream).read()
            data = json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        except RecursionError as exc:
            raise ParseError("JSON parse error - the document is nested too deeply") from exc
        if not SURROGATE_SOURCE.search(text):
            return data
        path = _lone_surrogate_path(data)
        if path is None:
            return data
        if not path:
            raise ParseError(f"JSON parse error - {NOT_UNICODE}")
        raise ValidationError(_nested_detail(path))


def _lone_surrogate_path(data) -> list[str] | None:
    """Return the keys leading to the first string with a lone surrogate (a bad key: its parent), or None."""
    pending: list[tuple[list[str], object]] = [([], data)]
    while pending:  # iterative: a document nested 900 deep must not exhaust the stack here
        path, value = pending.pop()
        if isinstance(value, str):
            if LONE_SURROGATE.search(value):
                return path
        elif isinstance(value, dict):
            if any(LONE_SURROGATE.search(key) for key in value):
                return path
            pending.extend(([*path, key], item) for key, item in reversed(value.items()))  # in document order
        elif isinstance(value, list):
            pending.extend(([*path, str(index)], value[index]) for index in reversed(range(len(value))))
    return None


def _nested_detail(path: list[str]) -> dict:
    """DRF's nested error detail for `path`, so the error names it as any field error would."""
    detail: object = [ErrorDetail(NOT_UNICODE, code="invalid")]
    for key in reversed(path):
        detail = {key: detail}
    return detail
