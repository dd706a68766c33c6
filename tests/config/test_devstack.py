"""The dev stack behind `make run`: embedded servers, one instance at a time, nothing left behind."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from config.devstack import paths
from config.devstack import stack as devstack
from config.devstack.locks import OwnerLock
from config.devstack.redis import port_is_free

SERVICE_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "DJANGO_SETTINGS_MODULE",
    "STRIPE_API_BASE",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "EMBEDDED_REDIS_PORT",
    "PORT",
    "SANDBOX_PORT",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SERVICE_VARIABLES}
    return {**env, "DATA_DIR": str(data_dir), **extra}


def run_devstack(*args: str, env: dict, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "config.devstack", *args],
        cwd=paths.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL built here
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def wait_ready(stack: subprocess.Popen, web_port: int) -> None:
    deadline = time.monotonic() + 150
    while get(f"http://127.0.0.1:{web_port}/readyz") != 200:
        assert stack.poll() is None, stack.stdout.read()
        assert time.monotonic() < deadline, "readyz did not answer 200 in time"
        time.sleep(0.5)


def wait_for_demo_checkout(data_dir: Path, web_port: int, timeout: float = 60) -> list[dict]:
    """The demo process posts one checkout through the API with the demo key make run printed, and
    walks it through the system to a partial refund (waited for here: amount_refunded is set)."""
    key = json.loads((data_dir / "dev-secrets.json").read_text())["DEMO_API_KEY"]
    request = urllib.request.Request(
        f"http://127.0.0.1:{web_port}/api/v1/payments",
        headers={"Authorization": f"Bearer {key}"},
    )
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            payments = json.loads(response.read())["data"]
        if (payments and payments[0]["amount_refunded"]) or time.monotonic() > deadline:
            time.sleep(3)  # the refund's worker call, after its row counted it
            return payments
        time.sleep(0.5)


def in_time_wait(port: int) -> bool:
    """Whether a closed connection of a server that listened on `port` is still in TIME_WAIT."""
    return any(
        connection.status == psutil.CONN_TIME_WAIT and connection.laddr.port == port
        for connection in psutil.net_connections("tcp")
    )


def wait_for_counters_of_other_processes(web_port: int, timeout: float = 60) -> dict[str, float]:
    """Scrape web's /metrics (open under DEBUG) until it adds up what the relay and the worker counted."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as response:
            body = response.read().decode()
        totals = {"published": 0.0, "task_outcomes": 0.0}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == "outbox_relay_messages_total" and sample.labels["outcome"] == "published":
                    totals["published"] += sample.value
                elif sample.name == "outbox_task_outcomes_total":
                    totals["task_outcomes"] += sample.value
        if all(totals.values()) or time.monotonic() > deadline:
            return totals
        time.sleep(0.5)


def processes_using(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            environ = process.info["environ"] or {}
        except (psutil.Error, TypeError):
            continue
        if str(data_dir) in cmdline or environ.get("DATA_DIR") == str(data_dir):
            found.append(process)
    return found


def test_socket_dir_falls_back_to_a_short_path_when_the_checkout_is_too_deep(monkeypatch):
    monkeypatch.setattr(paths, "RUN_DIR", Path("/" + "deep/" * 30) / "run")

    socket_dir = paths.pg_socket_dir()

    assert len(str(socket_dir / ".s.PGSQL.5432.lock")) <= 107
    assert socket_dir.name.startswith("payorch-")


def test_a_port_whose_closed_connections_sit_in_time_wait_is_free():
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            served, _ = listener.accept()
            served.close()  # the server closes first, as gunicorn does after a response
            client.recv(1)
    deadline = time.monotonic() + 5
    while not in_time_wait(port):
        assert time.monotonic() < deadline, "no connection reached TIME_WAIT"
        time.sleep(0.05)

    assert port_is_free(port)


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])  # noqa: S104 - a listener on every address, on purpose
def test_a_port_another_process_listens_on_is_taken_even_when_it_set_so_reuseaddr(host):
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, 0))
        listener.listen()

        assert not port_is_free(listener.getsockname()[1])


def test_the_stacks_metrics_directory_starts_empty_of_a_previous_runs_metric_files(tmp_path):
    (tmp_path / "counter_host-123.db").write_bytes(b"stale")
    (tmp_path / "notes.txt").write_text("not ours")

    directory = devstack._fresh_metrics_dir(str(tmp_path))

    assert directory == tmp_path
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


def test_run_refuses_to_start_twice_and_changes_nothing(tmp_path):
    lock = OwnerLock(tmp_path / "run" / "stack.lock")
    assert lock.acquire()
    try:
        second = run_devstack("run", env=stack_env(tmp_path))
        output, _ = second.communicate(timeout=60)
    finally:
        lock.release()

    assert second.returncode == 1
    assert f"already up (pid {os.getpid()})" in output
    assert not (tmp_path / "postgres").exists()


def test_run_says_clearly_when_the_web_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = run_devstack("run", env=stack_env(tmp_path, PORT=str(port), STRIPE_SECRET_KEY="sk_test_x"))
        output, _ = process.communicate(timeout=60)

    assert process.returncode == 1
    assert f"port {port} for PORT is taken" in output


def test_sigint_to_the_launcher_alone_stops_the_whole_stack(tmp_path):
    data_dir = tmp_path / "data"
    env = stack_env(data_dir, PORT=str(free_port()), SANDBOX_PORT=str(free_port()), STRIPE_SECRET_KEY="sk_test_x")
    stack = run_devstack("run", env=env)
    deadline = time.monotonic() + 150
    while get(f"http://127.0.0.1:{env['PORT']}/readyz") != 200:
        assert stack.poll() is None and time.monotonic() < deadline
        time.sleep(0.5)

    stack.send_signal(signal.SIGINT)  # to the launcher only, as a supervisor would
    output, _ = stack.communicate(timeout=90)

    assert "stopped; nothing left running" in output
    assert processes_using(data_dir) == []


def test_a_closed_terminal_sighup_stops_the_whole_stack(tmp_path):
    data_dir = tmp_path / "data"
    env = stack_env(data_dir, PORT=str(free_port()), SANDBOX_PORT=str(free_port()), STRIPE_SECRET_KEY="sk_test_x")
    stack = run_devstack("run", env=env, start_new_session=True)
    deadline = time.monotonic() + 150
    while get(f"http://127.0.0.1:{env['PORT']}/readyz") != 200:
        assert stack.poll() is None and time.monotonic() < deadline
        time.sleep(0.5)

    os.killpg(stack.pid, signal.SIGHUP)  # what closing the terminal does to its process group
    output, _ = stack.communicate(timeout=90)

    assert "stopped; nothing left running" in output
    assert processes_using(data_dir) == []


def test_make_run_serves_stops_cleanly_with_nothing_left_running_and_starts_again_at_once(tmp_path):
    data_dir = tmp_path / "data"
    web_port, sandbox_port = free_port(), free_port()
    env = stack_env(data_dir, PORT=str(web_port), SANDBOX_PORT=str(sandbox_port))
    stack = run_devstack("run", env=env, start_new_session=True)
    try:
        wait_ready(stack, web_port)

        sandbox_health = get(f"http://127.0.0.1:{sandbox_port}/_sandbox/health")
        demo_payments = wait_for_demo_checkout(data_dir, web_port)
        counted_elsewhere = wait_for_counters_of_other_processes(web_port)
        second = run_devstack("run", env=env)
        second_output, _ = second.communicate(timeout=60)
        shell = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "--no-imports",
                "-c",
                "from django.db import connection; connection.ensure_connection();"
                "print(connection.connection.info.host);"
                "from django.contrib.auth.models import User; print(User.objects.filter(username='admin').count())",
            ],
            cwd=paths.BASE_DIR,
            env=stack_env(data_dir),
            capture_output=True,
            text=True,
            timeout=60,
        )
        last_served = get(f"http://127.0.0.1:{web_port}/healthz")  # the server closes it: TIME_WAIT
    finally:
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        output, _ = stack.communicate(timeout=90)

    assert sandbox_health == 200
    assert demo_payments[0]["description"] == "make run demo checkout"
    assert counted_elsewhere["published"] >= 1 and counted_elsewhere["task_outcomes"] >= 1, counted_elsewhere
    assert list((data_dir / "prometheus").glob("counter_*.db"))
    assert second.returncode == 1 and "already up" in second_output
    assert "POST /api/v1/payments -> 202" in output
    # The demo walked through the running system: relay, worker, sandbox, and a partial refund.
    demo = [line for line in output.splitlines() if "[demo]" in line]
    assert [
        stage
        for stage in ("payment.created", "payment.submitted", "payment.succeeded", "refund.created", "refund.succeeded")
        if any(stage in line for line in demo)
    ] == ["payment.created", "payment.submitted", "payment.succeeded", "refund.created", "refund.succeeded"], demo
    # The sandbox's signed webhooks reach /webhooks/stripe (no 404s and retries) and are processed.
    assert any("webhook payment_intent.succeeded" in line and "processed" in line for line in demo), demo
    assert [line for line in output.splitlines() if "/webhooks/stripe" in line and "Not Found" in line] == []
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.split() == [str(data_dir / "run" / "pg"), "1"]
    assert "stopped; nothing left running" in output
    assert get(f"http://127.0.0.1:{web_port}/healthz") == 0
    assert processes_using(data_dir) == []
    assert not (data_dir / "postgres" / "postmaster.pid").exists()

    # Ctrl-C, then `make run` again at once: the closed connections still sit in TIME_WAIT, which
    # gunicorn (SO_REUSEADDR) does not mind, so neither may the launcher's free-port check.
    lingering = in_time_wait(web_port)
    again = run_devstack("run", env=env, start_new_session=True)
    try:
        wait_ready(again, web_port)
    finally:
        if again.poll() is None:
            os.killpg(again.pid, signal.SIGINT)
        again_output, _ = again.communicate(timeout=90)

    assert last_served == 200 and lingering
    assert "is taken" not in again_output
    assert "stopped; nothing left running" in again_output
    assert processes_using(data_dir) == []


def test_the_embedded_servers_log_quotes_no_row_or_statement():
    # Seen under `make run`: "DETAIL: Failing row contains (…, <description>, <metadata>…)" and the
    # failing statement with its values inline, on the stack's stderr.
    from config.devstack.postgres import SERVER_SETTINGS

    assert SERVER_SETTINGS["log_error_verbosity"] == "terse"
    assert SERVER_SETTINGS["log_min_error_statement"] == "panic"
