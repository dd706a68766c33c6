"""docker-compose.yml describes the production-like topology; `make run` needs no Docker."""

import yaml

from config.devstack import paths


def load_compose() -> dict:
    return yaml.safe_load((paths.BASE_DIR / "docker-compose.yml").read_text())


def test_compose_has_the_production_topology_built_from_the_repos_dockerfile():
    compose = load_compose()

    assert {"postgres", "redis", "web", "worker", "beat", "relay"} <= set(compose["services"])
    for name in ("web", "worker", "beat", "relay"):
        service = compose["services"][name]
        assert service["build"]["dockerfile"] == "Dockerfile"
        assert service["environment"]["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert (paths.BASE_DIR / "Dockerfile").exists()


def test_compose_runs_each_process_the_dev_procfile_runs():
    services = load_compose()["services"]
    procfile = dict(
        line.split(": ", 1)
        for line in (paths.BASE_DIR / "config" / "Procfile").read_text().splitlines()
        if line and not line.startswith("#")
    )

    assert "celery -A config worker" in " ".join(services["worker"]["command"]) and "worker" in procfile
    assert "celery -A config beat" in " ".join(services["beat"]["command"]) and "beat" in procfile
    assert services["relay"]["command"][-1] == "outbox_relay" and "outbox_relay" in procfile["relay"]
    assert services["web"]["command"][:2] == ["gunicorn", "config.wsgi:application"]


def test_compose_requires_every_secret_instead_of_defaulting_it():
    environment = load_compose()["services"]["web"]["environment"]

    for name in ("SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
        assert ":?" in environment[name]
    assert ":?" in environment["DATABASE_URL"]


def test_compose_shares_one_metrics_directory_between_web_worker_and_relay():
    compose = load_compose()
    services = compose["services"]

    directories = {services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"] for name in ("web", "worker", "relay")}
    mounts = {tuple(services[name]["volumes"]) for name in ("web", "worker", "relay")}

    assert directories == {"/run/prometheus"}
    assert mounts == {("prometheus-multiproc:/run/prometheus",)}
    assert compose["volumes"]["prometheus-multiproc"]["driver_opts"]["type"] == "tmpfs"  # empty at each start


def test_compose_postgres_quotes_no_rows_in_its_log_as_the_embedded_server_does():
    from config.devstack.postgres import SERVER_SETTINGS

    command = load_compose()["services"]["postgres"]["command"]
    settings = dict(command[index + 1].split("=", 1) for index, part in enumerate(command) if part == "-c")

    for name in ("log_error_verbosity", "log_min_error_statement"):
        assert settings[name] == SERVER_SETTINGS[name]
