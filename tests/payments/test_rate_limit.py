import logging

import pytest
from rest_framework.test import APIClient

from payments.api import throttling
from tests.factories import ApiClientFactory, api_key_create

pytestmark = pytest.mark.django_db


def client_with_limit(name: str, limit: int | None) -> APIClient:
    _, key = api_key_create(client=ApiClientFactory(name=name, rate_limit_per_minute=limit))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_a_client_over_its_limit_gets_429_with_retry_after_in_the_error_shape():
    client = client_with_limit("limited", 3)

    statuses = [client.get("/api/v1/payments").status_code for _ in range(3)]
    refused = client.get("/api/v1/payments")

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert refused.json()["error"]["code"] == "rate_limited"


def test_the_limit_is_per_client():
    busy, calm = client_with_limit("busy", 1), client_with_limit("calm", 1)
    busy.get("/api/v1/payments")

    assert busy.get("/api/v1/payments").status_code == 429
    assert calm.get("/api/v1/payments").status_code == 200


def test_the_default_limit_comes_from_settings(settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    client = client_with_limit("default-limit", None)

    statuses = [client.get("/api/v1/payments").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_the_counter_is_shared_through_redis_by_every_process(settings):
    client = client_with_limit("shared", 2)
    client.get("/api/v1/payments")
    throttling._redis.cache_clear()  # another process: a fresh connection, the same counter

    statuses = [client.get("/api/v1/payments").status_code for _ in range(2)]

    assert statuses == [200, 429]


def test_when_redis_is_down_requests_are_let_through_with_a_warning(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    client = client_with_limit("redis-down", 1)

    with caplog.at_level(logging.WARNING):
        statuses = [client.get("/api/v1/payments").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert "rate limiter unavailable" in caplog.text


def test_retry_after_is_exactly_when_the_next_request_is_allowed(clock):
    client = client_with_limit("retry-after", 50)
    start = clock.now
    assert {client.get("/api/v1/payments").status_code for _ in range(30)} == {200}
    clock.now = start + 20
    assert {client.get("/api/v1/payments").status_code for _ in range(20)} == {200}
    clock.now = start + 25

    refused = client.get("/api/v1/payments")
    retry_after = int(refused.headers["Retry-After"])
    clock.now = start + 25 + retry_after - 1
    too_early = client.get("/api/v1/payments")
    clock.now = start + 25 + retry_after
    on_time = client.get("/api/v1/payments")

    assert refused.status_code == 429
    assert retry_after == 35  # the first 30 leave the window at start + 60
    assert too_early.status_code == 429
    assert int(too_early.headers["Retry-After"]) == 1
    assert on_time.status_code == 200


def test_hammering_while_limited_neither_counts_nor_extends_the_lockout(clock):
    client = client_with_limit("hammer", 3)
    start = clock.now
    assert [client.get("/api/v1/payments").status_code for _ in range(3)] == [200, 200, 200]

    answers = []
    for second in range(60):  # a request every second, as a client retrying too eagerly would
        clock.now = start + second
        response = client.get("/api/v1/payments")
        answers.append((response.status_code, int(response.headers["Retry-After"])))
    clock.now = start + 60
    statuses_after = [client.get("/api/v1/payments").status_code for _ in range(4)]

    assert answers == [(429, 60 - second) for second in range(60)]
    assert statuses_after == [200, 200, 200, 429]


def test_the_window_slides_instead_of_resetting_all_at_once(clock):
    client = client_with_limit("sliding", 2)
    start = clock.now
    client.get("/api/v1/payments")
    clock.now = start + 30.5
    client.get("/api/v1/payments")

    clock.now = start + 59.999
    before_first_leaves = client.get("/api/v1/payments")
    clock.now = start + 60
    first_left = client.get("/api/v1/payments")
    second_still_in = client.get("/api/v1/payments")

    assert before_first_leaves.status_code == 429
    assert before_first_leaves.headers["Retry-After"] == "1"  # rounded up: never too early
    assert first_left.status_code == 200
    assert second_still_in.status_code == 429
    assert second_still_in.headers["Retry-After"] == "31"  # 30.5 s, rounded up
