import threading

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.utils import timezone
from rest_framework.test import APIClient

from outbox.models import OutboxMessage
from payments import topics
from payments.models import Payment, PaymentEvent, Refund
from payments.services.payments import Actor
from payments.services.refunds import refund_create
from tests.factories import ApiClientFactory, RefundFactory, api_key_create, payment_with_status

pytestmark = pytest.mark.django_db
API = Actor(source=PaymentEvent.Source.API, name="client")


def refund(api, payment, body=None, key="r-1"):
    return api.post(
        f"/api/v1/payments/{payment.public_id}/refunds", body or {}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )


def test_refund_defaults_to_what_is_left_and_answers_202_with_the_refund(api, merchant):
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant, amount=3000)

    response = refund(api, payment, {"reason": "requested_by_customer"})

    assert response.status_code == 202
    body = response.json()
    assert body["id"].startswith("re_")
    assert body == {
        "id": body["id"],
        "object": "refund",
        "payment": payment.public_id,
        "amount": 3000,
        "currency": "eur",
        "status": "pending",
        "reason": "requested_by_customer",
        "failure_reason": None,
        "created": body["created"],
    }
    payment.refresh_from_db()
    assert payment.amount_refunded == 3000
    assert OutboxMessage.objects.get().topic == topics.REFUND_CREATE_REQUESTED
    assert PaymentEvent.objects.get(payment=payment).type == "refund.created"


def test_partial_refunds_add_up_to_the_amount_received(api, merchant):
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant, amount=3000)

    first = refund(api, payment, {"amount": 1000}, key="a")
    rest = refund(api, payment, {}, key="b")

    assert first.json()["amount"] == 1000
    assert rest.json()["amount"] == 2000
    payment.refresh_from_db()
    assert payment.amount_refunded == 3000


def test_refund_of_more_than_received_is_409_and_changes_nothing(api, merchant):
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant, amount=3000)

    response = refund(api, payment, {"amount": 3001})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "refund_exceeds_received"
    payment.refresh_from_db()
    assert payment.amount_refunded == 0
    assert not Refund.objects.exists()


def test_refund_of_a_fully_refunded_payment_is_409(api, merchant):
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant, amount=3000)
    refund(api, payment, {}, key="a")

    response = refund(api, payment, {}, key="b")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "refund_exceeds_received"


@pytest.mark.parametrize(
    "status", [Payment.Status.PENDING, Payment.Status.REQUIRES_CAPTURE, Payment.Status.FAILED, Payment.Status.CANCELED]
)
def test_refund_of_a_payment_that_did_not_succeed_is_409_payment_not_refundable(api, merchant, status):
    payment = payment_with_status(status, client=merchant)

    response = refund(api, payment)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "payment_not_refundable"


def test_refund_requires_an_idempotency_key(api, merchant):
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant)

    response = api.post(f"/api/v1/payments/{payment.public_id}/refunds", {}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"


@pytest.mark.parametrize("body", [{"amount": "10"}, {"amount": 0}, {"reason": "because"}, {"currency": "eur"}])
def test_refund_refuses_bad_input_with_400(api, merchant, body):
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant)

    response = refund(api, payment, body)

    assert response.status_code == 400
    assert not Refund.objects.exists()


def test_retrieve_refund_answers_200_and_hides_other_clients_refunds(api, merchant):
    mine = RefundFactory(payment=payment_with_status(Payment.Status.SUCCEEDED, client=merchant))
    theirs = RefundFactory(payment=payment_with_status(Payment.Status.SUCCEEDED, client=ApiClientFactory(name="o")))

    assert api.get(f"/api/v1/refunds/{mine.public_id}").json()["id"] == mine.public_id
    assert api.get(f"/api/v1/refunds/{theirs.public_id}").status_code == 404


def test_postgres_itself_refuses_refunds_beyond_the_amount_received(merchant):
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant, amount=100)

    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(amount_refunded=101)


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_that_would_over_refund_let_exactly_one_succeed(merchant):
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant, amount=1000)
    _, key = api_key_create(client=merchant)
    barrier = threading.Barrier(5)
    statuses = []

    def send(n):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        barrier.wait()
        response = client.post(
            f"/api/v1/payments/{payment.public_id}/refunds",
            {"amount": 600},
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"concurrent-{n}",
        )
        statuses.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [202, 409, 409, 409, 409]
    payment.refresh_from_db()
    assert payment.amount_refunded == 600
    assert Refund.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_payment_locked_longer_than_the_lock_timeout_is_a_409_to_retry_not_a_500(merchant, settings):
    settings.DATABASE_LOCK_TIMEOUT_MS = 100
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant, amount=1000)
    _, key = api_key_create(client=merchant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    locked, release = threading.Event(), threading.Event()

    def hold_the_payment():
        with transaction.atomic():
            Payment.objects.select_for_update().get(pk=payment.pk)
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold_the_payment)
    holder.start()
    locked.wait(10)
    try:
        response = client.post(
            f"/api/v1/payments/{payment.public_id}/refunds", {}, format="json", HTTP_IDEMPOTENCY_KEY="while-locked"
        )
    finally:
        release.set()
        holder.join()

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "lock_timeout"
    assert response.headers["Retry-After"] == "1"
    assert not Refund.objects.exists()


def test_refund_in_a_three_decimal_currency_not_ending_in_0_is_refused_and_changes_nothing(api, merchant):
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant, amount=5000, currency="kwd")

    response = refund(api, payment, {"amount": 1234})

    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == ("invalid_charge_amount", "amount")
    payment.refresh_from_db()
    assert payment.amount_refunded == 0
    assert not Refund.objects.exists()


def test_refund_below_the_charge_minimum_is_allowed(api, merchant):
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant, amount=5000, currency="usd")

    response = refund(api, payment, {"amount": 1})

    assert response.status_code == 202


def test_a_refund_succeeds_when_another_thread_ends_a_reload_of_a_payment_meanwhile(merchant, monkeypatch):
    # gunicorn runs several threads per worker. django-fsm's refresh_from_db lifts the protection of
    # the status field for the whole class while it reloads and puts it back when done, whatever
    # other threads are doing: a reload that ends while this one runs makes this one raise.
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant, amount=1000)
    status_field = Payment._meta.get_field("status")
    reload = Model.refresh_from_db

    def reload_while_another_threads_reload_ends(self, *args, **kwargs):
        status_field.protected = True  # what the other thread's reload does as it ends
        return reload(self, *args, **kwargs)

    monkeypatch.setattr(Model, "refresh_from_db", reload_while_another_threads_reload_ends)
    monkeypatch.setattr(status_field, "protected", status_field.protected)  # restored after the test

    refund = refund_create(client=merchant, payment_id=payment.public_id, amount=400, actor=API, now=timezone.now())

    assert refund.amount == 400
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 400
