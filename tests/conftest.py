"""
Suite-wide fixtures. The database is real PostgreSQL: `make test` starts the embedded one (or uses
DATABASE_URL); a test that needs a service starts it or fails loudly, and any skip fails the run.
"""

import logging
from pathlib import Path

import pytest
from django.test import client as django_test_client
from rest_framework import test as drf_test

from config.stacks import ApiMiddlewareMixin, uses_api_stack
from tests.pii import LogScan, app_log_formatter

pytest_plugins = ["tests.fixtures.sandbox", "tests.fixtures.gateway", "tests.fixtures.live", "tests.fixtures.ops"]


def _stack_dispatching(handler_class):
    """`handler_class` (a test client's handler) dispatching as gunicorn's application does
    (config/stacks.py): /api/v1/ and /webhooks/ through the API's middleware stack, the rest through the site's."""
    api_class = type(f"Api{handler_class.__name__}", (ApiMiddlewareMixin, handler_class), {})

    class StackDispatching(handler_class):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.api = api_class(*args, **kwargs)

        def __call__(self, environ):
            if not uses_api_stack(environ["PATH_INFO"]):
                return super().__call__(environ)
            for name in ("_force_user", "_force_token"):  # DRF's APIClient.force_authenticate
                if hasattr(self, name):
                    setattr(self.api, name, getattr(self, name))
            return self.api(environ)

    StackDispatching.__name__ = StackDispatching.__qualname__ = f"Stack{handler_class.__name__}"
    return StackDispatching


# Every Client and APIClient of the suite: their __init__ builds the handler from these names.
django_test_client.ClientHandler = _stack_dispatching(django_test_client.ClientHandler)
drf_test.ForceAuthClientHandler = _stack_dispatching(drf_test.ForceAuthClientHandler)

_skipped: list[str] = []
# Every log record of the session, rendered as the app renders it, scanned for planted personal data.
_log_scan: LogScan | None = None


def _log_scan_attach() -> None:
    """Put the scan on the root logger at INFO (production's level), again if a test reconfigured logging."""
    global _log_scan
    root = logging.getLogger()
    if _log_scan is None:
        from django.conf import settings

        _log_scan = LogScan(
            formatter=app_log_formatter(), extra=(settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET)
        )
    if _log_scan not in root.handlers:
        root.addHandler(_log_scan)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def pytest_sessionstart(session: pytest.Session) -> None:
    _log_scan_attach()


def pytest_runtest_setup(item: pytest.Item) -> None:
    _log_scan_attach()
    _log_scan.where = item.nodeid


def _log_files_scan(session: pytest.Session) -> None:
    """Scan the log files of the processes the suite started (live stacks, gunicorn, chaos runs)."""
    base = Path(session.config._tmp_path_factory.getbasetemp())
    for path in sorted(base.rglob("*.log")):
        _log_scan.scan(path.read_text(errors="replace"), where=str(path.relative_to(base)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A skipped test hides a missing service; in this project that is a failure, never a pass.
    if _skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if _log_scan is not None:
        _log_files_scan(session)
        # Personal data or a secret in a log is a leak, whichever test caused it (issue 12).
        if _log_scan.hits and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    if _log_scan is not None and _log_scan.hits:
        hits = sorted(set(_log_scan.hits))
        terminalreporter.write_line(f"FAILED: personal data or secrets in the logs ({len(hits)}):", red=True)
        for where, hit in hits[:50]:
            terminalreporter.write_line(f"  {where}: {hit}", red=True)
    if _skipped:
        terminalreporter.write_line(
            f"FAILED: {len(_skipped)} test(s) skipped; skips are not allowed here: {', '.join(_skipped)}",
            red=True,
        )


@pytest.fixture
def merchant():
    """An API client (the owner of payments and idempotency keys)."""
    from tests.factories import ApiClientFactory

    return ApiClientFactory(name="merchant")


@pytest.fixture
def api(merchant):
    """A DRF test client authenticated as `merchant` with a real, hashed API key."""
    from rest_framework.test import APIClient

    from tests.factories import api_key_create

    _, key = api_key_create(client=merchant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Lets fixtures see whether the test failed (the live stack prints its processes' logs then).
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
