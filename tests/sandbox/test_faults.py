"""Each fault the sandbox injects, as the real SDK experiences it, and the ledger that judges."""

import json
import subprocess
import sys
import time
import urllib.request

import pytest
import stripe
from django.conf import settings

from config.devstack import paths
from sandbox.faults import parse_spec
from tests.fixtures.sandbox import make_stripe_client
from webhooks.handlers import WEBHOOK_EVENT_TYPES

VISA = {"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}


def create(client, key: str | None = None):
    options = {"idempotency_key": key} if key else {}
    return client.v1.payment_intents.create(params=VISA, options=options)


def test_latency_slows_the_response_down(stripe_client, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "latency", "ms": 300})

    started = time.monotonic()
    create(stripe_client)

    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("kind", ["http_500", "http_502", "http_503"])
def test_server_errors_are_api_errors_with_stripes_body_and_no_work_done(stripe_client, stripe_sandbox, kind):
    stripe_sandbox.set_faults({"kind": kind, "count": 1})

    with pytest.raises(stripe.APIError) as failed:
        create(stripe_client, "k")
    retried = create(stripe_client, "k")

    assert failed.value.http_status == int(kind[-3:])
    assert failed.value.json_body["error"]["type"] == "api_error"
    assert "Idempotent-Replayed" not in retried.last_response.headers  # 5xx results are not stored
    assert stripe_sandbox.ledger()["totals"]["created"] == 1


def test_rate_limit_is_a_429_with_retry_after(stripe_client, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "rate_limit", "count": 1, "retry_after": 3})

    with pytest.raises(stripe.RateLimitError) as limited:
        create(stripe_client)

    assert limited.value.http_status == 429
    assert limited.value.headers["Retry-After"] == "3"
    assert stripe_sandbox.ledger()["totals"]["created"] == 0


def test_timeout_after_commit_does_the_work_but_the_response_never_arrives(stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "timeout_after_commit", "count": 1, "ms": 3000})
    client = make_stripe_client(stripe_sandbox.url, timeout=0.5)

    with pytest.raises(stripe.APIConnectionError):
        create(client, "order-9")
    replay = create(client, "order-9")  # the retry with the same key learns what happened

    assert replay.status == "succeeded"
    assert replay.last_response.headers["Idempotent-Replayed"] == "true"
    totals = stripe_sandbox.ledger()["totals"]
    assert (totals["created"], totals["captured"]) == (1, 1)


def test_connection_reset_fails_before_any_work(stripe_client, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "connection_reset", "count": 1})

    with pytest.raises(stripe.APIConnectionError):
        create(stripe_client)

    assert stripe_sandbox.ledger()["totals"]["created"] == 0


def test_error_200_is_a_success_status_whose_body_is_an_error(stripe_client, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "error_200", "count": 1})

    answer = create(stripe_client)

    assert answer.last_response.code == 200
    assert "id" not in answer.to_dict()
    assert answer["error"]["type"] == "api_error"


def test_rps_limit_answers_429_past_the_rate(stripe_client, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "rps_limit", "rps": 5})

    statuses = []
    for _ in range(12):
        try:
            stripe_client.v1.payment_intents.list()
            statuses.append(200)
        except stripe.RateLimitError:
            statuses.append(429)

    assert statuses.count(429) >= 5
    assert statuses[0] == 200


def test_count_fires_exactly_n_times_and_path_scopes_it(stripe_client, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "http_503", "count": 2, "path": "/v1/refunds"})
    intent = create(stripe_client)  # another path: untouched

    outcomes = []
    for _ in range(3):
        try:
            stripe_client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 10})
            outcomes.append("ok")
        except stripe.APIError:
            outcomes.append("503")

    assert outcomes == ["503", "503", "ok"]


def test_a_seed_makes_a_probabilistic_fault_sequence_repeat(stripe_client, stripe_sandbox):
    def run() -> list[str]:
        stripe_sandbox.set_faults({"kind": "http_500", "probability": 0.5}, seed=42)
        results = []
        for _ in range(20):
            try:
                stripe_client.v1.payment_intents.list()
                results.append("ok")
            except stripe.APIError:
                results.append("500")
        return results

    first, second = run(), run()

    assert first == second
    assert 3 <= first.count("500") <= 17


def test_faults_are_listed_and_cleared_through_the_control_endpoint(stripe_client, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "http_503", "count": 1})
    described = stripe_sandbox.control("GET", "faults")

    stripe_sandbox.control("DELETE", "faults")

    assert described["faults"][0]["kind"] == "http_503"
    assert stripe_sandbox.control("GET", "faults")["faults"] == []
    assert create(stripe_client).status == "succeeded"


def test_webhook_duplicates_are_delivered_twice(stripe_client, stripe_sandbox, webhook_receiver):
    stripe_sandbox.register_webhook(webhook_receiver.url, secret="whsec_x")
    stripe_sandbox.set_faults({"kind": "webhook_duplicate", "count": 1})

    stripe_client.v1.payment_intents.create(params={"amount": 100, "currency": "eur"})

    deliveries = webhook_receiver.wait_for(2)
    assert deliveries[0].event["id"] == deliveries[1].event["id"]


def test_webhook_reorder_lets_a_later_event_arrive_first(stripe_client, stripe_sandbox, webhook_receiver):
    stripe_sandbox.register_webhook(webhook_receiver.url, secret="whsec_x")
    stripe_sandbox.set_faults({"kind": "webhook_reorder", "count": 1, "ms": 300})

    create(stripe_client)

    webhook_receiver.wait_for(3)
    assert webhook_receiver.types()[-1] == "payment_intent.created"


def test_webhook_delay_holds_deliveries_back(stripe_client, stripe_sandbox, webhook_receiver):
    stripe_sandbox.register_webhook(webhook_receiver.url, secret="whsec_x")
    stripe_sandbox.set_faults({"kind": "webhook_delay", "ms": 400})

    stripe_client.v1.payment_intents.create(params={"amount": 100, "currency": "eur"})
    time.sleep(0.2)

    assert webhook_receiver.deliveries == []
    webhook_receiver.wait_for(1)


def test_webhook_before_response_arrives_before_the_api_answers(stripe_client, stripe_sandbox, webhook_receiver):
    stripe_sandbox.register_webhook(webhook_receiver.url, secret="whsec_x")
    stripe_sandbox.set_faults({"kind": "webhook_before_response", "count": 1})

    intent = create(stripe_client)

    assert sorted(webhook_receiver.types()) == [
        "charge.succeeded",
        "payment_intent.created",
        "payment_intent.succeeded",
    ]
    assert webhook_receiver.deliveries[-1].event["data"]["object"]["id"] in (intent.id, intent.latest_charge)


def test_the_ledger_counts_what_the_provider_did_per_payment_intent(stripe_client, stripe_sandbox):
    charged = create(stripe_client, "a")
    create(stripe_client, "a")  # a replay: no second charge
    stripe_client.v1.refunds.create(params={"payment_intent": charged.id, "amount": 500})

    entry = stripe_sandbox.ledger()["payment_intents"][charged.id]

    assert entry == {
        "created": 1,
        "confirmed": 1,
        "charged": 1,
        "captured": 1,
        "amount_captured": 2000,
        "canceled": 0,
        "refunded": 1,
        "amount_refunded": 500,
        "metadata": {},
    }
    assert stripe_sandbox.ledger()["requests_per_idempotency_key"]["a"] == 2


def test_cli_fault_specs_parse_into_faults():
    assert parse_spec("http_503:p=0.2:path=/v1/payment_intents") == {
        "kind": "http_503",
        "probability": 0.2,
        "path": "/v1/payment_intents",
    }
    assert parse_spec("timeout_after_commit:count=1:ms=500:method=POST") == {
        "kind": "timeout_after_commit",
        "count": 1,
        "ms": 500,
        "method": "POST",
    }
    with pytest.raises(ValueError, match="unknown fault option"):
        parse_spec("http_503:colour=red")


def test_the_command_starts_the_sandbox_with_faults_and_a_webhook_endpoint(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "stripe_sandbox",
            "--port",
            "0",
            "--seed",
            "7",
            "--fault",
            "http_503:count=1",
            "--webhook-url",
            "http://127.0.0.1:9/hook",
            "--webhook-secret",
            "whsec_cli",
        ],
        cwd=paths.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = [process.stdout.readline() for _ in range(2)]
        url = next(line.split()[-4] for line in lines if "listening on" in line)
        faults = json.loads(urllib.request.urlopen(f"{url}/_sandbox/faults", timeout=5).read())  # noqa: S310
        health = json.loads(urllib.request.urlopen(f"{url}/_sandbox/health", timeout=5).read())  # noqa: S310
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)

    assert "webhooks -> http://127.0.0.1:9/hook" in "".join(lines)
    assert f"events {','.join(WEBHOOK_EVENT_TYPES)})" in "".join(lines)  # the command hands it our handled types
    assert health["api_version"] == settings.STRIPE_API_VERSION  # the command hands the sandbox our pin
    assert faults == {
        "seed": 7,
        "faults": [
            {
                "kind": "http_503",
                "probability": None,
                "count": 1,
                "path": None,
                "method": None,
                "ms": 0,
                "retry_after": 1,
                "rps": 0.0,
                "fired": 0,
            }
        ],
    }
    assert "Stripe sandbox stopped" in output


def test_webhook_drop_never_delivers_the_event_and_lists_it_as_not_delivered(
    stripe_client, stripe_sandbox, webhook_receiver
):
    stripe_sandbox.register_webhook(webhook_receiver.url, secret="whsec_x")
    stripe_sandbox.set_faults({"kind": "webhook_drop", "count": 1})

    dropped_intent = stripe_client.v1.payment_intents.create(params={"amount": 100, "currency": "eur"})
    stripe_client.v1.payment_intents.create(params={"amount": 200, "currency": "eur"})
    webhook_receiver.wait_for(1)
    time.sleep(0.3)  # past the fixture's retry base: a dropped event is never tried again

    undelivered = stripe_client.v1.events.list(params={"delivery_success": False})
    delivered = stripe_client.v1.events.list(params={"delivery_success": True})
    (dropped,) = undelivered.data
    assert (dropped.type, dropped.data.object.id) == ("payment_intent.created", dropped_intent.id)
    assert [d.event["id"] for d in webhook_receiver.deliveries] == [event.id for event in delivered.data]
    assert dropped.id not in {d.event["id"] for d in webhook_receiver.deliveries}


def test_webhook_drop_is_a_known_fault_kind_on_the_command_line():
    assert parse_spec("webhook_drop:count=2:path=/v1/refunds") == {
        "kind": "webhook_drop",
        "count": 2,
        "path": "/v1/refunds",
    }
