"""One access log, ours: gunicorn's own (full query string, Referer) is off wherever the web server runs."""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml

from config.devstack import paths

SECRET = "sk_live_do_not_log_me"
EMAIL = "jane@example.com"
# Options that would bring gunicorn's access log back (gunicorn --help, "Logging").
GUNICORN_ACCESS_LOG_OPTIONS = ("--access-logfile", "--access-logformat", "--log-config", "--log-config-dict")
# The one config file the commands may name (its hooks), held below to set no logging of its own.
GUNICORN_CONFIG = "config/gunicorn.py"


def procfile_web_gunicorn_args() -> list[str]:
    """The arguments the dev stack's web entry gives gunicorn (config/Procfile)."""
    line = next(
        line for line in (paths.BASE_DIR / "config" / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    command = shlex.split(line.partition("exec ")[2])
    assert command[0] == "gunicorn"
    return command[1:]


def dockerfile_cmd() -> list[str]:
    text = (paths.BASE_DIR / "Dockerfile").read_text().replace("\\\n", " ")
    (cmd,) = re.findall(r"^CMD (\[.*\])$", text, flags=re.MULTILINE)
    return json.loads(cmd)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["gunicorn", *procfile_web_gunicorn_args()], id="Procfile web"),
        pytest.param(dockerfile_cmd(), id="Dockerfile CMD"),
        pytest.param(
            yaml.safe_load((paths.BASE_DIR / "docker-compose.yml").read_text())["services"]["web"]["command"],
            id="docker-compose web",
        ),
    ],
)
def test_gunicorn_runs_without_its_own_access_log(command):
    assert command[0] == "gunicorn"
    assert not [arg for arg in command if arg.split("=")[0] in GUNICORN_ACCESS_LOG_OPTIONS]
    configs = [command[i + 1] for i, arg in enumerate(command) if arg in ("-c", "--config")]
    assert configs in ([], [GUNICORN_CONFIG])


def test_the_gunicorn_config_file_sets_no_logging_of_its_own():
    import runpy

    settings = runpy.run_path(str(paths.BASE_DIR / GUNICORN_CONFIG))

    assert not {"accesslog", "access_log_format", "logconfig", "logconfig_dict", "logger_class"} & set(settings)


def test_no_gunicorn_config_file_or_environment_can_turn_it_back_on():
    # gunicorn reads ./gunicorn.conf.py and GUNICORN_CMD_ARGS on its own.
    assert not (paths.BASE_DIR / "gunicorn.conf.py").exists()
    compose = (paths.BASE_DIR / "docker-compose.yml").read_text()
    assert "GUNICORN_CMD_ARGS" not in compose
    assert "GUNICORN_CMD_ARGS" not in (paths.BASE_DIR / "Dockerfile").read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, **headers: str) -> int:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback URL built here
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback URL built here
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_a_secret_in_the_query_string_or_referer_never_reaches_the_dev_stacks_log():
    port = free_port()
    args = [arg.replace("$WEB_PORT", str(port)) for arg in procfile_web_gunicorn_args()]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "LOG_LEVEL": "INFO"}
    env.pop("GUNICORN_CMD_ARGS", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *args],
        cwd=paths.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while get(f"http://127.0.0.1:{port}/healthz") != 200:
            assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)

        status = get(
            f"http://127.0.0.1:{port}/api/v1/payments?api_key={SECRET}&starting_after={EMAIL}",
            Referer=f"https://shop.example.com/checkout?email={EMAIL}&api_key={SECRET}",
        )
        # A charset Django cannot decode the query string with used to fail before Django's error
        # handling: gunicorn answered 500 and logged the request line, query string and all.
        unreadable = get(
            f"http://127.0.0.1:{port}/api/v1/payments?api_key={SECRET}", **{"Content-Type": "text/plain; charset=rot13"}
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output, _ = server.communicate(timeout=30)

    assert (status, unreadable) == (401, 400)
    assert SECRET not in output and EMAIL not in output
    # Every line naming the request is one of our JSON events (gunicorn's would be plain text).
    events = [json.loads(line) for line in output.splitlines() if "/api/v1/payments" in line]
    (access,) = [event for event in events if event["logger"] == "payments.api.access"]
    assert (access["path"], access["status"]) == ("/api/v1/payments", 401)
