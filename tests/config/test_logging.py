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


class Opaque:
    def __repr__(self) -> str:
        return "<opaque\nFORGED>"


@pytest.fixture
def records():
    """The records structlog's events become, as the root logger's handlers receive them."""
    caught = []
    handler = logging.Handler()
    handler.emit = caught.append
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    yield caught
    root.setLevel(previous)
    root.removeHandler(handler)


@pytest.mark.parametrize(
    "fields",
    [
        {"path": "/api/v1/x\nFORGED request_id=req_fake", "status": 404, "duration_ms": 0.1, "client": None},
        {"path": "/x\u2028\u0085\x1b[2J\x00caf\u00e9\U0001f600", "bytes_in": 2**70, "ratio": float("inf")},
        {"when": __import__("datetime").datetime(2026, 1, 2, 3, 4, 5), "thing": Opaque(), "items": [1, "a\nb"]},
        {"nested": {"k\n": ["a", 1.5]}, "flag": True, "none": None},
        {"error": "boom\nDETAIL:  Failing row contains (row-values-7f3a).", "count": -1},
        {"stack_info": False},
        {"_from_structlog": "a field of the caller's"},  # `_record` is structlog's own: its processors read it
    ],
)
def test_structlogs_own_events_render_exactly_as_structlogs_processor_formatter_renders_them(records, fields):
    from config.log import JSONLineFormatter

    structlog.contextvars.bind_contextvars(request_id="req_1")
    try:
        structlog.get_logger("tests.structured").info("an_event", **fields)
        structlog.get_logger("tests.structured").warning("positional %s", "arg")
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    (formatter,) = {h.formatter for h in logging.getLogger().handlers if type(h) is logging.StreamHandler}

    assert type(formatter) is JSONLineFormatter
    for record in records:
        original = dict(record.__dict__)
        if "_from_structlog" in record.msg:
            line = formatter.format(record)  # keys the processor formatter drops: its own way
        else:
            with pytest.MonkeyPatch.context() as patch:  # the short way, not the processor formatter's
                patch.setattr(structlog.stdlib.ProcessorFormatter, "format", lambda *args: pytest.fail("long way"))
                line = formatter.format(record)

        assert record.__dict__ == original  # other handlers (pytest's, the suite's PII scan) see it unchanged
        assert line == structlog.stdlib.ProcessorFormatter.format(formatter, record)
        assert line.isascii() and "\n" not in line
        assert "row-values-7f3a" not in line


def test_events_with_a_traceback_and_the_standard_librarys_take_the_processor_formatters_own_way(records):
    (formatter,) = {h.formatter for h in logging.getLogger().handlers if type(h) is logging.StreamHandler}
    try:
        raise ValueError("boom\nFORGED")
    except ValueError:
        structlog.get_logger("tests.structured").exception("failed", path="/x")
        logging.getLogger("tests.stdlib").exception("Unable to %s", "do it")
        lines = [json.loads(formatter.format(record)) for record in records]  # while `exc_info=True` means this one

    assert [line["event"] for line in lines] == ["failed", "Unable to do it"]
    assert all("ValueError: boom\nFORGED" in line["exception"] for line in lines)
