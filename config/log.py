"""
One logging set-up for every process (web, worker, beat, relay): each event is one JSON line.

structlog renders its own events (`structlog.get_logger(__name__).info("provider_call", status=502)`)
and the standard library's records (Django, Celery, `logging.getLogger(__name__)`) through the one
handler that settings.LOGGING puts on the root logger. JSON escaping turns a newline, a control
character or a Unicode line separator in a client-controlled value into part of a string, so one
event can never read as two (https://owasp.org/www-community/attacks/Log_Injection); `ensure_ascii`
keeps every line plain ASCII. Fields bound with `structlog.contextvars` (the API binds
`request_id`) are added to every event of that request, the standard library's included.
https://www.structlog.org/en/stable/standard-library.html#rendering-using-structlog-based-formatters-within-logging
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache

import structlog

# PostgreSQL's DETAIL line of a constraint violation quotes the row ("Key (payment_id, key)=(…)",
# "Failing row contains (…)"): descriptions, metadata, references, whatever the customer sent. psycopg
# puts it in the exception's text, so it would reach a traceback in the logs and a stored last_error.
_ROW_DETAIL = re.compile(r"^DETAIL:.*$", re.MULTILINE)
ROW_DETAIL_WITHHELD = "DETAIL: (row values withheld)"


def without_row_values(text: str) -> str:
    """Return `text` with PostgreSQL's DETAIL lines (which quote row values) replaced by a placeholder."""
    return _ROW_DETAIL.sub(ROW_DETAIL_WITHHELD, text)


def _row_values_withheld(logger, method_name: str, event_dict: dict) -> dict:
    """structlog processor: no rendered value (message, traceback, field) carries a DETAIL line."""
    for key, value in event_dict.items():
        if isinstance(value, str) and "DETAIL:" in value:
            event_dict[key] = without_row_values(value)
    return event_dict


# Run on every event, whether it came from structlog or from a standard-library logger.
_SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


@lru_cache(maxsize=8)
def _encoder(default) -> json.JSONEncoder:
    return json.JSONEncoder(default=default)


def _json_dumps(obj, *, default) -> str:
    """`json.dumps(obj, default=default)` (ensure_ascii and all), with its encoder built once, not per line."""
    return _encoder(default).encode(obj)


# What renders an event dict into its line, once the record's own fields are off it.
_RENDER = [
    _row_values_withheld,
    structlog.processors.JSONRenderer(serializer=_json_dumps),
]


class JSONLineFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's ProcessorFormatter, with a shorter way for structlog's own events that carry no traceback.

    ProcessorFormatter copies every record, runs the record-cleaning processors and then the standard
    library's `%(message)s` formatting, about a third of the cost of an access line (issue 11). For an
    event dict from structlog with no `exc_info` none of that changes the line: it is rendered by the
    same `_RENDER` processors straight from a copy of the dict, and the record is left as it came.
    Every other record (the standard library's, a traceback) takes ProcessorFormatter's own way.
    """

    def format(self, record: logging.LogRecord) -> str:
        event_dict = record.msg
        method_name = getattr(record, "_name", None)
        if (
            type(event_dict) is dict
            and type(method_name) is str
            and "exc_info" not in event_dict
            and "_record" not in event_dict  # the processor formatter's own keys, which it would drop
            and "_from_structlog" not in event_dict
            and record.exc_info is None
            and record.stack_info is None
            and self.logger is None
            and self._fmt == "%(message)s"
            and hasattr(record, "_logger")
        ):
            line = event_dict.copy()
            for processor in _RENDER:
                line = processor(record._logger, method_name, line)
            return line
        return super().format(record)


def logging_config(*, level: str) -> dict:
    """Return settings.LOGGING: the root logger writes JSON lines to stderr, and nothing else writes."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": JSONLineFormatter,
                "foreign_pre_chain": _SHARED_PROCESSORS,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,  # the traceback becomes one escaped field
                    *_RENDER,
                ],
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Naming Django's loggers drops the plain-text `console` handler of its DEFAULT_LOGGING,
            # which (with DEBUG on) printed "Not Found: <raw path>" beside our JSON line.
            "django": {"level": "INFO"},
            "django.server": {"level": "INFO", "propagate": True},
            "django.db.backends": {"level": "WARNING"},
            # The SDK's INFO lines carry full URLs (search queries hold metadata values) and its DEBUG
            # lines whole bodies; payments.gateway.calls logs each provider call without them.
            "stripe": {"level": "WARNING"},
        },
    }


def structlog_configure() -> None:
    """Send structlog's events through the standard library, so LOGGING's handler renders them."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
