"""
prometheus_client's multiprocess mode, set up the same way in every process that records metrics.

gunicorn workers, Celery worker processes and the relay each write their counters to memory-mapped
files in `PROMETHEUS_MULTIPROC_DIR`; the process that serves `/metrics` adds the files up
(`MultiProcessCollector`). prometheus_client reads the variable once, when it is imported, so it
must be in the process's environment before it starts (honcho's environment in `make run`, the
compose file's in docker-compose); unset, every process keeps its own in-memory registry.

Stdlib and prometheus_client only: the gunicorn master imports this through `config/gunicorn.py`.
"""

from __future__ import annotations

import os
import re
import socket

from prometheus_client import values

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# In docker-compose the directory is one volume shared by the web, worker and relay containers, and
# each container numbers its processes from 1: named by pid alone, a gunicorn worker and a Celery
# process could write one file at once and corrupt it. The host name (the container's id there)
# makes the name unique; prometheus_client reads only the part before the first "_" of a file
# name as its type, so the host name must not bring one.
_HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"


def multiprocess_dir() -> str | None:
    """Return the directory every process writes its metrics to, or None (in-process metrics only)."""
    return os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None


def process_identifier(pid: int | None = None) -> str:
    """Return the name of a process's metric files: host name and pid, unique across containers."""
    return f"{_HOST}-{pid or os.getpid()}"


def multiprocess_install() -> None:
    """Name this process's metric files by `process_identifier` (call before any metric is created).

    prometheus_client takes the naming function as a documented parameter of `MultiProcessValue`
    ("must return distinct values in simultaneously running processes"); a fork changes the pid,
    so each gunicorn worker or Celery child writes files of its own.
    """
    directory = multiprocess_dir()
    if directory is None:
        return
    os.makedirs(directory, exist_ok=True)  # a missing directory would fail the first metric, in a task
    values.ValueClass = values.MultiProcessValue(process_identifier=process_identifier)
