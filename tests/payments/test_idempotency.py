import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from outbox.models import OutboxMessage
from payments.models import IdempotencyKey, Payment
from tests.factories import ApiClientFactory, api_key_create, payment_with_status

pytestmark = pytest.mark.django_db

BODY = {"amount": 1500, "currency": "usd", "payment_method": "pm_card_visa"}


def post(api, body, key, path="/api/v1/payments"):
    return api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_same_key_same_request_replays_status_and_body_byte_for_byte_and_writes_nothing(api):
    first = post(api, BODY, "k1")

    second = post(api, {"payment_method": "pm_card_visa", "currency": "usd", "amount": 1500}, "k1")

    assert second.status_code == first.status_code == 202
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert Payment.objects.count() == 1
    assert OutboxMessage.objects.count() == 1


def test_same_key_with_a_different_body_is_422_idempotency_key_reused(api):
    post(api, BODY, "k1")

    response = post(api, {**BODY, "amount": 1501}, "k1")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert response.json()["error"]["type"] == "idempotency_error"
    assert Payment.objects.count() == 1


@pytest.mark.parametrize("other", [b"[]", b"null", b"0", b"false", b'""'])
def test_a_body_that_is_not_an_object_is_not_taken_for_the_empty_one_under_the_same_key(api, merchant, other):
    # The fingerprint hashed `request.data or {}`: every falsy body hashed as {} and replayed its 202.
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant, amount=1000)
    path = f"/api/v1/payments/{payment.public_id}/refunds"
    first = api.post(path, b"{}", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")

    response = api.post(path, other, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == 202
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"


def test_no_body_and_an_empty_object_are_the_same_request(api, merchant):
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant, amount=1000)
    path = f"/api/v1/payments/{payment.public_id}/refunds"
    first = api.post(path, HTTP_IDEMPOTENCY_KEY="k1")

    response = api.post(path, b"{}", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == first.status_code == 202
    assert response.headers["Idempotent-Replayed"] == "true"


def test_same_key_on_a_different_path_is_422(api, merchant):
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant, amount=1000)
    post(api, BODY, "k1")

    response = post(api, {}, "k1", path=f"/api/v1/payments/{payment.public_id}/refunds")

    assert response.status_code == 422


def test_keys_are_scoped_per_api_client(api):
    other = APIClient()
    _, key = api_key_create(client=ApiClientFactory(name="other"))
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    first = post(api, BODY, "shared-key")

    second = post(other, BODY, "shared-key")

    assert second.status_code == 202
    assert "Idempotent-Replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert Payment.objects.count() == 2


def test_a_domain_error_is_stored_and_replayed_under_the_key(api, merchant):
    payment = payment_with_status(Payment.Status.FAILED, client=merchant)
    path = f"/api/v1/payments/{payment.public_id}/capture"
    first = post(api, {}, "cap-1", path=path)

    second = post(api, {}, "cap-1", path=path)

    assert first.status_code == 409
    assert second.status_code == 409 and second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"


def test_an_expired_key_runs_the_request_again(api):
    first = post(api, BODY, "old")
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    second = post(api, BODY, "old")

    assert second.status_code == 202
    assert "Idempotent-Replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]


def test_keys_are_kept_for_the_configured_ttl(api, settings):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 2

    post(api, BODY, "ttl")

    stored = IdempotencyKey.objects.get()
    assert timedelta(hours=1, minutes=59) < stored.expires_at - stored.created_at <= timedelta(hours=2)


def test_idempotency_key_purge_deletes_only_expired_keys(api):
    from payments.idempotency import idempotency_key_purge

    post(api, BODY, "a")
    post(api, BODY, "b")
    IdempotencyKey.objects.filter(key="a").update(expires_at=timezone.now() - timedelta(minutes=1))

    deleted = idempotency_key_purge(now=timezone.now())

    assert deleted == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["b"]


@pytest.mark.django_db(transaction=True)
def test_a_request_while_the_first_with_the_same_key_is_in_flight_is_409_with_retry_after(merchant):
    _, key = api_key_create(client=merchant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    holder_ready, release = threading.Event(), threading.Event()

    def hold_the_key():
        # Simulate a first request still running: its transaction holds the key's uncommitted row.
        from django.db import transaction

        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO payments_idempotencykey (client_id, key, request_method, request_path, request_hash,"
                    " expires_at, created_at, updated_at) VALUES (%s, 'busy', 'POST', '/api/v1/payments', 'x',"
                    " now() + interval '1 day', now(), now())",
                    [merchant.pk],
                )
            holder_ready.set()
            release.wait(10)
            transaction.set_rollback(True)
        connection.close()

    holder = threading.Thread(target=hold_the_key)
    holder.start()
    holder_ready.wait(10)
    try:
        response = client.post("/api/v1/payments", BODY, format="json", HTTP_IDEMPOTENCY_KEY="busy")
    finally:
        release.set()
        holder.join()

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert response.headers["Retry-After"] == "1"
    assert not Payment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_crashed_request_leaves_no_lock_behind_and_the_key_can_be_retried(merchant):
    _, key = api_key_create(client=merchant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    # A "crash": the first request's transaction dies before commit, taking its key row with it.
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        IdempotencyKey.objects.create(
            client=merchant,
            key="crash",
            request_method="POST",
            request_path="/api/v1/payments",
            request_hash="x",
            expires_at=timezone.now() + timedelta(days=1),
        )
        raise RuntimeError("worker killed")

    response = client.post("/api/v1/payments", BODY, format="json", HTTP_IDEMPOTENCY_KEY="crash")

    assert response.status_code == 202


@pytest.mark.django_db(transaction=True)
def test_two_truly_concurrent_requests_with_the_same_key_make_exactly_one_payment(merchant):
    _, key = api_key_create(client=merchant)
    barrier = threading.Barrier(4)
    responses = []

    def send():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        barrier.wait()
        responses.append(client.post("/api/v1/payments", BODY, format="json", HTTP_IDEMPOTENCY_KEY="race"))
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Payment.objects.count() == 1
    assert OutboxMessage.objects.count() == 1
    created = [r for r in responses if r.status_code == 202 and "Idempotent-Replayed" not in r.headers]
    assert len(created) == 1
    for other in responses:
        if other is created[0]:
            continue
        assert other.status_code in (202, 409)
        if other.status_code == 202:
            assert other.headers["Idempotent-Replayed"] == "true" and other.content == created[0].content
        else:
            assert other.json()["error"]["code"] == "idempotency_key_in_use"
