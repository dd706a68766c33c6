"""
Database connections that outlive a request (CONN_MAX_AGE): found dead before a request uses them,
and a connection lost during a request answered as "unavailable, retry", never as a bug.

Django's CONN_HEALTH_CHECKS sends `SELECT 1` before the first query of every request: a round trip
on each request (about an eighth of a create's time under load, issue 11). An idle connection has
nothing to say, so the same question is answered locally: when PostgreSQL ends a session (a restart,
`pg_terminate_backend`, a timeout) it sends a FATAL error and closes the socket, which then polls
readable. A readable (or closed, or hung-up) idle socket is closed here and the request opens a new
connection. What no local check can see (a connection cut between the check and a query, a silent
network drop) fails its query; `database_unavailable` tells the API to answer 503 with Retry-After,
the transaction has rolled back (a retry, with the same Idempotency-Key, is safe), and Django closes
the connection when the request ends (`close_if_unusable_or_obsolete`), so the next request
reconnects: one 503 per lost connection, never a loop of 500s.
"""

from __future__ import annotations

import select

import psycopg
from django.db import DatabaseError, InterfaceError, close_old_connections, connections

# SQLSTATE classes of a lost server or session: 08 connection exception, 57P operator intervention
# (admin_shutdown, crash_shutdown, cannot_connect_now, idle_session_timeout). Not 57014 (a statement
# timeout) nor 55P03 (a lock timeout): the connection is fine after those.
_LOST_SQLSTATE_PREFIXES = ("08", "57P")


def connection_idle_alive(raw: psycopg.Connection) -> bool:
    """Whether an idle psycopg connection may still be open at the server: no round trip, one poll().

    False when psycopg knows it is closed or broken, or when its socket is readable (the server sent
    something while no query was running: an error before hanging up, or the hang-up itself).
    """
    if raw.closed or raw.broken:
        return False
    poller = select.poll()
    poller.register(raw.fileno(), select.POLLIN | select.POLLPRI)
    return not poller.poll(0)  # POLLHUP and POLLERR are reported even unasked


def connections_close_dead(**kwargs: object) -> None:
    """Close every open connection of this thread whose server has gone (a `request_started` receiver)."""
    for wrapper in connections.all(initialized_only=True):
        raw = wrapper.connection
        if raw is None or wrapper.in_atomic_block or wrapper.vendor != "postgresql":
            continue
        if not connection_idle_alive(raw):
            wrapper.close()


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database connection was lost or could not be opened (retry later)."""
    if isinstance(exc, InterfaceError):  # used after being closed
        return True
    if not isinstance(exc, DatabaseError):
        return False
    cause = exc.__cause__
    if not isinstance(cause, psycopg.OperationalError):
        return False
    sqlstate = cause.sqlstate
    # No SQLSTATE: an error of the client library itself (refused, reset, closed unexpectedly).
    return sqlstate is None or sqlstate.startswith(_LOST_SQLSTATE_PREFIXES)


def connections_keep_for_task(*, task: object = None, **kwargs: object) -> None:
    """Before and after each Celery task: what Django does around a request, in place of Celery's fixup.

    Celery's Django fixup closes every connection before and after each task, so each task opened a
    new PostgreSQL session (a backend process, authentication, `SET TIME ZONE`): about a tenth of a
    provider task's time (issue 11). With `CELERY_DB_REUSE_MAX` set it leaves them open, and this
    receiver applies what request_started/request_finished apply: `close_old_connections` (CONN_MAX_AGE,
    an autocommit left off, a connection that saw an error and no longer answers) and the local check
    of `connections_close_dead` (a session the server ended). An eager task (tests) runs inside its
    caller's transaction and connection: left alone, as the fixup leaves it.
    """
    request = getattr(task, "request", None)
    if getattr(request, "is_eager", False):
        return
    close_old_connections()
    connections_close_dead()
