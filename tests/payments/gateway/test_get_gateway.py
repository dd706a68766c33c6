"""get_gateway(): one StripeGateway per process, built from settings; the SDK's own retries off."""

import multiprocessing

import pytest
import stripe

from payments.gateway.base import ProviderAuthError, ProviderServerError
from payments.gateway.stripe import StripeGateway, get_gateway


@pytest.fixture
def configured(settings, stripe_sandbox):
    settings.STRIPE_SECRET_KEY = "sk_test_from_settings"
    settings.STRIPE_API_BASE = stripe_sandbox.url
    settings.STRIPE_TIMEOUT_SECONDS = 4.0
    settings.STRIPE_CONNECT_TIMEOUT_SECONDS = 0.5
    get_gateway.cache_clear()
    yield settings
    get_gateway.cache_clear()


def test_get_gateway_builds_one_stripe_gateway_from_settings(configured):
    gateway = get_gateway()

    assert isinstance(gateway, StripeGateway)
    assert get_gateway() is gateway
    assert gateway.timeout == (0.5, 4.0)  # (connect, read): "nothing sent" is told apart from "no answer"


def test_every_request_carries_the_pinned_api_version_and_our_key(configured, monkeypatch):
    sent = []
    send = stripe.RequestsClient.request

    def recording(self, method, url, headers, post_data=None):
        sent.append(headers)
        return send(self, method, url, headers, post_data)

    monkeypatch.setattr(stripe.RequestsClient, "request", recording)

    get_gateway().events_list(limit=1)

    assert sent[0]["Stripe-Version"] == configured.STRIPE_API_VERSION
    assert sent[0]["Authorization"] == "Bearer sk_test_from_settings"


def test_the_sdk_never_retries_on_its_own(configured, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "http_503", "count": 5})

    with pytest.raises(ProviderServerError):
        get_gateway().events_list()

    (fault,) = stripe_sandbox.control("GET", "faults")["faults"]
    assert fault["fired"] == 1  # one call, one request: our outbox policy owns retries


def test_get_gateway_without_a_secret_key_is_an_auth_error(settings):
    settings.STRIPE_SECRET_KEY = ""
    get_gateway.cache_clear()

    try:
        with pytest.raises(ProviderAuthError):
            get_gateway()
    finally:
        get_gateway.cache_clear()


def test_a_forked_child_builds_its_own_gateway_instead_of_sharing_the_parents_sockets(configured):
    get_gateway().events_list(limit=1)  # the parent now holds a pooled connection
    context = multiprocessing.get_context("fork")
    cached_in_child = context.Queue()

    child = context.Process(target=lambda: cached_in_child.put(get_gateway.cache_info().currsize))
    child.start()
    child.join(timeout=10)

    assert child.exitcode == 0
    assert cached_in_child.get(timeout=1) == 0
    assert get_gateway.cache_info().currsize == 1
