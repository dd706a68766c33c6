"""Failed API-key attempts are limited per client address: guessing keys gets 429s, not endless 401s."""

import ipaddress
import logging
import random

import pytest
from rest_framework.test import APIClient

from tests.factories import api_key_create

pytestmark = pytest.mark.django_db


def new_address(version: int = 4) -> str:
    """An address no other test (nor an earlier run) used: the limiter's Redis outlives the test database."""
    if version == 6:
        return str(ipaddress.IPv6Address((0x20010DB8 << 96) | random.getrandbits(80) << 16 | 1))
    return str(ipaddress.IPv4Address(0x64400000 + random.getrandbits(22)))  # within 100.64.0.0/10


@pytest.fixture
def address() -> str:
    return new_address()


@pytest.fixture
def limit(settings) -> int:
    settings.API_KEY_FAILURE_LIMIT = 5
    settings.API_KEY_FAILURE_WINDOW_SECONDS = 300
    return 5


def get(address: str, key: str | None, **headers):
    client = APIClient()
    if key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client.get("/api/v1/payments", REMOTE_ADDR=address, **headers)


def test_after_the_limit_of_bad_keys_an_address_gets_429_before_any_key_is_checked(
    clock, limit, address, django_assert_num_queries
):
    _, good_key = api_key_create()
    failures = [get(address, "nope.nope").status_code for _ in range(limit)]

    with django_assert_num_queries(0):  # the key is not even looked up
        refused = get(address, good_key)

    assert failures == [401] * limit
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "300"
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert refused.json()["error"]["code"] == "rate_limited"


def test_retry_after_is_when_keys_are_checked_again_and_refused_attempts_do_not_count(clock, limit, address):
    _, good_key = api_key_create()
    start = clock.now
    for second in range(limit):
        clock.now = start + second * 10
        get(address, "nope.nope")
    clock.now = start + 100

    retry_after = int(get(address, "nope.nope").headers["Retry-After"])
    clock.now = start + 100 + retry_after - 1
    too_early = get(address, good_key)
    clock.now = start + 100 + retry_after
    on_time = get(address, good_key)

    assert retry_after == 200  # the first failure leaves the 300 s window at start + 300
    assert too_early.status_code == 429
    assert on_time.status_code == 200


def test_other_addresses_are_not_affected(clock, limit, address):
    _, good_key = api_key_create()
    for _ in range(limit + 3):
        get(address, "nope.nope")

    other = new_address()
    assert get(other, good_key).status_code == 200
    assert get(other, "nope.nope").status_code == 401


def test_a_forwarded_for_header_does_not_move_the_attempt_to_another_address(clock, limit, address):
    for _ in range(limit):
        get(address, "nope.nope")

    response = get(address, "nope.nope", HTTP_X_FORWARDED_FOR="203.0.113.77")

    assert response.status_code == 429


def test_an_ipv6_client_is_counted_by_its_slash_64(clock, limit):
    network = ipaddress.IPv6Network(f"{new_address(6)}/64", strict=False)
    for host in range(1, limit + 1):
        get(str(network[host]), "nope.nope")  # a new address every time, all from one /64

    assert get(str(network[0xFFFF]), "nope.nope").status_code == 429
    assert get(new_address(6), "nope.nope").status_code == 401


def test_requests_without_a_key_and_with_a_good_key_do_not_count(clock, limit, address):
    _, good_key = api_key_create()

    statuses = {get(address, None).status_code for _ in range(limit * 2)}
    statuses |= {get(address, good_key).status_code for _ in range(limit * 2)}

    assert statuses == {401, 200}
    assert get(address, "nope.nope").status_code == 401


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "Bearer ", "Bearer revoked"])
def test_malformed_and_revoked_keys_count_as_failures(clock, limit, address, authorization):
    from payments.models import ApiKey

    api_key, revoked_key = api_key_create()
    ApiKey.objects.filter(pk=api_key.pk).update(revoked=True)
    header = authorization.replace("revoked", revoked_key)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    statuses = [client.get("/api/v1/payments", REMOTE_ADDR=address).status_code for _ in range(limit + 1)]

    assert statuses == [401] * limit + [429]


def test_when_redis_is_down_bad_keys_are_still_401_with_a_warning(settings, limit, address, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    with caplog.at_level(logging.WARNING):
        statuses = {get(address, "nope.nope").status_code for _ in range(limit * 2)}

    assert statuses == {401}
    assert "API key failure limiter unavailable" in caplog.text


def test_behind_a_trusted_proxy_bad_keys_lock_out_their_client_not_everyone_behind_the_proxy(limit, settings):
    # What base.py sets for TRUSTED_PROXY_COUNT=1, as the admin lockout uses it too (one notion of the client).
    settings.TRUSTED_PROXY_COUNT = 1
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
    settings.AXES_IPWARE_PROXY_COUNT = 0
    settings.AXES_IPWARE_PROXY_ORDER = "left-most"
    proxy, guesser, shop = new_address(), new_address(), new_address()
    _, good_key = api_key_create()

    for _ in range(limit + 2):
        get(proxy, "nope.nope", HTTP_X_FORWARDED_FOR=guesser)
    guessing = get(proxy, good_key, HTTP_X_FORWARDED_FOR=guesser)
    other_client = get(proxy, good_key, HTTP_X_FORWARDED_FOR=shop)

    assert guessing.status_code == 429
    assert other_client.status_code == 200
