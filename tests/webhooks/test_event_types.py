"""The event types our webhook endpoint subscribes to, and the backfill asks for: those a handler acts on."""

import re

from config.devstack import paths
from payments.gateway.stripe import EVENTS_LIST_MAX_TYPES
from webhooks.handlers import HANDLERS, WEBHOOK_EVENT_TYPES


def test_the_subscribed_types_are_exactly_the_handled_types_sorted():
    assert list(WEBHOOK_EVENT_TYPES) == sorted(HANDLERS)
    assert len(set(WEBHOOK_EVENT_TYPES)) == len(WEBHOOK_EVENT_TYPES)


def test_the_types_we_never_act_on_are_not_subscribed():
    assert "payment_intent.created" not in WEBHOOK_EVENT_TYPES
    assert "charge.succeeded" not in WEBHOOK_EVENT_TYPES
    assert "*" not in WEBHOOK_EVENT_TYPES


def test_the_provider_can_filter_its_event_list_on_all_of_them_at_once():
    assert 0 < len(WEBHOOK_EVENT_TYPES) <= EVENTS_LIST_MAX_TYPES


def test_the_readme_tells_operators_to_subscribe_to_exactly_these_types():
    readme = (paths.BASE_DIR / "README.md").read_text()
    section = readme.split("## Running against real Stripe", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", section, flags=re.S | re.M)
    (listed,) = [body for language, body in blocks if not language]  # the one block that is not a command

    assert sorted(name.strip() for name in listed.replace("\n", " ").split(",")) == list(WEBHOOK_EVENT_TYPES)
