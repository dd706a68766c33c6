"""
Suite-wide fixtures. The database is real PostgreSQL: `make test` starts the embedded one (or uses
DATABASE_URL); a test that needs a service starts it or fails loudly, and any skip fails the run.
"""

import pytest

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
