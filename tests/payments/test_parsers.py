"""The body parser skips its walk for surrogates only where the text cannot hold one (issue 11)."""

import io
import json
import re

import pytest
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from payments.api import parsers
from payments.api.parsers import SafeJSONParser

DOCUMENTS = [
    ('{"amount": 2000, "currency": "eur", "metadata": {"order": "42"}}', "utf-8"),
    ('{"a": "\\ud800"}', "utf-8"),
    ('{"a": "\\uD800"}', "utf-8"),
    ('{"a": "\\uDfFf"}', "utf-8"),
    ('{"a": ["x", {"b": "\\udc00"}]}', "utf-8"),
    ('{"\\ud800": 1}', "utf-8"),
    ('"\\ud800"', "utf-8"),
    ('{"a": "\\ud83d\\udcb3"}', "utf-8"),  # a pair: one character
    ('{"a": "\\\\ud800"}', "utf-8"),  # an escaped backslash, then the letters: no surrogate
    ('{"a": "\\u00e9\\ucafe"}', "utf-8"),
    ('{"a": "\U0001f4b3"}', "utf-8"),
    ('{"a": "\U0001f4b3", "b": "\\udfff"}', "utf-16"),
    ('{"a": 1}', "latin-1"),
    ("[1, 2", "utf-8"),
    ('{"a": NaN}', "utf-8"),
]


def outcome(parser, text, encoding):
    try:
        return "data", parser.parse(io.BytesIO(text.encode(encoding, "surrogatepass")), None, {"encoding": encoding})
    except (ParseError, ValidationError) as exc:
        return type(exc).__name__, str(exc.detail)


@pytest.mark.parametrize(("text", "encoding"), DOCUMENTS)
def test_the_parser_answers_as_with_the_walk_over_every_document(monkeypatch, text, encoding):
    answer = outcome(SafeJSONParser(), text, encoding)

    monkeypatch.setattr(parsers, "SURROGATE_SOURCE", re.compile(""))  # matches every text: always walk
    assert outcome(SafeJSONParser(), text, encoding) == answer


@pytest.mark.parametrize(
    "raw", [b'{"a": 1}', b'{"a": 1}\xc3', b'{"a": "\xff"}', b"[1, 2", b'{"a": Infinity}', b"\xef\xbb\xbf{}", b""]
)
def test_the_json_it_accepts_and_refuses_is_drfs(raw):
    def drf(parser):
        try:
            return parser.parse(io.BytesIO(raw), None, {"encoding": "utf-8"})
        except ParseError as exc:
            return str(exc.detail)

    assert drf(SafeJSONParser()) == drf(JSONParser())


def test_the_walk_is_skipped_for_a_document_without_surrogates(monkeypatch):
    def walk(data):
        raise AssertionError("walked")

    monkeypatch.setattr(parsers, "_lone_surrogate_path", walk)
    body = json.dumps({"amount": 2000, "description": "caf\u00e9 \U0001f4b3"}, ensure_ascii=False)

    assert SafeJSONParser().parse(io.BytesIO(body.encode()), None, {}) == json.loads(body)
