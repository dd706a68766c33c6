"""The client's address is django-ipware's answer, remembered per header values and settings."""

import pytest
from django.test import RequestFactory
from ipware.ip import get_client_ip

from config.client_address import client_address

ADDRESSES = ["127.0.0.1", "::ffff:10.0.0.7", "2001:db8::1", "10.0.0.1:80", " 1.2.3.4", "bogus", ""]
FORWARDED = [None, "203.0.113.9", "198.51.100.1, 203.0.113.9", "forged, 198.51.100.1, 203.0.113.9"]
PROXIED = {
    "AXES_IPWARE_META_PRECEDENCE_ORDER": ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"],
    "AXES_IPWARE_PROXY_COUNT": 1,
    "AXES_IPWARE_PROXY_ORDER": "left-most",
}


def ipware_answer(request, settings) -> str:
    """What client_address answered before it remembered anything: ipware asked on every request."""
    ip, _ = get_client_ip(
        request,
        proxy_order=settings.AXES_IPWARE_PROXY_ORDER,
        proxy_count=settings.AXES_IPWARE_PROXY_COUNT,
        request_header_order=settings.AXES_IPWARE_META_PRECEDENCE_ORDER,
    )
    return ip or request.META.get("REMOTE_ADDR", "")


@pytest.mark.parametrize("proxied", [False, True])
@pytest.mark.parametrize("forwarded", FORWARDED)
@pytest.mark.parametrize("remote_addr", ADDRESSES)
def test_the_address_is_ipwares_for_the_same_headers_and_settings(settings, remote_addr, forwarded, proxied):
    if proxied:
        for name, value in PROXIED.items():
            setattr(settings, name, value)
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    request = RequestFactory().get("/", REMOTE_ADDR=remote_addr, **headers)

    assert client_address(request) == client_address(request) == ipware_answer(request, settings)


def test_a_change_of_settings_is_not_answered_from_memory(settings):
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.1")
    direct = client_address(request)

    for name, value in PROXIED.items():
        setattr(settings, name, value)

    assert (direct, client_address(request)) == ("10.0.0.1", "203.0.113.9")


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "2001:db8::1", "2001:db8::ffff:0:7", "::ffff:192.0.2.1", "", "unknown", "999.1.1.1", "fe80::1%eth0"],
)
def test_a_remembered_address_key_is_the_one_the_address_gives(address):
    from config.client_address import address_key

    first, again = address_key(address), address_key(address)

    assert first == again == address_key.__wrapped__(address)
