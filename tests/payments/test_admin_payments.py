import pytest

from outbox.models import OutboxMessage
from payments.models import Payment, PaymentEvent
from tests.factories import PaymentFactory, RefundFactory, StaffUserFactory, payment_with_status

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/payments/payment/"


def staff_client(client, *permissions: str):
    """The Django test client logged in as a staff user holding exactly `permissions`."""
    client.force_login(StaffUserFactory(permissions=list(permissions)))
    return client


def test_payment_changelist_search_and_detail_render_for_ops(admin_client):
    payment = payment_with_status(Payment.Status.SUCCEEDED, customer_reference="cust-7")
    RefundFactory(payment=payment)

    listing = admin_client.get("/admin/payments/payment/?status__exact=SUCCEEDED&q=cust-7")
    detail = admin_client.get(f"/admin/payments/payment/{payment.pk}/change/")

    assert listing.status_code == 200
    assert payment.public_id in listing.content.decode()
    assert detail.status_code == 200
    assert b'name="amount"' not in detail.content  # money is shown, never editable


def test_ops_list_the_payments_flagged_for_them_by_reason(admin_client):
    flagged, other = payment_with_status(Payment.Status.SUCCEEDED), payment_with_status(Payment.Status.SUCCEEDED)
    Payment.objects.filter(pk=flagged.pk).update(flagged_at=flagged.created_at, flag_reason="dispute")

    listing = admin_client.get(CHANGELIST, {"flag_reason": "dispute"})

    assert listing.status_code == 200
    assert flagged.public_id in listing.content.decode() and other.public_id not in listing.content.decode()


def test_admin_cannot_add_or_delete_payments(admin_client):
    payment = PaymentFactory()

    assert admin_client.get("/admin/payments/payment/add/").status_code == 403
    assert admin_client.post(f"/admin/payments/payment/{payment.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Payment.objects.filter(pk=payment.pk).exists()


def test_admin_cancel_action_goes_through_the_service_and_records_who(admin_client):
    payment = PaymentFactory()

    response = admin_client.post(
        "/admin/payments/payment/",
        {"action": "cancel_payments", "_selected_action": [payment.pk], "apply": "1"},
        follow=True,
    )

    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CANCELED
    event = PaymentEvent.objects.get(payment=payment)
    assert (event.source, event.actor) == ("admin", "admin:admin")


def test_admin_capture_action_reports_a_refused_capture_and_changes_nothing(admin_client):
    payment = payment_with_status(Payment.Status.FAILED)

    response = admin_client.post(
        "/admin/payments/payment/",
        {"action": "capture_payments", "_selected_action": [payment.pk], "apply": "1"},
        follow=True,
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


def test_a_view_only_user_sees_payments_but_no_money_moving_action(client):
    staff_client(client, "payments.view_payment")
    payment = payment_with_status(Payment.Status.REQUIRES_CAPTURE)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert payment.public_id in response.content.decode()
    assert b"capture_payments" not in response.content
    assert b"cancel_payments" not in response.content


@pytest.mark.parametrize("action", ["capture_payments", "cancel_payments"])
@pytest.mark.parametrize("select_across", ["0", "1"])
def test_a_view_only_user_posting_an_action_anyway_moves_no_money(client, action, select_across):
    staff_client(client, "payments.view_payment")
    selected = payment_with_status(Payment.Status.REQUIRES_CAPTURE)
    payment_with_status(Payment.Status.REQUIRES_CAPTURE)  # another client's: select_across reaches it

    response = client.post(
        CHANGELIST,
        {
            "action": action,
            "_selected_action": [selected.pk],
            "select_across": select_across,
            "index": "0",
            "apply": "1",
        },
        follow=True,
    )

    assert response.status_code == 200
    assert set(Payment.objects.values_list("status", flat=True)) == {Payment.Status.REQUIRES_CAPTURE}
    assert not PaymentEvent.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_the_capture_permission_allows_capture_and_not_cancel(client):
    staff_client(client, "payments.view_payment", "payments.capture_payment")
    payment = payment_with_status(Payment.Status.REQUIRES_CAPTURE)

    listing = client.get(CHANGELIST)
    cancel = client.post(
        CHANGELIST, {"action": "cancel_payments", "_selected_action": [payment.pk], "apply": "1"}, follow=True
    )
    payment.refresh_from_db()
    status_after_cancel = payment.status
    capture = client.post(
        CHANGELIST, {"action": "capture_payments", "_selected_action": [payment.pk], "apply": "1"}, follow=True
    )

    assert b"capture_payments" in listing.content
    assert b"cancel_payments" not in listing.content
    assert cancel.status_code == 200
    assert status_after_cancel == Payment.Status.REQUIRES_CAPTURE
    assert capture.status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURE_REQUESTED
    assert PaymentEvent.objects.get(payment=payment).actor == f"admin:{capture.wsgi_request.user.username}"


def test_the_cancel_permission_allows_cancel_and_not_capture(client):
    staff_client(client, "payments.view_payment", "payments.cancel_payment")
    payment = payment_with_status(Payment.Status.REQUIRES_CAPTURE)

    listing = client.get(CHANGELIST)
    capture = client.post(
        CHANGELIST, {"action": "capture_payments", "_selected_action": [payment.pk], "apply": "1"}, follow=True
    )
    payment.refresh_from_db()
    status_after_capture = payment.status
    cancel = client.post(
        CHANGELIST, {"action": "cancel_payments", "_selected_action": [payment.pk], "apply": "1"}, follow=True
    )

    assert b"cancel_payments" in listing.content
    assert b"capture_payments" not in listing.content
    assert capture.status_code == 200
    assert status_after_capture == Payment.Status.REQUIRES_CAPTURE
    assert cancel.status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CANCEL_REQUESTED


def test_money_moving_permissions_are_declared_on_the_payment_model():
    declared = {codename for codename, _ in Payment._meta.permissions}

    assert declared == {
        "capture_payment",
        "cancel_payment",
        "refund_payment",
        "retry_payment",
        "sync_payment",
        "resolve_payment",
    }
