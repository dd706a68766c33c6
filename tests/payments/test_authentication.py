from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from payments.models import ApiKey
from tests.factories import api_key_create

pytestmark = pytest.mark.django_db


def get_payments(authorization: str | None):
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client.get("/api/v1/payments")


def test_a_valid_bearer_key_is_accepted_and_its_use_recorded():
    api_key, key = api_key_create()

    response = get_payments(f"Bearer {key}")

    assert response.status_code == 200
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_last_used_at_is_written_at_most_once_a_minute(django_assert_num_queries):
    api_key, key = api_key_create()
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())

    with django_assert_num_queries(2):  # the key (with its client) and the page of payments
        get_payments(f"Bearer {key}")


def test_a_missing_key_is_401_api_key_required_with_www_authenticate():
    response = get_payments(None)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.json()["error"]["code"] == "api_key_required"


@pytest.mark.parametrize(
    "authorization", ["Bearer nope.nope", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer x" * 300]
)
def test_a_bad_key_or_scheme_is_401_invalid_api_key(authorization):
    api_key_create()

    response = get_payments(authorization)

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_a_key_with_a_known_prefix_but_a_wrong_secret_is_401():
    _, key = api_key_create()
    prefix = key.partition(".")[0]

    response = get_payments(f"Bearer {prefix}.wrongsecret")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_a_revoked_key_is_401_api_key_revoked():
    api_key, key = api_key_create()
    ApiKey.objects.filter(pk=api_key.pk).update(revoked=True)

    response = get_payments(f"Bearer {key}")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_revoked"


def test_an_expired_key_is_401():
    api_key, key = api_key_create()
    ApiKey.objects.filter(pk=api_key.pk).update(expiry_date=timezone.now() - timedelta(minutes=1))

    response = get_payments(f"Bearer {key}")

    assert response.status_code == 401


def test_only_a_hash_of_the_key_is_stored():
    api_key, key = api_key_create()

    stored = ApiKey.objects.filter(pk=api_key.pk).values_list("id", "prefix", "hashed_key").get()

    assert key not in " ".join(stored)
    assert key.partition(".")[2] not in " ".join(stored)


def test_the_api_schema_and_docs_are_public():
    client = APIClient()

    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.parametrize(
    "sent",
    [
        "4000056655665556",  # a card number pasted where the key goes
        "planted.customer+pii@example.org",  # an e-mail address
        "SECRETPART1234567890abcdefghijklm",  # a key's secret without its prefix
    ],
)
def test_a_rejected_key_logs_no_part_of_what_was_sent_unless_it_names_a_stored_key(caplog, sent):
    api_key, _ = api_key_create()
    caplog.set_level("INFO", logger="payments.api.authentication")

    unknown = get_payments(f"Bearer {sent}")
    known = get_payments(f"Bearer {api_key.prefix}.wrongsecret")

    assert unknown.status_code == known.status_code == 401
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert sent[:4] not in logged
    assert api_key.prefix in logged  # a stored key's prefix (not secret) still says which key was tried
