"""The dev stack's Django-side helpers (config/devstack/bootstrap.py)."""

import pytest

from config.devstack import bootstrap, paths
from payments.models import ApiKey

pytestmark = pytest.mark.django_db


def test_the_demo_key_is_created_once_and_recreated_if_the_database_lost_it(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA_DIR", tmp_path)
    first = bootstrap.api_key_ensure_demo()
    assert bootstrap.api_key_ensure_demo() == first

    ApiKey.objects.all().delete()
    again = bootstrap.api_key_ensure_demo()

    assert again != first
    assert ApiKey.objects.is_valid(again)
    assert ApiKey.objects.get(prefix=again.partition(".")[0]).client.name == bootstrap.DEMO_CLIENT_NAME
