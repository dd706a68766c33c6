"""Read paths of the payments domain, always scoped to the API client that asks."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from payments.errors import PaymentNotFound, RefundNotFound
from payments.models import ApiClient, Payment, Refund
from payments.models.base import public_id_well_formed


# `<prefix>_` + a ULID in Crockford base32: anything else cannot exist, so it is not even looked up
# (and a NUL byte in a URL never reaches PostgreSQL, which would refuse it).
def _well_formed(public_id: str, prefix: str) -> bool:
    return public_id_well_formed(public_id, prefix=prefix)


# Public statuses that cover several internal ones (see Payment.PUBLIC_STATUS).
_INTERNAL_STATUSES = {}
for _internal, _public in Payment.PUBLIC_STATUS.items():
    _INTERNAL_STATUSES.setdefault(_public, []).append(_internal)


def payment_get(*, client: ApiClient, payment_id: str) -> Payment:
    """
    Return the client's payment by public id.

    :raises PaymentNotFound: if it does not exist or belongs to another client (no difference shown)
    """
    if not _well_formed(payment_id, "pay"):
        raise PaymentNotFound(f"No such payment: '{payment_id[:40]}'", param="id")
    try:
        return Payment.objects.get(client=client, public_id=payment_id)
    except Payment.DoesNotExist:
        raise PaymentNotFound(f"No such payment: '{payment_id}'", param="id") from None


def payment_get_for_update(*, client: ApiClient | None, payment_id: str) -> Payment:
    """
    Lock and return a payment (lock order: client, payment, refund). `client=None` is for workers/admin.

    :raises PaymentNotFound: if it does not exist or belongs to another client
    """
    if not _well_formed(payment_id, "pay"):
        raise PaymentNotFound(f"No such payment: '{payment_id[:40]}'", param="id")
    queryset = Payment.objects.select_for_update()
    if client is not None:
        queryset = queryset.filter(client=client)
    try:
        return queryset.get(public_id=payment_id)
    except Payment.DoesNotExist:
        raise PaymentNotFound(f"No such payment: '{payment_id}'", param="id") from None


def payment_list(
    *,
    client: ApiClient,
    status: str | None = None,
    created_gte: datetime | None = None,
    created_lte: datetime | None = None,
    starting_after: str | None = None,
    limit: int = 10,
) -> tuple[list[Payment], bool]:
    """
    Return one page of the client's payments, newest first, and whether more follow.

    :raises PaymentNotFound: if `starting_after` names no payment of this client
    """
    # Newest first by creation time, as Stripe lists, with the id breaking ties: the order of the
    # `payment_client_created` index, so a `created` bound is a range of it and a page reads a page of
    # rows however many the client has (an id order walked rows outside the bound one by one).
    queryset: QuerySet[Payment] = Payment.objects.filter(client=client).order_by("-created_at", "-id")
    if status is not None:
        queryset = queryset.filter(status__in=_INTERNAL_STATUSES[status])
    if created_gte is not None:
        queryset = queryset.filter(created_at__gte=created_gte)
    if created_lte is not None:
        # `created` is shown in whole seconds: a bound of second X takes in all of it (to X.999999,
        # PostgreSQL's resolution), so a payment is found by its own `created` as either bound.
        queryset = queryset.filter(created_at__lte=created_lte.replace(microsecond=999_999))
    if starting_after is not None:
        if not _well_formed(starting_after, "pay"):
            raise PaymentNotFound(f"No such payment: '{starting_after[:40]}'", param="starting_after")
        cursor = Payment.objects.filter(client=client, public_id=starting_after).values_list("created_at", "id").first()
        if cursor is None:
            raise PaymentNotFound(f"No such payment: '{starting_after}'", param="starting_after")
        # After (created_at, id) in the order above: a range of the index, less the cursor's equals.
        created_at, pk = cursor
        queryset = queryset.filter(created_at__lte=created_at).exclude(created_at=created_at, id__gte=pk)
    page = list(queryset[: limit + 1])
    return page[:limit], len(page) > limit


def refund_get(*, client: ApiClient, refund_id: str) -> Refund:
    """
    Return the client's refund by public id, with its payment.

    :raises RefundNotFound: if it does not exist or belongs to another client
    """
    if not _well_formed(refund_id, "re"):
        raise RefundNotFound(f"No such refund: '{refund_id[:40]}'", param="id")
    try:
        return Refund.objects.select_related("payment").get(payment__client=client, public_id=refund_id)
    except Refund.DoesNotExist:
        raise RefundNotFound(f"No such refund: '{refund_id}'", param="id") from None


# --- lookups by the provider's ids, for webhooks and the janitor (no client scope) ---------------
def payment_find(*, payment_id: str = "", provider: str = "", provider_payment_id: str = "") -> Payment | None:
    """Return the payment with our public id, or the one bound to the provider's intent id; None if none."""
    if provider_payment_id:
        return Payment.objects.filter(provider=provider, provider_payment_id=provider_payment_id).first()
    if _well_formed(payment_id, "pay"):
        return Payment.objects.filter(public_id=payment_id).first()
    return None


def refund_find(*, refund_id: str = "", provider_refund_id: str = "") -> Refund | None:
    """Return the refund with our public id, or the one bound to the provider's refund id, with its payment."""
    queryset = Refund.objects.select_related("payment")
    if provider_refund_id:
        return queryset.filter(provider_refund_id=provider_refund_id).first()
    if _well_formed(refund_id, "re"):
        return queryset.filter(public_id=refund_id).first()
    return None


def refund_ids_pending_at_provider(*, payment_id: str) -> list[tuple[str, str]]:
    """Return (refund id, provider refund id) of the payment's refunds the provider has and has not settled."""
    return list(
        Refund.objects.filter(
            payment__public_id=payment_id, status=Refund.Status.PENDING, provider_refund_id__isnull=False
        )
        .order_by("id")
        .values_list("public_id", "provider_refund_id")
    )
