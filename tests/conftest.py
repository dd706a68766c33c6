"""
Suite-wide fixtures. The database is real PostgreSQL: `make test` starts the embedded one (or uses
DATABASE_URL); a test that needs a service starts it or fails loudly, and any skip fails the run.
"""

import pytest

pytest_plugins = ["tests.fixtures.sandbox", "tests.fixtures.gateway", "tests.fixtures.live", "tests.fixtures.ops"]

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A skipped test hides a missing service; in this project that is a failure, never a pass.
    if _skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
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
