from datetime import timedelta

import pytest
from django.utils import timezone

from payments.models import Payment
from tests.factories import ApiClientFactory, PaymentFactory, payment_with_status

pytestmark = pytest.mark.django_db


def test_retrieve_payment_answers_200_with_the_payment(api, merchant):
    payment = PaymentFactory(client=merchant, amount=750)

    response = api.get(f"/api/v1/payments/{payment.public_id}")

    assert response.status_code == 200
    assert response.json()["id"] == payment.public_id
    assert response.json()["amount"] == 750


def test_retrieve_another_clients_payment_is_404_as_if_it_did_not_exist(api):
    foreign = PaymentFactory(client=ApiClientFactory(name="someone-else"))

    response = api.get(f"/api/v1/payments/{foreign.public_id}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"


def test_retrieve_unknown_payment_is_404_in_the_error_shape(api):
    response = api.get("/api/v1/payments/pay_nope")

    assert response.status_code == 404
    assert set(response.json()["error"]) == {"type", "code", "message", "param"}


def test_internal_capture_requested_state_is_shown_as_processing(api, merchant):
    payment = payment_with_status(Payment.Status.CAPTURE_REQUESTED, client=merchant)

    response = api.get(f"/api/v1/payments/{payment.public_id}")

    assert response.json()["status"] == "processing"


def test_list_payments_is_newest_first_with_has_more_and_only_the_clients_own(api, merchant):
    PaymentFactory(client=ApiClientFactory(name="other"))
    mine = [PaymentFactory(client=merchant) for _ in range(3)]

    response = api.get("/api/v1/payments?limit=2")

    body = response.json()
    assert response.status_code == 200
    assert body["object"] == "list"
    assert [p["id"] for p in body["data"]] == [mine[2].public_id, mine[1].public_id]
    assert body["has_more"] is True


def test_list_payments_pages_with_starting_after(api, merchant):
    mine = [PaymentFactory(client=merchant) for _ in range(3)]

    response = api.get(f"/api/v1/payments?limit=2&starting_after={mine[1].public_id}")

    assert [p["id"] for p in response.json()["data"]] == [mine[0].public_id]
    assert response.json()["has_more"] is False


def test_list_payments_filters_by_public_status(api, merchant):
    succeeded = payment_with_status(Payment.Status.SUCCEEDED, client=merchant)
    capture_requested = payment_with_status(Payment.Status.CAPTURE_REQUESTED, client=merchant)
    PaymentFactory(client=merchant)

    succeeded_ids = [p["id"] for p in api.get("/api/v1/payments?status=succeeded").json()["data"]]
    processing_ids = [p["id"] for p in api.get("/api/v1/payments?status=processing").json()["data"]]

    assert succeeded_ids == [succeeded.public_id]
    assert processing_ids == [capture_requested.public_id]


def test_list_payments_filters_by_created_range(api, merchant):
    old = PaymentFactory(client=merchant)
    Payment.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    new = PaymentFactory(client=merchant)
    since = int((timezone.now() - timedelta(days=1)).timestamp())

    newer = api.get(f"/api/v1/payments?created[gte]={since}").json()["data"]
    older = api.get(f"/api/v1/payments?created[lte]={since}").json()["data"]

    assert [p["id"] for p in newer] == [new.public_id]
    assert [p["id"] for p in older] == [old.public_id]


def test_a_created_bound_of_a_payments_own_created_second_lists_it(api, merchant):
    # `created` is whole seconds, as Stripe shows it: a payment stored at 12.7 s shows 12, and both
    # created[gte]=12 and created[lte]=12 must find it (the stored time has a fraction of a second).
    payment = PaymentFactory(client=merchant)
    moment = timezone.now().replace(microsecond=700_000)
    Payment.objects.filter(pk=payment.pk).update(created_at=moment)
    created = api.get(f"/api/v1/payments/{payment.public_id}").json()["created"]

    found = {
        query: [p["id"] for p in api.get(f"/api/v1/payments?{query}").json()["data"]]
        for query in (
            f"created[gte]={created}",
            f"created[lte]={created}",
            f"created[gte]={created}&created[lte]={created}",
        )
    }
    outside = api.get(f"/api/v1/payments?created[lte]={created - 1}").json()["data"]

    assert found == {query: [payment.public_id] for query in found}
    assert outside == []


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=x", "status=paid", "created[gte]=yesterday", "colour=red"]
)
def test_list_payments_refuses_bad_query_parameters_with_400(api, query):
    response = api.get(f"/api/v1/payments?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_list_payments_with_unknown_starting_after_is_404_naming_the_param(api):
    response = api.get("/api/v1/payments?starting_after=pay_unknown")

    assert response.status_code == 404
    assert response.json()["error"]["param"] == "starting_after"


def test_list_payments_makes_no_query_per_row(api, merchant, django_assert_max_num_queries):
    for _ in range(20):
        PaymentFactory(client=merchant)

    with django_assert_max_num_queries(4):
        response = api.get("/api/v1/payments?limit=20")

    assert len(response.json()["data"]) == 20


@pytest.mark.parametrize("param", ["created[gte]", "created[lte]"])
@pytest.mark.parametrize("value", ["253402300800", str(2**40), "9" * 30, "-1"])
def test_a_created_filter_that_cannot_be_a_date_is_400_naming_the_param_as_sent(api, param, value):
    response = api.get(f"/api/v1/payments?{param}={value}")

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "parameter_invalid", param)


def test_the_last_second_of_year_9999_is_still_a_date(api, merchant):
    PaymentFactory(client=merchant)

    response = api.get("/api/v1/payments?created[gte]=0&created[lte]=253402300799")

    assert response.status_code == 200
    assert len(response.json()["data"]) == 1


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("status=paid", "status"),
        ("created[gte]=yesterday", "created[gte]"),
        ("created[lte]=1.5", "created[lte]"),
        ("colour=red", "colour"),
        ("created[gt]=1", "created[gt]"),
        ("created_gte=1", "created_gte"),
        ("limit[x]=1", "limit[x]"),
        ("starting_after=" + "p" * 41, "starting_after"),
    ],
)
def test_a_bad_query_parameter_is_named_as_the_client_sent_it(api, query, param):
    response = api.get(f"/api/v1/payments?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_list_payments_is_newest_created_first_with_ties_by_id_across_pages(api, merchant):
    first, second, third, fourth = [PaymentFactory(client=merchant) for _ in range(4)]
    moment = timezone.now() - timedelta(hours=1)
    Payment.objects.filter(pk__in=[second.pk, third.pk]).update(created_at=moment)
    Payment.objects.filter(pk=fourth.pk).update(created_at=moment - timedelta(hours=1))

    pages, after = [], None
    while True:
        query = "limit=1" + (f"&starting_after={after}" if after else "")
        body = api.get(f"/api/v1/payments?{query}").json()
        pages += [p["id"] for p in body["data"]]
        if not body["has_more"]:
            break
        after = pages[-1]

    assert pages == [first.public_id, third.public_id, second.public_id, fourth.public_id]
