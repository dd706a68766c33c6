import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_documents_every_payments_route_and_the_error_free_generation(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for route in [
        "/api/v1/payments",
        "/api/v1/payments/{payment_id}",
        "/api/v1/payments/{payment_id}/capture",
        "/api/v1/payments/{payment_id}/cancel",
        "/api/v1/payments/{payment_id}/refunds",
        "/api/v1/refunds/{refund_id}",
    ]:
        assert route in paths
    assert "202" in paths["/api/v1/payments"]["post"]["responses"]


def test_schema_generation_has_no_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_api_docs_page_is_served_without_a_cdn(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert b"cdn.jsdelivr" not in response.content


def schema_properties(client, component: str) -> set[str]:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    return set(schema["components"]["schemas"][component]["properties"])


def test_schema_payment_and_refund_objects_match_what_the_api_answers(api, client, merchant):
    from payments.models import Payment
    from tests.factories import RefundFactory, payment_with_status

    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant)
    refund = RefundFactory(payment=payment)

    payment_body = api.get(f"/api/v1/payments/{payment.public_id}").json()
    refund_body = api.get(f"/api/v1/refunds/{refund.public_id}").json()
    error_body = api.get("/api/v1/payments/pay_missing").json()

    assert set(payment_body) == schema_properties(client, "PaymentOutput")
    assert set(refund_body) == schema_properties(client, "RefundOutput")
    assert set(error_body) == schema_properties(client, "Error")
    assert set(error_body["error"]) == schema_properties(client, "ErrorDetail")


def test_schema_lists_exactly_the_accepted_currencies(client):
    from payments.currencies import CURRENCIES

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    currency = schema["components"]["schemas"]["PaymentCreateInput"]["properties"]["currency"]
    enum = schema["components"]["schemas"][currency["allOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"]

    assert enum == sorted(CURRENCIES)
    assert "usn" not in enum and "xau" not in enum
    amount = schema["components"]["schemas"]["PaymentCreateInput"]["properties"]["amount"]
    assert "usd 50" in amount["description"] and "jpy 50" in amount["description"]
