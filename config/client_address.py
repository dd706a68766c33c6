"""
The client's address, as this deployment can know it: one answer for every limiter (API-key failures,
admin login lockout), so that a proxy or an IPv6 subscriber is treated the same way everywhere.

With no proxy in front (TRUSTED_PROXY_COUNT=0) it is the peer's address, REMOTE_ADDR: X-Forwarded-For
is whatever a client wrote, and believing it would let one attacker change address on every try. Behind
TRUSTED_PROXY_COUNT proxies that each append to X-Forwarded-For, it is the address the first of them
saw, found by django-ipware with the AXES_IPWARE_* settings (config/settings/base.py explains them),
so the admin lockout and the API limiter agree on who the client is.

Limiters count an IPv6 client by its /64 (one subscriber's, as a rule: an attacker holding a /64 must
not get 2^64 fresh addresses to guess from).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from types import SimpleNamespace

from django.conf import settings
from django.http import HttpRequest
from ipware.ip import get_client_ip

UNKNOWN = "unknown"


def client_address(request: HttpRequest) -> str:
    """Return the client's IP address ("" if none can be told)."""
    order = tuple(settings.AXES_IPWARE_META_PRECEDENCE_ORDER)
    meta = request.META
    return _address(
        tuple(meta.get(name) for name in order),
        meta.get("REMOTE_ADDR", ""),
        order,
        settings.AXES_IPWARE_PROXY_ORDER,
        settings.AXES_IPWARE_PROXY_COUNT,
    )


@lru_cache(maxsize=4096)
def _address(values: tuple, remote_addr: str, order: tuple, proxy_order: str, proxy_count: int | None) -> str:
    """django-ipware's answer for these header values, remembered: it is a function of them and the settings
    passed (all in the key), and took a twentieth of an API request's CPU (issue 11). A client that sends a
    new X-Forwarded-For on every request only pushes older entries out."""
    meta = {name: value for name, value in zip(order, values, strict=True) if value is not None}
    ip, _routable = get_client_ip(
        SimpleNamespace(META=meta),
        proxy_order=proxy_order,
        proxy_count=proxy_count,
        request_header_order=list(order),
    )
    return ip or remote_addr


@lru_cache(maxsize=4096)
def address_key(address: str) -> str:
    """The address as a limiter counts it: IPv4 as is, IPv6 by its /64 network address, else "unknown".

    Remembered, as `_address` is: parsing the address cost more than the rest of the limiter's key (issue 11).
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return UNKNOWN
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, 64), strict=False).network_address)
    return str(getattr(ip, "ipv4_mapped", None) or ip)


def client_address_key(request: HttpRequest) -> str | None:
    """The client's address as limiters count it, None if it cannot be told (django-axes' AXES_CLIENT_IP_CALLABLE:
    it stores the address in an IP field, and a request made in code, e.g. force_login, has none)."""
    key = address_key(client_address(request))
    return None if key == UNKNOWN else key
