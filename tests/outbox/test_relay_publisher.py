"""The relay's CeleryPublisher against a real Redis: Celery's own messages, one round trip per pipeline."""

import base64
import json
import uuid

import pytest
import redis
from celery import Celery, signals
from django.conf import settings
from django.db import transaction

from outbox.errors import PublishInterrupted
from outbox.models import OutboxMessage
from outbox.registry import outbox_topic_register
from outbox.relay import CeleryPublisher, Claimed, outbox_relay_batch
from outbox.services import outbox_message_enqueue

pytestmark = pytest.mark.django_db
TOPIC = "tests.outbox.publisher_thing_happened"
TASK = "tests.publisher_thing_task"
outbox_topic_register(topic=TOPIC, task_name=TASK)


@pytest.fixture
def broker():
    """A Celery app of the test's own on the suite's Redis, with a queue nobody else reads."""
    queue = f"tests.relay.{uuid.uuid4().hex}"
    app = Celery("relay-publisher-tests", broker=settings.CELERY_BROKER_URL, set_as_current=False)
    app.conf.update(task_default_queue=queue, task_serializer="json", accept_content=["json"], task_ignore_result=True)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield app, queue, client
    client.delete(queue, f"_kombu.binding.{queue}")
    client.close()
    app.close()


def queued(client: redis.Redis, queue: str) -> list[dict]:
    """The queue's messages, oldest first (kombu LPUSHes, workers BRPOP)."""
    return [json.loads(raw) for raw in reversed(client.lrange(queue, 0, -1))]


def body(message: dict) -> list:
    return json.loads(base64.b64decode(message["body"]))


def count_round_trips(monkeypatch) -> list[int]:
    """Count the writes of commands to Redis: a pipeline is one, each plain command one."""
    sent = [0]
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent[0] += 1
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sent


def enqueue(count: int) -> list[OutboxMessage]:
    with transaction.atomic():
        return [outbox_message_enqueue(topic=TOPIC, payload={"payment_id": f"pay_{n}"}) for n in range(count)]


def test_the_publisher_sends_the_message_celerys_send_task_sends_but_for_its_own_task_id(broker):
    app, queue, client = broker
    publisher = CeleryPublisher(app)
    kwargs = {"payment_id": "pay_7", "message_id": 7}

    publisher.publish([(TASK, Claimed(id=7, topic=TOPIC, payload={"payment_id": "pay_7"}, attempts=1))])
    app.send_task(TASK, kwargs=kwargs, retry=False)
    publisher.close()

    ours, celerys = queued(client, queue)
    assert (
        body(ours) == body(celerys) == [[], kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    )
    task_id = ours["headers"]["id"]
    assert task_id != celerys["headers"]["id"]
    assert ours["headers"]["root_id"] == ours["properties"]["correlation_id"] == task_id
    per_message = {"id", "root_id"}
    assert {k: v for k, v in ours["headers"].items() if k not in per_message} == {
        k: v for k, v in celerys["headers"].items() if k not in per_message
    }
    per_message = {"correlation_id", "delivery_tag"}
    assert {k: v for k, v in ours["properties"].items() if k not in per_message} == {
        k: v for k, v in celerys["properties"].items() if k not in per_message
    }
    assert {k: v for k, v in ours.items() if k not in ("body", "headers", "properties")} == {
        k: v for k, v in celerys.items() if k not in ("body", "headers", "properties")
    }


def test_a_batch_is_one_broker_round_trip_per_pipeline(broker, monkeypatch):
    app, queue, client = broker
    publisher = CeleryPublisher(app, pipeline_rows=20)
    batch = [(TASK, Claimed(id=n, topic=TOPIC, payload={"payment_id": f"pay_{n}"}, attempts=1)) for n in range(50)]
    publisher.publish(batch[:1])  # connects and declares the queue once
    round_trips = count_round_trips(monkeypatch)

    publisher.publish(batch)

    assert round_trips[0] == 3  # 20 + 20 + 10
    assert [body(message)[1]["message_id"] for message in queued(client, queue)] == [0, *range(50)]
    publisher.close()


def test_a_broker_failing_mid_batch_gives_back_exactly_the_rows_of_the_pipelines_that_did_not_land(broker, monkeypatch):
    app, queue, client = broker
    messages = enqueue(5)
    publisher = CeleryPublisher(app, pipeline_rows=2)
    executed = [0]
    original = redis.client.Pipeline.execute

    def second_pipeline_breaks(self, *args, **kwargs):
        executed[0] += any(command[0] == "LPUSH" for command, _ in self.command_stack)  # not the queue's declaration
        if executed[0] == 2:
            self.reset()
            raise redis.ConnectionError("broker went away")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", second_pipeline_breaks)

    result = outbox_relay_batch(publisher=publisher)

    assert (result.claimed, result.published) == (5, 2)
    assert result.failed_ids == [m.pk for m in messages[2:]]
    assert [body(message)[1]["message_id"] for message in queued(client, queue)] == [m.pk for m in messages[:2]]
    rows = {m.pk: m for m in OutboxMessage.objects.all()}
    assert {(rows[m.pk].status, rows[m.pk].attempts) for m in messages[:2]} == {(OutboxMessage.Status.HANDED_OUT, 1)}
    assert {(rows[m.pk].status, rows[m.pk].attempts, rows[m.pk].last_error_type) for m in messages[2:]} == {
        (OutboxMessage.Status.DUE, 0, "broker_unavailable")
    }
    assert publisher._producer is None  # dropped: the next batch connects afresh


def test_a_broker_that_cannot_be_reached_publishes_nothing():
    app = Celery("relay-publisher-tests", broker="redis://127.0.0.1:1/0", set_as_current=False)
    app.conf.update(broker_connection_timeout=0.5, broker_transport_options={"max_retries": 0})
    publisher = CeleryPublisher(app)

    with pytest.raises(PublishInterrupted) as raised:
        publisher.publish([(TASK, Claimed(id=1, topic=TOPIC, payload={}, attempts=1))])

    assert raised.value.published == 0
    assert isinstance(raised.value.__cause__, Exception)
    publisher.close()
    app.close()


def test_no_task_publish_signal_has_a_receiver_the_relay_would_skip():
    # The relay builds one message per task name through send_task and copies it: per-message
    # before/after_task_publish receivers (tracing, say) would not see the relay's messages.
    from config.celery import app

    app.loader.import_default_modules()

    assert not signals.before_task_publish.receivers
    assert not signals.after_task_publish.receivers
