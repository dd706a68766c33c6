import io

import pytest
from django.core.management import CommandError, call_command

from payments.models import ApiClient, ApiKey

pytestmark = pytest.mark.django_db


def create_api_key(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_api_key_prints_the_key_alone_on_stdout_and_stores_only_its_hash():
    out, err = create_api_key("shop")

    key = out.strip()
    assert out == key + "\n"
    assert "shown once" in err
    assert ApiKey.objects.is_valid(key)
    assert ApiKey.objects.get().client.name == "shop"
    assert not ApiKey.objects.filter(hashed_key__contains=key.partition(".")[2]).exists()


def test_create_api_key_for_an_existing_client_adds_a_key_for_rotation():
    first, _ = create_api_key("shop")

    second, _ = create_api_key("shop", "--key-name", "rotated", "--rate-limit", "120")

    assert first != second
    client = ApiClient.objects.get(name="shop")
    assert client.api_keys.count() == 2
    assert client.rate_limit_per_minute == 120


@pytest.mark.parametrize("args", [("",), ("x" * 101,), ("shop", "--rate-limit", "0")])
def test_create_api_key_refuses_bad_arguments_and_creates_nothing(args):
    with pytest.raises(CommandError):
        create_api_key(*args)

    assert not ApiKey.objects.exists()
