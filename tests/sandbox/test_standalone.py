"""The sandbox stands alone: standard library only, run as `python -m sandbox` with the API version it is given."""

import ast
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from config.devstack import paths

SANDBOX_DIR = paths.BASE_DIR / "sandbox"


def top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def python_m_sandbox(*args: str, env: dict[str, str] | None = None, **kwargs):
    environ = {key: value for key, value in os.environ.items() if key != "SANDBOX_API_VERSION"}
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", *args],
        cwd=paths.BASE_DIR,
        env={**environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_the_sandbox_imports_only_the_standard_library_and_itself():
    imported = set().union(*(top_level_imports(path) for path in SANDBOX_DIR.rglob("*.py")))

    assert imported - set(sys.stdlib_module_names) == {"sandbox"}


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--api-version", "2020-08-27"], {}), ([], {"SANDBOX_API_VERSION": "2020-08-27"})],
    ids=["flag", "environment"],
)
def test_python_m_sandbox_speaks_the_api_version_it_is_given(args, env):
    process = python_m_sandbox(*args, env=env)
    try:
        url = process.stdout.readline().split()[-4]  # "Stripe sandbox listening on URL (API version X)"
        with urllib.request.urlopen(f"{url}/_sandbox/health", timeout=5) as response:  # noqa: S310 - loopback
            health, header = json.loads(response.read()), response.headers["Stripe-Version"]
    finally:
        process.terminate()
        process.communicate(timeout=10)

    assert health == {"status": "ok", "api_version": "2020-08-27"}
    assert header == "2020-08-27"


def test_python_m_sandbox_refuses_to_start_without_an_api_version():
    process = python_m_sandbox()
    _, errors = process.communicate(timeout=30)

    assert process.returncode == 2
    assert "the following arguments are required: --api-version" in errors
