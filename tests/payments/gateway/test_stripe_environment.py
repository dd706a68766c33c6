"""The gateway's HTTP session reads the proxy environment once per origin, and answers as requests does."""

import socket

import pytest
import requests

from payments.gateway.base import ProviderError
from payments.gateway.stripe import _EnvironmentOnceSession

URLS = [
    "https://api.stripe.com/v1/payment_intents",
    "https://api.stripe.com/v1/payment_intents/pi_1/capture?expand[]=latest_charge",
    "http://127.0.0.1:12111/v1/events",
    "https://files.stripe.com/v1/files",
    "https://internal.example.com:8443/v1/x",
]


@pytest.fixture
def proxy_environment(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("http_proxy", "http://plain-proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "files.stripe.com,.example.com")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("verify", [True, None, "/sdk/ca-certificates.crt", False])
@pytest.mark.parametrize("proxies", [None, {}, {"https": "http://sdk-proxy:1"}, {"no_proxy": "api.stripe.com"}])
def test_the_merged_settings_are_requests_own_on_the_first_request_and_every_later_one(
    proxy_environment, url, verify, proxies
):
    ours = _EnvironmentOnceSession()
    expected = requests.Session().merge_environment_settings(
        url, None if proxies is None else dict(proxies), None, verify, None
    )

    first = ours.merge_environment_settings(url, dict(proxies) if proxies is not None else None, None, verify, None)
    again = ours.merge_environment_settings(url, dict(proxies) if proxies is not None else None, None, verify, None)

    assert first == expected
    assert again == expected


def test_the_environment_is_read_once_per_origin_and_answers_are_not_shared_mutable(proxy_environment, monkeypatch):
    reads = []
    read = requests.sessions.get_environ_proxies

    def counting(url, no_proxy=None):
        reads.append(url)
        return read(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    session = _EnvironmentOnceSession()

    first = session.merge_environment_settings(URLS[0], {}, None, True, None)
    first["proxies"]["https"] = "changed by a caller"
    second = session.merge_environment_settings(URLS[1], {}, None, True, None)  # same origin
    session.merge_environment_settings(URLS[2], {}, None, True, None)  # another origin

    assert reads == [URLS[0], URLS[2]]
    assert second["proxies"]["https"] == "http://proxy.internal:3128"


def test_the_gateway_sends_through_that_session(make_gateway, stripe_sandbox, monkeypatch):
    merged = []
    merge = _EnvironmentOnceSession.merge_environment_settings

    def recording(self, url, *args):
        merged.append(url)
        return merge(self, url, *args)

    monkeypatch.setattr(_EnvironmentOnceSession, "merge_environment_settings", recording)

    make_gateway(stripe_sandbox.url).events_list(limit=1)

    assert merged and merged[0].startswith(stripe_sandbox.url)


def test_a_proxy_in_the_environment_is_still_used_by_the_gateway(make_gateway, stripe_sandbox, monkeypatch):
    with socket.socket() as sock:  # a port nothing listens on: the proxy is down
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{dead}")

    with pytest.raises(ProviderError):  # without the proxy the sandbox would answer
        make_gateway(stripe_sandbox.url).events_list(limit=1)
