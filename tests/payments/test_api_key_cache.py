"""A key verified once is trusted without a query for API_KEY_CACHE_SECONDS: revocation takes effect within
that bound, expiry at once, and nothing but a key that passed every check is ever remembered."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from payments.api import authentication
from payments.models import ApiKey
from tests.factories import ApiClientFactory, api_key_create
from tests.payments.test_api_key_failures import new_address

pytestmark = pytest.mark.django_db


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic(monkeypatch) -> FakeMonotonic:
    fake = FakeMonotonic()
    monkeypatch.setattr(authentication, "monotonic", fake)
    return fake


@pytest.fixture(autouse=True)
def cache_seconds(settings) -> int:
    settings.API_KEY_CACHE_SECONDS = 10
    authentication.verified_keys.clear()
    yield 10
    authentication.verified_keys.clear()


def get(key: str, address: str = "127.0.0.1"):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client.get("/api/v1/payments", REMOTE_ADDR=address)


def test_a_verified_key_is_accepted_again_without_a_query_for_it(django_assert_num_queries):
    _, key = api_key_create()
    get(key)

    with django_assert_num_queries(1):  # the page of payments only
        response = get(key)

    assert response.status_code == 200


def test_a_revoked_key_is_accepted_until_the_cache_bound_and_refused_from_then_on(monotonic, cache_seconds):
    api_key, key = api_key_create()
    get(key)
    ApiKey.objects.filter(pk=api_key.pk).update(revoked=True)

    monotonic.now += cache_seconds - 0.001
    just_before = get(key)
    monotonic.now += 0.001
    at_the_bound = get(key)

    assert just_before.status_code == 200
    assert at_the_bound.status_code == 401
    assert at_the_bound.json()["error"]["code"] == "api_key_revoked"


def test_a_key_that_expires_while_remembered_is_refused_at_once(monkeypatch):
    api_key, key = api_key_create()
    expiry = timezone.now() + timedelta(hours=1)
    ApiKey.objects.filter(pk=api_key.pk).update(expiry_date=expiry)
    assert get(key).status_code == 200

    monkeypatch.setattr(timezone, "now", lambda: expiry + timedelta(seconds=1))  # its moment has come
    response = get(key)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_revoked"


def test_a_wrong_secret_with_a_remembered_keys_prefix_is_still_refused(django_assert_num_queries):
    _, key = api_key_create()
    assert get(key).status_code == 200
    prefix, _, secret = key.partition(".")

    with django_assert_num_queries(1):  # looked up, as every key not verified before
        response = get(f"{prefix}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("state", ["wrong", "revoked", "expired"])
def test_a_refused_key_is_never_remembered(state, django_assert_num_queries):
    api_key, key = api_key_create()
    if state == "wrong":
        key = key[:-1] + ("A" if key[-1] != "A" else "B")
    elif state == "revoked":
        ApiKey.objects.filter(pk=api_key.pk).update(revoked=True)
    else:
        ApiKey.objects.filter(pk=api_key.pk).update(expiry_date=timezone.now() - timedelta(minutes=1))
    first = get(key)

    with django_assert_num_queries(1):  # looked up again
        second = get(key)

    assert first.status_code == second.status_code == 401
    assert authentication.verified_keys._entries == {}


def test_a_cache_of_zero_seconds_looks_every_key_up(settings, django_assert_num_queries):
    settings.API_KEY_CACHE_SECONDS = 0
    _, key = api_key_create()
    get(key)

    with django_assert_num_queries(2):  # the key and the page of payments
        response = get(key)

    assert response.status_code == 200


def test_a_clients_new_rate_limit_applies_within_the_cache_bound(monotonic, cache_seconds):
    api_client = ApiClientFactory(name="speeding-up", rate_limit_per_minute=1)
    _, key = api_key_create(client=api_client)
    address = new_address()
    assert get(key, address).status_code == 200
    type(api_client).objects.filter(pk=api_client.pk).update(rate_limit_per_minute=100)

    while_remembered = get(key, address)
    monotonic.now += cache_seconds
    after_the_bound = get(key, address)

    assert while_remembered.status_code == 429
    assert after_the_bound.status_code == 200


def test_a_remembered_key_from_an_address_refused_for_bad_keys_is_refused_too(settings, clock):
    settings.API_KEY_FAILURE_LIMIT = 3
    _, key = api_key_create()
    address = new_address()
    assert get(key, address).status_code == 200
    for _ in range(3):
        get("nope.nope", address)

    response = get(key, address)

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert response.json()["error"]["message"].startswith("Too many failed API key attempts from this address.")


def test_each_request_gets_its_own_copy_of_the_remembered_client():
    _, key = api_key_create()
    get(key)
    digest = next(iter(authentication.verified_keys._entries))

    one, two = authentication.verified_keys.get(digest), authentication.verified_keys.get(digest)

    assert one is not two and one.client is not two.client
    assert one.client.pk == two.client.pk
    assert one._state is not two._state and one._state.fields_cache is not two._state.fields_cache
    one.client.name = "changed by one request"
    assert authentication.verified_keys.get(digest).client.name != "changed by one request"


def test_a_remembered_key_is_copied_as_copy_copy_copies_a_model_instance():
    import copy

    api_key = ApiKey.objects.select_related("client").get(pk=api_key_create()[0].pk)

    for instance in (api_key, api_key.client):
        ours, library = authentication._copy(instance), copy.copy(instance)

        assert not [f for f in instance._meta.concrete_fields if f.get_internal_type() == "BinaryField"]

        assert type(ours) is type(instance)
        assert {k: v for k, v in vars(ours).items() if k != "_state"} == {
            k: v for k, v in vars(library).items() if k not in ("_state", "_django_version")
        }
        assert vars(ours._state) == vars(library._state)
        assert ours._state is not instance._state and ours._state.fields_cache is not instance._state.fields_cache


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(authentication.VerifiedKeyCache, "MAX_ENTRIES", 2)
    keys = [api_key_create()[1] for _ in range(3)]

    for key in keys:
        get(key)

    assert len(authentication.verified_keys._entries) <= 2
