"""
The payment actions of the ops console, through the Django test client, logged in as each group:
each asks for a reason on a page of its own, calls one service, and writes the timeline with the
operator and the reason; each is hidden from, and refused to, a group without its permission.
"""

import re

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from outbox.models import OutboxMessage
from outbox.services import outbox_message_enqueue
from payments import topics
from payments.models import Payment, PaymentEvent, Refund
from tests.factories import payment_with_status
from tests.fixtures.gateway import intent
from tests.fixtures.ops import NO_GROUP, OPS_READ_ONLY, PAYMENTS_ADMIN

pytestmark = pytest.mark.django_db
S = Payment.Status
CHANGELIST = reverse("admin:payments_payment_changelist")
REASON = "ticket OPS-7: the customer's bank confirmed"
ACTIONS = ["retry_now", "resync_payments", "capture_payments", "cancel_payments", "refund_payments", "resolve_payment"]


def dead_create_row(payment: Payment) -> OutboxMessage:
    with transaction.atomic():
        message = outbox_message_enqueue(
            topic=topics.PAYMENT_CREATE_REQUESTED, payload={"payment_id": payment.public_id}
        )
    OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxMessage.Status.DEAD, attempts=12)
    return message


def choose(client, action: str, *payments: Payment):
    """The changelist's POST: Django answers with the action's reason form."""
    return client.post(CHANGELIST, {"action": action, "_selected_action": [payment.pk for payment in payments]})


def apply(client, action: str, *payments: Payment, **fields):
    """The reason form's POST: the action runs."""
    data = {"action": action, "_selected_action": [payment.pk for payment in payments], "apply": "1", **fields}
    return client.post(CHANGELIST, data, follow=True)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def offered_actions(response) -> set[str]:
    return set(re.findall(r'<option value="(\w+)"', response.content.decode())) & set(ACTIONS)


# --- per action: a payment it changes, the fields it needs, the entry it writes, the status after ----
def _retry(provider):
    payment = payment_with_status(S.PROCESSING)
    dead_create_row(payment)
    return payment, {}, "payment.retry_requested", S.PROCESSING


def _resync(provider):
    payment = payment_with_status(S.PROCESSING, amount=2000, provider_payment_id="pi_1")
    provider.script("intent_retrieve", intent("succeeded", id="pi_1"))
    return payment, {}, "payment.resynced", S.SUCCEEDED


def _capture(provider):
    return payment_with_status(S.REQUIRES_CAPTURE), {}, "payment.capture_requested", S.CAPTURE_REQUESTED


def _cancel(provider):
    return payment_with_status(S.REQUIRES_CAPTURE), {}, "payment.cancel_requested", S.CANCEL_REQUESTED


def _refund(provider):
    return payment_with_status(S.SUCCEEDED), {"refund_reason": "duplicate"}, "refund.created", S.SUCCEEDED


def _resolve(provider):
    payment = payment_with_status(S.PROCESSING, provider_payment_id="pi_1")
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timezone.timedelta(hours=2))
    provider.script("intent_retrieve", intent("processing", id="pi_1"))
    return payment, {"status": S.CANCELED}, "payment.resolved_by_hand", S.CANCELED


ARRANGED = [
    ("retry_now", _retry),
    ("resync_payments", _resync),
    ("capture_payments", _capture),
    ("cancel_payments", _cancel),
    ("refund_payments", _refund),
    ("resolve_payment", _resolve),
]


# --- refused to the wrong group, even posted directly -------------------------------------------------
@pytest.mark.parametrize("group", [OPS_READ_ONLY, NO_GROUP])
@pytest.mark.parametrize(("action", "arrange"), ARRANGED)
def test_an_action_posted_directly_by_a_group_without_its_permission_does_nothing(
    login_as, provider, group, action, arrange
):
    client = login_as(group)
    payment, fields, _, _ = arrange(provider)  # a payment the action would change
    outbox_before = list(OutboxMessage.objects.values_list("pk", "status", "attempts"))

    form = choose(client, action, payment)
    applied = apply(client, action, payment, reason=REASON, **fields)

    assert b'name="reason"' not in form.content
    assert applied.status_code == (403 if group is NO_GROUP else 200)
    assert Payment.objects.get(pk=payment.pk).status == payment.status
    assert not PaymentEvent.objects.exists()
    assert not Refund.objects.exists()
    assert list(OutboxMessage.objects.values_list("pk", "status", "attempts")) == outbox_before
    assert provider.calls == []


# --- who sees what ----------------------------------------------------------------------------------
def test_payments_admin_is_offered_every_action(login_as):
    client = login_as(PAYMENTS_ADMIN)

    response = client.get(CHANGELIST)

    assert offered_actions(response) == set(ACTIONS)


def test_ops_read_only_sees_payments_and_is_offered_no_action(login_as):
    client = login_as(OPS_READ_ONLY)
    payment = payment_with_status(S.REQUIRES_CAPTURE)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert payment.public_id in response.content.decode()
    assert offered_actions(response) == set()


def test_a_staff_user_in_no_group_cannot_open_payments(login_as):
    client = login_as(NO_GROUP)

    assert client.get(CHANGELIST).status_code == 403


def test_each_action_needs_its_own_permission_not_another_one(client, ops_groups):
    from tests.factories import StaffUserFactory

    client.force_login(StaffUserFactory(permissions=["payments.view_payment", "payments.capture_payment"]))
    payment = payment_with_status(S.REQUIRES_CAPTURE)

    offered = offered_actions(client.get(CHANGELIST))
    apply(client, "cancel_payments", payment, reason=REASON)

    assert offered == {"capture_payments"}
    assert Payment.objects.get(pk=payment.pk).status == S.REQUIRES_CAPTURE


# --- the reason form ----------------------------------------------------------------------------------
def test_an_action_first_asks_for_a_reason_and_lists_the_payments_it_will_touch(login_as):
    client = login_as(PAYMENTS_ADMIN)
    payment = payment_with_status(S.REQUIRES_CAPTURE, amount=2000, currency="eur")

    response = choose(client, "capture_payments", payment)

    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="reason"' in html
    assert f'name="_selected_action" value="{payment.pk}"' in html
    assert payment.public_id in html and "€20.00" in html
    assert Payment.objects.get(pk=payment.pk).status == S.REQUIRES_CAPTURE  # nothing runs yet


# --- each action, for the group that may ------------------------------------------------------------
@pytest.mark.parametrize(("action", "arrange"), ARRANGED)
def test_each_action_calls_its_service_and_writes_the_timeline_with_the_operator_and_reason(
    login_as, provider, action, arrange
):
    client = login_as(PAYMENTS_ADMIN)
    payment, fields, event_type, status = arrange(provider)

    response = apply(client, action, payment, reason=REASON, **fields)

    assert response.status_code == 200
    assert any("1 payment(s)" in message for message in messages_of(response)), messages_of(response)
    assert Payment.objects.get(pk=payment.pk).status == status
    event = PaymentEvent.objects.filter(payment=payment, type=event_type).get()
    username = response.wsgi_request.user.username
    assert (event.source, event.actor, event.reason) == ("admin", f"admin:{username}", REASON)


def test_retry_now_makes_the_dead_row_due_now(login_as):
    client = login_as(PAYMENTS_ADMIN)
    payment = payment_with_status(S.PROCESSING)
    message = dead_create_row(payment)

    apply(client, "retry_now", payment, reason="")

    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxMessage.Status.DUE, 0)


def test_resync_applies_the_providers_truth(login_as, provider):
    client = login_as(PAYMENTS_ADMIN)
    payment = payment_with_status(S.CAPTURE_REQUESTED, amount=2000, provider_payment_id="pi_1")
    provider.script("intent_retrieve", intent("succeeded", id="pi_1"))

    response = apply(client, "resync_payments", payment, reason="")

    payment.refresh_from_db()
    assert (payment.status, payment.amount_received) == (S.SUCCEEDED, 2000)
    assert f"Payment {payment.public_id}: the provider says succeeded; it is succeeded" in messages_of(response)
    assert provider.called("intent_retrieve") == [{"intent_id": "pi_1"}]


def test_refund_takes_an_amount_in_major_units_and_defaults_to_everything_left(login_as):
    client = login_as(PAYMENTS_ADMIN)
    partial = payment_with_status(S.SUCCEEDED, amount=2000, currency="eur")
    full = payment_with_status(S.SUCCEEDED, amount=5120, currency="kwd")

    apply(client, "refund_payments", partial, reason="", amount="5.50")
    apply(client, "refund_payments", full, reason="")

    assert Refund.objects.get(payment=partial).amount == 550
    assert Refund.objects.get(payment=full).amount == 5120


def test_refund_refuses_an_amount_with_more_decimals_than_the_currency_has(login_as):
    client = login_as(PAYMENTS_ADMIN)
    payment = payment_with_status(S.SUCCEEDED, amount=2000, currency="jpy")

    response = apply(client, "refund_payments", payment, reason="", amount="5.5")

    assert "at most 0 decimals" in response.content.decode()
    assert not Refund.objects.exists()


def test_resolve_by_hand_refuses_without_a_reason(login_as, provider):
    client = login_as(PAYMENTS_ADMIN)
    payment = payment_with_status(S.PROCESSING, provider_payment_id="pi_1")

    response = apply(client, "resolve_payment", payment, reason="   ", status=S.FAILED)

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert Payment.objects.get(pk=payment.pk).status == S.PROCESSING
    assert not PaymentEvent.objects.exists()
    assert provider.calls == []


def test_resolve_by_hand_has_no_default_status(login_as, provider):
    client = login_as(PAYMENTS_ADMIN)
    payment = payment_with_status(S.PROCESSING, provider_payment_id="pi_1")

    response = apply(client, "resolve_payment", payment, reason=REASON)

    assert "This field is required." in response.content.decode()
    assert Payment.objects.get(pk=payment.pk).status == S.PROCESSING
    assert provider.calls == []


def test_resolve_by_hand_refuses_to_fail_a_payment_the_provider_says_succeeded(login_as, provider):
    client = login_as(PAYMENTS_ADMIN)
    payment = payment_with_status(S.PROCESSING, amount=2000, provider_payment_id="pi_1")
    provider.script("intent_retrieve", intent("succeeded", id="pi_1"))

    response = apply(client, "resolve_payment", payment, reason=REASON, status=S.FAILED)

    assert any("The provider has settled" in message for message in messages_of(response)), messages_of(response)
    assert Payment.objects.get(pk=payment.pk).status == S.SUCCEEDED
    assert not PaymentEvent.objects.filter(type="payment.resolved_by_hand").exists()


def test_resolve_by_hand_offers_only_what_the_state_machine_allows(login_as):
    client = login_as(PAYMENTS_ADMIN)
    payment = payment_with_status(S.CAPTURE_REQUESTED)

    html = choose(client, "resolve_payment", payment).content.decode()

    assert re.findall(r'<option value="([A-Z_]+)"', html) == [S.SUCCEEDED, S.CANCELED]


def test_resolve_by_hand_of_a_settled_payment_is_refused_before_any_form(login_as):
    client = login_as(PAYMENTS_ADMIN)
    payment = payment_with_status(S.SUCCEEDED)

    response = client.post(CHANGELIST, {"action": "resolve_payment", "_selected_action": [payment.pk]}, follow=True)

    assert "nothing to resolve" in " ".join(messages_of(response))
    assert b'name="reason"' not in response.content


def test_resolve_by_hand_takes_one_payment_at_a_time(login_as):
    client = login_as(PAYMENTS_ADMIN)
    payments = [payment_with_status(S.PROCESSING), payment_with_status(S.PROCESSING)]

    response = client.post(
        CHANGELIST, {"action": "resolve_payment", "_selected_action": [p.pk for p in payments]}, follow=True
    )

    assert "Choose exactly one payment" in " ".join(messages_of(response))
