import pytest
from django.db import transaction
from django.urls import reverse

from outbox.models import OutboxMessage
from outbox.services import outbox_message_enqueue
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:outbox_outboxmessage_changelist")


def dead_message() -> OutboxMessage:
    with transaction.atomic():
        message = outbox_message_enqueue(topic="payments.payment.create_requested", payload={"payment_id": "pay_x"})
    OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxMessage.Status.DEAD, attempts=12)
    return message


def post_retry_now(client, message: OutboxMessage):
    return client.post(CHANGELIST, {"action": "retry_now", "_selected_action": [message.pk]})


def test_a_view_only_user_sees_dead_messages_but_cannot_retry_them(client):
    message = dead_message()
    client.force_login(StaffUserFactory(permissions=["outbox.view_outboxmessage"]))

    page = client.get(CHANGELIST)
    post_retry_now(client, message)

    assert page.status_code == 200 and b"retry_now" not in page.content
    assert OutboxMessage.objects.get(pk=message.pk).status == OutboxMessage.Status.DEAD


def test_the_retry_permission_makes_a_dead_message_due_again(client):
    message = dead_message()
    client.force_login(StaffUserFactory(permissions=["outbox.view_outboxmessage", "outbox.retry_outboxmessage"]))

    post_retry_now(client, message)

    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxMessage.Status.DUE, 0)


def test_retry_now_on_a_done_message_changes_nothing_and_says_so(client):
    done, dead = dead_message(), dead_message()
    OutboxMessage.objects.filter(pk=done.pk).update(status=OutboxMessage.Status.DONE, done_at=done.created_at)
    client.force_login(StaffUserFactory(permissions=["outbox.view_outboxmessage", "outbox.retry_outboxmessage"]))

    response = client.post(CHANGELIST, {"action": "retry_now", "_selected_action": [done.pk, dead.pk]}, follow=True)

    assert [str(m) for m in response.context["messages"]] == ["1 message(s) made due now; 1 already done, left alone."]
    assert OutboxMessage.objects.get(pk=done.pk).status == OutboxMessage.Status.DONE
