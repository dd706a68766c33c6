import pytest
from django.urls import reverse

from outbox.models import OutboxMessage
from tests.factories import StaffUserFactory
from tests.webhooks.conftest import deliver, event, intent_object
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:webhooks_webhookevent_changelist")


def parked(client) -> WebhookEvent:
    deliver(client, event("payment_intent.succeeded", intent_object("pi_9", "succeeded", payment_id=None)))
    WebhookEvent.objects.update(status=WebhookEvent.Status.PARKED, attempts=10, last_error="parked: no payment")
    OutboxMessage.objects.update(status=OutboxMessage.Status.DEAD)
    return WebhookEvent.objects.get()


def replay(client, row: WebhookEvent, reason: str = "the payment turned up: pay_ imported by hand"):
    """The action's two POSTs: the changelist's (shows the reason form), then the form's "apply"."""
    client.post(CHANGELIST, {"action": "replay", "_selected_action": [row.pk]})
    return client.post(CHANGELIST, {"action": "replay", "_selected_action": [row.pk], "apply": "1", "reason": reason})


def test_a_view_only_user_sees_events_but_is_neither_offered_nor_allowed_replay(client):
    row = parked(client)
    client.force_login(StaffUserFactory(permissions=["webhooks.view_webhookevent"]))

    page = client.get(CHANGELIST)
    replay(client, row)

    assert page.status_code == 200 and row.provider_event_id.encode() in page.content
    assert b"replay" not in page.content
    assert WebhookEvent.objects.get(pk=row.pk).status == WebhookEvent.Status.PARKED
    assert OutboxMessage.objects.filter(status=OutboxMessage.Status.DUE).count() == 0


def test_the_replay_permission_queues_the_event_again(client):
    row = parked(client)
    client.force_login(StaffUserFactory(permissions=["webhooks.view_webhookevent", "webhooks.replay_webhookevent"]))

    form = client.post(CHANGELIST, {"action": "replay", "_selected_action": [row.pk]})
    replay(client, row)

    assert form.status_code == 200 and b'name="reason"' in form.content  # it asks why before it replays

    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("RECEIVED", 0, "parked: no payment")
    assert OutboxMessage.objects.filter(status=OutboxMessage.Status.DUE).count() == 1


def test_events_are_read_only_and_found_by_provider_or_object_id(client):
    row = parked(client)
    client.force_login(StaffUserFactory(permissions=["webhooks.view_webhookevent", "webhooks.replay_webhookevent"]))

    by_event = client.get(CHANGELIST, {"q": row.provider_event_id})
    by_object = client.get(CHANGELIST, {"q": "pi_9"})
    by_status = client.get(CHANGELIST, {"status__exact": "PARKED", "type__exact": "payment_intent.succeeded"})
    change = client.post(reverse("admin:webhooks_webhookevent_change", args=[row.pk]), {"status": "PROCESSED"})

    for page in (by_event, by_object, by_status):
        assert page.status_code == 200 and row.provider_event_id.encode() in page.content
    assert change.status_code == 403
    assert client.get(reverse("admin:webhooks_webhookevent_add")).status_code == 403


def test_a_replay_needs_a_reason_and_is_on_the_payments_timeline_with_the_operator(client):
    from payments.models import Payment
    from tests.factories import payment_with_status

    payment = payment_with_status(Payment.Status.PROCESSING)
    row = parked(client)
    WebhookEvent.objects.filter(pk=row.pk).update(payment_public_id=payment.public_id)
    operator = StaffUserFactory(permissions=["webhooks.view_webhookevent", "webhooks.replay_webhookevent"])
    client.force_login(operator)

    without_reason = replay(client, row, reason="")
    assert WebhookEvent.objects.get(pk=row.pk).status == WebhookEvent.Status.PARKED
    replay(client, row)

    assert without_reason.status_code == 200  # the form again, with its error
    entry = payment.events.get(type="webhook.replayed")
    assert (entry.source, entry.actor) == ("admin", f"admin:{operator.username}")
    assert entry.reason.startswith("the payment turned up") and entry.data["event_id"] == row.provider_event_id
