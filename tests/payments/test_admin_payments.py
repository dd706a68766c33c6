import pytest

from outbox.models import OutboxMessage
from payments.models import Payment, PaymentEvent
from tests.factories import PaymentFactory, RefundFactory, payment_with_status

pytestmark = pytest.mark.django_db


def test_payment_changelist_search_and_detail_render_for_ops(admin_client):
    payment = payment_with_status(Payment.Status.SUCCEEDED, customer_reference="cust-7")
    RefundFactory(payment=payment)

    listing = admin_client.get("/admin/payments/payment/?status__exact=SUCCEEDED&q=cust-7")
    detail = admin_client.get(f"/admin/payments/payment/{payment.pk}/change/")

    assert listing.status_code == 200
    assert payment.public_id in listing.content.decode()
    assert detail.status_code == 200
    assert b'name="amount"' not in detail.content  # money is shown, never editable


def test_admin_cannot_add_or_delete_payments(admin_client):
    payment = PaymentFactory()

    assert admin_client.get("/admin/payments/payment/add/").status_code == 403
    assert admin_client.post(f"/admin/payments/payment/{payment.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Payment.objects.filter(pk=payment.pk).exists()


def test_admin_cancel_action_goes_through_the_service_and_records_who(admin_client):
    payment = PaymentFactory()

    response = admin_client.post(
        "/admin/payments/payment/", {"action": "cancel_payments", "_selected_action": [payment.pk]}, follow=True
    )

    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CANCELED
    event = PaymentEvent.objects.get(payment=payment)
    assert (event.source, event.actor) == ("admin", "admin:admin")


def test_admin_capture_action_reports_a_refused_capture_and_changes_nothing(admin_client):
    payment = payment_with_status(Payment.Status.FAILED)

    response = admin_client.post(
        "/admin/payments/payment/", {"action": "capture_payments", "_selected_action": [payment.pk]}, follow=True
    )

    assert "only a payment in requires_capture can be captured" in response.content.decode()
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert not OutboxMessage.objects.exists()


def test_timeline_and_outbox_admin_pages_are_read_only(admin_client):
    payment = PaymentFactory()

    assert admin_client.get("/admin/payments/paymentevent/add/").status_code == 403
    assert admin_client.get("/admin/outbox/outboxmessage/add/").status_code == 403
    assert admin_client.get(f"/admin/payments/payment/{payment.pk}/change/").status_code == 200
