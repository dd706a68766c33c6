"""The WSGI entry point gunicorn serves: a request Django cannot even build is a 400, never gunicorn's 500."""

import io
import json
import logging
from wsgiref.util import setup_testing_defaults

import pytest

from config.wsgi import application

pytestmark = pytest.mark.django_db

SECRET = "sk_live_do_not_log_me"


def serve(path: str, *, query: str = "", content_type: str | None = None) -> tuple[int, dict, bytes]:
    """Call the WSGI application as gunicorn would (no test client: it builds the request itself)."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "wsgi.input": io.BytesIO()}
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    setup_testing_defaults(environ)
    started = {}

    def start_response(status, headers, exc_info=None):
        started["status"], started["headers"] = int(status.split()[0]), dict(headers)

    chunks = application(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return started["status"], started["headers"], body


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain; charset=rot13",  # a str-to-str codec: bytes.decode() refuses it with LookupError
        "text/plain; charset=bz2_codec",  # bytes-to-bytes
        "text/plain; charset=punycode",  # a text codec that raises UnicodeError, not UnicodeDecodeError
        "text/plain; charset*=BOGUS''x",  # RFC 2231 with an encoding Python does not know
    ],
)
@pytest.mark.parametrize("path", ["/healthz", "/api/v1/payments", "/admin/login/"])
def test_a_content_type_charset_django_cannot_read_the_request_with_is_a_400(path, content_type, caplog):
    with caplog.at_level(logging.INFO):
        status, headers, body = serve(path, query=f"limit=1&api_key={SECRET}", content_type=content_type)

    assert status == 400
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "request_malformed"
    (event,) = [r.msg for r in caplog.records if r.name == "config.wsgi"]
    assert (event["event"], event["path"]) == ("request_unreadable", path)
    assert SECRET not in "\n".join(str(r.msg) + r.getMessage() for r in caplog.records)  # no query string


@pytest.mark.parametrize("content_type", [None, "text/plain; charset=utf-8", "text/plain; charset=no-such-charset"])
def test_a_request_django_can_read_passes_the_guard_untouched(content_type):
    status, _, body = serve("/healthz", query="probe=1", content_type=content_type)

    assert (status, json.loads(body)) == (200, {"status": "ok"})


def test_the_guard_leaves_a_non_ascii_path_for_django_to_decode():
    # WSGI carries the path as ISO-8859-1 code points of its UTF-8 bytes; Django decodes it once.
    status, _, body = serve("/api/v1/\u20ac".encode().decode("iso-8859-1"))

    assert status == 404
    assert json.loads(body)["error"]["message"] == "Unrecognized request URL (GET: /api/v1/\u20ac)."
