"""The relay finds its way back after PostgreSQL drops its connections (a restart, a failover): the
chaos run restarts the server; these pin the same recovery down in one process."""

import threading

import pytest
from django.db import connection, transaction

from outbox.relay import OutboxRelay
from outbox.services import outbox_message_enqueue
from tests.fixtures.live import wait_until
from tests.outbox.test_relay import TOPIC, RecordingPublisher

pytestmark = pytest.mark.django_db(transaction=True)


def _terminate(backend_pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend_pid])


def test_the_relay_listens_again_on_a_new_connection_after_the_server_cut_its_listen_connection():
    relay = OutboxRelay(publisher=RecordingPublisher(), poll_interval=0.1)
    lost = relay._listen().info.backend_pid
    _terminate(lost)

    relay._wait(0.5)  # the cut is noticed here and the connection dropped
    listener = relay._listen()
    try:
        with transaction.atomic():
            outbox_message_enqueue(topic=TOPIC, payload={})

        assert listener.info.backend_pid != lost
        assert [n.channel for n in listener.notifies(timeout=5, stop_after=1)] == ["outbox"]
    finally:
        listener.close()


def test_the_relay_loop_outlives_the_server_cutting_all_its_connections_and_publishes_what_follows():
    publisher = RecordingPublisher()
    relay = OutboxRelay(publisher=publisher, poll_interval=0.1)
    thread = threading.Thread(target=_run_closing_its_connection, args=(relay,))
    thread.start()
    try:
        first = _enqueue(1)
        wait_until(lambda: len(publisher.published) == 1, timeout=10, what="the first row published")
        _terminate_all_but_mine()
        second = _enqueue(2)

        wait_until(lambda: len(publisher.published) == 2, timeout=20, what="the row after the cut published")
    finally:
        relay.stop.set()
        thread.join(timeout=10)

    assert not thread.is_alive()
    assert [payload["message_id"] for _, payload in publisher.published] == [first.id, second.id]


def _enqueue(n: int):
    with transaction.atomic():
        return outbox_message_enqueue(topic=TOPIC, payload={"n": n})


def _run_closing_its_connection(relay: OutboxRelay) -> None:
    try:
        relay.run()
    finally:
        connection.close()


def _terminate_all_but_mine() -> None:
    """What a restart does to every client: each of the relay's connections is cut."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
