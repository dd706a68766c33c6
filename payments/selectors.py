"""Read paths of the payments domain, always scoped to the API client that asks."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connections, models, router
from django.db.models import QuerySet
from django.db.models.query import MAX_GET_RESULTS
from django.db.transaction import TransactionManagementError

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


# --- reads compiled once (issue 11) ---------------------------------------------------------------
# Django builds and compiles a query's SQL on every call: for a GET by id, about half the request's
# CPU. A read below asks the ORM for its SQL once per shape (which filters are present), built with
# stand-in values, then runs that SQL with each call's values and builds instances as the ORM's
# ModelIterable does (the same converters, `Model.from_db`). The ORM is asked twice, with two sets of
# stand-ins: if the SQL changes, or a parameter differs other than where a stand-in stands, the shape
# is not compiled and the ORM runs it every time (tests/payments/test_compiled_reads.py holds both
# paths to the same statement and the same instances).
_STAND_INS = (
    {
        "client_id": -7_301,
        "public_id": "pay_\x00stand-in-one",
        "created_gte": datetime(1901, 1, 1, 0, 0, 1, 11, tzinfo=UTC),
        "created_lte": datetime(1901, 1, 1, 0, 0, 2, 12, tzinfo=UTC),
        "cursor_created_at": datetime(1901, 1, 1, 0, 0, 3, 13, tzinfo=UTC),
        "cursor_id": -7_302,
        "provider": "\x00stand-in-one",
        "provider_payment_id": "pi_\x00stand-in-one",
    },
    {
        "client_id": -8_301,
        "public_id": "pay_\x00stand-in-two",
        "created_gte": datetime(1902, 1, 1, 0, 0, 1, 21, tzinfo=UTC),
        "created_lte": datetime(1902, 1, 1, 0, 0, 2, 22, tzinfo=UTC),
        "cursor_created_at": datetime(1902, 1, 1, 0, 0, 3, 23, tzinfo=UTC),
        "cursor_id": -8_302,
        "provider": "\x00stand-in-two",
        "provider_payment_id": "pi_\x00stand-in-two",
    },
)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[object, ...]  # the fixed ones; those at `slots` are replaced by each call's values
    slots: tuple[tuple[int, str], ...]
    init_list: tuple[str, ...]  # the attnames of the selected columns, as from_db takes them
    converters: tuple[tuple[int, tuple[Callable, ...], object], ...]  # (column, field converters, expression)
    for_update: bool  # SELECT … FOR UPDATE: refused outside a transaction, as the ORM refuses it


class _CompiledRead:
    """One read of `model`: `build(shape, values)` is the ORM queryset it runs, compiled once per shape."""

    def __init__(
        self,
        model: type[models.Model],
        build: Callable[[Hashable, dict], QuerySet],
        fields: dict,
        *,
        for_write: bool = False,
    ) -> None:
        self.model = model
        self.for_write = for_write  # a locking read runs where the ORM writes (its `select_for_update` does)
        self.build = build
        self.fields = fields  # value name -> the field that prepares it, as the lookup does
        self.compiled: dict[tuple[str, Hashable, tuple[str, ...]], _Compiled | None] = {}

    def run(self, shape: Hashable, **values: object) -> list[models.Model]:
        alias = router.db_for_write(self.model) if self.for_write else router.db_for_read(self.model)
        key = (alias, shape, tuple(values))  # which values are given is part of the shape
        if key not in self.compiled:
            self.compiled[key] = self.compile(alias, shape, set(values))
        compiled = self.compiled[key]
        if compiled is None:
            return list(self.build(shape, values).using(alias))
        connection = connections[alias]
        if compiled.for_update and connection.get_autocommit() and connection.features.supports_transactions:
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = list(compiled.params)
        for index, name in compiled.slots:
            params[index] = self.fields[name].get_db_prep_value(values[name], connection, prepared=False)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        instances = []
        for row in rows:
            if compiled.converters:
                row = list(row)
                for index, functions, expression in compiled.converters:
                    value = row[index]
                    for function in functions:
                        value = function(value, expression, connection)
                    row[index] = value
            instances.append(self.model.from_db(alias, compiled.init_list, row))
        return instances

    def compile(self, alias: str, shape: Hashable, names: set[str]) -> _Compiled | None:
        """The shape's SQL and where each value goes; None if it cannot be compiled once (the ORM runs it)."""
        connection = connections[alias]
        compiled = []
        for stand_ins in _STAND_INS:
            queryset = self.build(shape, {name: stand_ins[name] for name in names}).using(alias)
            compiler = queryset.query.get_compiler(alias)
            sql, params = compiler.as_sql()
            compiled.append((compiler, sql, tuple(params)))
        (compiler, sql, params), (_, other_sql, other_params) = compiled
        if sql != other_sql or len(params) != len(other_params):
            return None
        slots = []
        for index, (one, two) in enumerate(zip(params, other_params, strict=True)):
            if one == two:
                continue
            name = next((name for name in names if (_STAND_INS[0][name], _STAND_INS[1][name]) == (one, two)), None)
            if name is None:
                return None
            slots.append((index, name))
        klass_info = compiler.klass_info
        if (
            {name for _, name in slots} != names
            or compiler.annotation_col_map
            or klass_info.get("related_klass_infos")
            or klass_info["select_fields"] != list(range(len(compiler.select)))
        ):
            return None
        expressions = [column[0] for column in compiler.select]
        if any(connection.ops.get_db_converters(expression) for expression in expressions):
            return None  # a backend's converters belong to one thread's connection: not kept across calls
        return _Compiled(
            sql=sql,
            params=params,
            slots=tuple(slots),
            init_list=tuple(expression.target.attname for expression in expressions),
            converters=tuple(
                (index, tuple(functions), expression)
                for index, (functions, expression) in compiler.get_converters(expressions).items()
            ),
            for_update=compiler.query.select_for_update and connection.features.has_select_for_update,
        )


_PAYMENT_FIELDS = {
    "client_id": Payment._meta.get_field("client").target_field,
    "public_id": Payment._meta.get_field("public_id"),
    "created_gte": Payment._meta.get_field("created_at"),
    "created_lte": Payment._meta.get_field("created_at"),
    "cursor_created_at": Payment._meta.get_field("created_at"),
    "cursor_id": Payment._meta.pk,
    "provider": Payment._meta.get_field("provider"),
    "provider_payment_id": Payment._meta.get_field("provider_payment_id"),
}

# What `Payment.objects.get(client=client, public_id=payment_id)` runs.
_payment_by_id = _CompiledRead(
    Payment,
    lambda shape, values: Payment.objects.filter(
        client_id=values["client_id"], public_id=values["public_id"]
    ).order_by()[:MAX_GET_RESULTS],
    _PAYMENT_FIELDS,
)


# What `Payment.objects.select_for_update()[.filter(client=client)].get(public_id=payment_id)` runs: the
# same statement, so the same lock (FOR UPDATE of the payment's row alone) taken in the same order.
_payment_locked = _CompiledRead(
    Payment,
    lambda shape, values: (
        Payment.objects.select_for_update()
        .filter(**({"client_id": values["client_id"]} if "client_id" in values else {}))
        .filter(public_id=values["public_id"])
        .order_by()[:MAX_GET_RESULTS]
    ),
    _PAYMENT_FIELDS,
    for_write=True,
)


def _payment_page(shape: tuple[str | None, int], values: dict) -> QuerySet[Payment]:
    """One page of `payment_list`, and one more row: its shape is the status asked for and the limit."""
    status, limit = shape
    # Newest first by creation time, as Stripe lists, with the id breaking ties: the order of the
    # `payment_client_created` index, so a `created` bound is a range of it and a page reads a page of
    # rows however many the client has (an id order walked rows outside the bound one by one).
    queryset = Payment.objects.filter(client_id=values["client_id"]).order_by("-created_at", "-id")
    if status is not None:
        queryset = queryset.filter(status__in=_INTERNAL_STATUSES[status])
    if "created_gte" in values:
        queryset = queryset.filter(created_at__gte=values["created_gte"])
    if "created_lte" in values:
        queryset = queryset.filter(created_at__lte=values["created_lte"])
    if "cursor_id" in values:
        # After (created_at, id) in the order above: a range of the index, less the cursor's equals.
        created_at, pk = values["cursor_created_at"], values["cursor_id"]
        queryset = queryset.filter(created_at__lte=created_at).exclude(created_at=created_at, id__gte=pk)
    return queryset[: limit + 1]


_payment_pages = _CompiledRead(Payment, _payment_page, _PAYMENT_FIELDS)


def payment_get(*, client: ApiClient, payment_id: str) -> Payment:
    """
    Return the client's payment by public id.

    :raises PaymentNotFound: if it does not exist or belongs to another client (no difference shown)
    """
    if not _well_formed(payment_id, "pay"):
        raise PaymentNotFound(f"No such payment: '{payment_id[:40]}'", param="id")
    payments = _payment_by_id.run(None, client_id=client.pk, public_id=payment_id)
    if not payments:
        raise PaymentNotFound(f"No such payment: '{payment_id}'", param="id")
    (payment,) = payments  # `public_id` is unique
    return payment


def payment_get_for_update(*, client: ApiClient | None, payment_id: str) -> Payment:
    """
    Lock and return a payment (lock order: client, payment, refund). `client=None` is for workers/admin.

    :raises PaymentNotFound: if it does not exist or belongs to another client
    """
    if not _well_formed(payment_id, "pay"):
        raise PaymentNotFound(f"No such payment: '{payment_id[:40]}'", param="id")
    values = {"public_id": payment_id} if client is None else {"client_id": client.pk, "public_id": payment_id}
    payments = _payment_locked.run(None, **values)
    if not payments:
        raise PaymentNotFound(f"No such payment: '{payment_id}'", param="id")
    (payment,) = payments  # `public_id` is unique
    return payment


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
    values: dict[str, object] = {"client_id": client.pk}
    if created_gte is not None:
        values["created_gte"] = created_gte
    if created_lte is not None:
        # `created` is shown in whole seconds: a bound of second X takes in all of it (to X.999999,
        # PostgreSQL's resolution), so a payment is found by its own `created` as either bound.
        values["created_lte"] = created_lte.replace(microsecond=999_999)
    if starting_after is not None:
        if not _well_formed(starting_after, "pay"):
            raise PaymentNotFound(f"No such payment: '{starting_after[:40]}'", param="starting_after")
        cursor = Payment.objects.filter(client=client, public_id=starting_after).values_list("created_at", "id").first()
        if cursor is None:
            raise PaymentNotFound(f"No such payment: '{starting_after}'", param="starting_after")
        values["cursor_created_at"], values["cursor_id"] = cursor
    page = _payment_pages.run((status, limit), **values)
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
def _payment_found(shape: None, values: dict) -> QuerySet[Payment]:
    """What payment_find's `.first()` runs: by the provider's intent id, or else by our public id."""
    if "provider_payment_id" in values:
        intent = {"provider": values["provider"], "provider_payment_id": values["provider_payment_id"]}
        queryset = Payment.objects.filter(**intent)
    else:
        queryset = Payment.objects.filter(public_id=values["public_id"])
    return (queryset if queryset.ordered else queryset.order_by("pk"))[:1]  # as `QuerySet.first()` orders


# Each webhook task finds its payment so (a third of the task's CPU was the ORM building this read).
_payment_finds = _CompiledRead(Payment, _payment_found, _PAYMENT_FIELDS)


def payment_find(*, payment_id: str = "", provider: str = "", provider_payment_id: str = "") -> Payment | None:
    """Return the payment with our public id, or the one bound to the provider's intent id; None if none."""
    if provider_payment_id:
        found = _payment_finds.run(None, provider=provider, provider_payment_id=provider_payment_id)
    elif _well_formed(payment_id, "pay"):
        found = _payment_finds.run(None, public_id=payment_id)
    else:
        return None
    return found[0] if found else None


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
