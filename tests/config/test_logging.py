"""One logging set-up (config/log.py): every event, ours or a library's, is one JSON line on stdout/stderr."""

import io
import json
import logging

import pytest
import structlog


@pytest.fixture
def console():
    handlers = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    assert len(handlers) == 1
    stream = io.StringIO()
    previous = handlers[0].setStream(stream)
    yield stream
    handlers[0].setStream(previous)


def events(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_standard_library_logger_writes_one_json_line_even_with_a_newline_in_its_arguments(console):
    logging.getLogger("tests.stdlib").warning("refused %s", "evil\nFORGED line")

    (event,) = events(console)
    assert event["event"] == "refused evil\nFORGED line"
    assert event["level"] == "warning"
    assert event["logger"] == "tests.stdlib"
    assert "timestamp" in event


def test_a_structlog_logger_writes_its_fields_as_one_json_line(console):
    structlog.get_logger("tests.structured").warning("provider_call", path="/v1/x\ny", status=502)

    (event,) = events(console)
    assert event["event"] == "provider_call"
    assert (event["path"], event["status"], event["logger"]) == ("/v1/x\ny", 502, "tests.structured")


def test_an_exception_traceback_stays_inside_its_one_line(console):
    try:
        raise ValueError("boom\nFORGED")
    except ValueError:
        logging.getLogger("tests.stdlib").exception("Unable to do it")

    (event,) = events(console)
    assert event["event"] == "Unable to do it"
    assert "ValueError: boom\nFORGED" in event["exception"]


def test_django_loggers_have_no_plain_text_handler_of_their_own():
    # Django's default `console` handler (DEBUG only) would print "Not Found: <raw path>" unescaped.
    for name in ("django", "django.request", "django.server", "django.security"):
        logger = logging.getLogger(name)
        assert [h for h in logger.handlers if not type(h).__module__.startswith("_pytest")] == []
        assert logger.propagate
