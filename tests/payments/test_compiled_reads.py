"""
The reads compiled once (payments/selectors.py, issue 11) against the ORM queries they stand for:
the same statement sent to PostgreSQL, the same instances field for field (JSON, datetimes and their
zones, django-fsm's recorded initial state), the same not-found answers.
"""

from datetime import UTC, datetime, timedelta

import django_fsm
import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from payments import selectors
from payments.errors import PaymentNotFound
from payments.models import Payment
from payments.selectors import (
    _CompiledRead,
    _payment_by_id,
    _payment_finds,
    _payment_locked,
    _payment_pages,
    payment_find,
    payment_get,
    payment_get_for_update,
    payment_list,
)
from tests.factories import ApiClientFactory, PaymentFactory, RefundFactory, payment_with_status

pytestmark = pytest.mark.django_db


def _everything(instance) -> dict:
    """Every attribute the instance carries, with its type and repr (a tz or a key order differing shows)."""
    state = instance._state
    return {
        **{name: (type(value), repr(value)) for name, value in vars(instance).items() if name != "_state"},
        "_state": (state.adding, state.db, dict(state.fields_cache)),
    }


def _statements(call) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        result = call()
    return result, [query["sql"] for query in queries.captured_queries]


@pytest.fixture
def rich_payment(merchant) -> Payment:
    """A payment with every kind of column filled: nested JSON, datetimes, NULLs and not."""
    payment = payment_with_status(Payment.Status.REQUIRES_CAPTURE, client=merchant)
    Payment.objects.filter(pk=payment.pk).update(
        metadata={"z": "last", "a": {"nested": [1, 2.5, None, True]}, "é": "ünïcode"},
        next_action={"type": "redirect_to_url", "redirect_to_url": {"url": "https://example.test/3ds"}},
        amount_to_capture=1500,
        provider_payment_id="pi_123",
        flagged_at=datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC),
        flag_reason="looked at",
    )
    return Payment.objects.get(pk=payment.pk)


def test_payment_get_is_the_orms_get_statement_and_instance(merchant, rich_payment):
    def orm():
        return Payment.objects.get(client=merchant, public_id=rich_payment.public_id)

    expected, expected_sql = _statements(orm)
    payment, sql = _statements(lambda: payment_get(client=merchant, payment_id=rich_payment.public_id))

    assert sql == expected_sql
    assert _everything(payment) == _everything(expected)
    assert payment.metadata == {"z": "last", "a": {"nested": [1, 2.5, None, True]}, "é": "ünïcode"}
    assert list(payment.metadata) == ["a", "z", "é"]  # as jsonb stores it, as the ORM read it
    assert payment.flagged_at == datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)
    assert _payment_by_id.compiled and None not in _payment_by_id.compiled.values()  # not the ORM fallback


def test_payment_get_of_another_clients_or_no_payment_is_not_found_as_before(merchant, rich_payment):
    someone_else = ApiClientFactory(name="someone-else")
    unknown = "pay_01ARZ3NDEKTSV4RRFFQ69G5FAV"

    with pytest.raises(PaymentNotFound) as foreign:
        payment_get(client=someone_else, payment_id=rich_payment.public_id)
    with pytest.raises(PaymentNotFound) as missing:
        payment_get(client=merchant, payment_id=unknown)

    assert str(foreign.value) == f"No such payment: '{rich_payment.public_id}'"
    assert str(missing.value) == f"No such payment: '{unknown}'"
    assert foreign.value.param == missing.value.param == "id"


def test_a_payment_read_compiled_once_still_guards_its_transitions(merchant, rich_payment):
    payment = payment_get(client=merchant, payment_id=rich_payment.public_id)
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.CANCELED)  # someone else, meanwhile

    payment.request_capture(amount=1000)
    with pytest.raises(django_fsm.ConcurrentTransition):
        payment.save()


def _orm_page(*, client, status=None, created_gte=None, created_lte=None, starting_after=None, limit=10):
    """payment_list's query as the ORM built it before it was compiled once (the reference)."""
    queryset = Payment.objects.filter(client=client).order_by("-created_at", "-id")
    if status is not None:
        queryset = queryset.filter(status__in=selectors._INTERNAL_STATUSES[status])
    if created_gte is not None:
        queryset = queryset.filter(created_at__gte=created_gte)
    if created_lte is not None:
        queryset = queryset.filter(created_at__lte=created_lte.replace(microsecond=999_999))
    if starting_after is not None:
        cursor = Payment.objects.filter(client=client, public_id=starting_after).values_list("created_at", "id").first()
        created_at, pk = cursor
        queryset = queryset.filter(created_at__lte=created_at).exclude(created_at=created_at, id__gte=pk)
    page = list(queryset[: limit + 1])
    return page[:limit], len(page) > limit


@pytest.mark.parametrize("status", [None, "processing", "requires_capture", "succeeded"])
@pytest.mark.parametrize("bounds", [(), ("gte",), ("lte",), ("gte", "lte")])
@pytest.mark.parametrize("after", [False, True])
@pytest.mark.parametrize("limit", [1, 3, 100])
def test_payment_list_is_the_orms_statement_and_instances(merchant, status, bounds, after, limit):
    PaymentFactory(client=ApiClientFactory(name="other"))  # never listed
    statuses = [Payment.Status.PROCESSING, Payment.Status.CAPTURE_REQUESTED, Payment.Status.REQUIRES_CAPTURE]
    payments = [payment_with_status(statuses[n % 3], client=merchant) for n in range(6)]
    payments += [PaymentFactory(client=merchant) for _ in range(2)]
    base = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    for n, payment in enumerate(payments):  # two share each second, so ties are broken by id
        Payment.objects.filter(pk=payment.pk).update(created_at=base + timedelta(seconds=n // 2))
    filters = {"status": status, "limit": limit}
    if "gte" in bounds:
        filters["created_gte"] = base + timedelta(seconds=1)
    if "lte" in bounds:
        filters["created_lte"] = base + timedelta(seconds=3)
    if after:
        filters["starting_after"] = payments[5].public_id

    (expected, expected_more), expected_sql = _statements(lambda: _orm_page(client=merchant, **filters))
    (page, more), sql = _statements(lambda: payment_list(client=merchant, **filters))

    assert sql == expected_sql
    assert more == expected_more
    assert [_everything(payment) for payment in page] == [_everything(payment) for payment in expected]


def test_payment_list_compiles_each_shape_once(merchant):
    PaymentFactory(client=merchant)
    _payment_pages.compiled.clear()

    for _ in range(3):
        payment_list(client=merchant, limit=10)
        payment_list(client=merchant, limit=10, created_gte=datetime(2020, 1, 1, tzinfo=UTC))

    assert len(_payment_pages.compiled) == 2
    assert None not in _payment_pages.compiled.values()


def test_a_query_whose_sql_depends_on_its_values_is_left_to_the_orm(merchant, rich_payment):
    # A parameter that is not one of the values (here: chosen from them) cannot be compiled once.
    read = _CompiledRead(
        Payment,
        lambda shape, values: Payment.objects.filter(
            client_id=values["client_id"], amount__gte=abs(values["client_id"]) // 1000
        ),
        selectors._PAYMENT_FIELDS,
    )

    assert [payment.pk for payment in read.run(None, client_id=merchant.pk)] == [rich_payment.pk]
    assert list(read.compiled.values()) == [None]


@pytest.mark.parametrize("make", [PaymentFactory, RefundFactory])
def test_state_fields_cached_per_class_are_django_fsms(make):
    instance = make()

    assert instance.state_fields == tuple(django_fsm.ConcurrentTransitionMixin.state_fields.fget(instance))
    assert [field.name for field in instance.state_fields] == ["status"]


@pytest.mark.parametrize("scoped", [True, False])
def test_payment_get_for_update_is_the_orms_locking_statement_and_instance(merchant, rich_payment, scoped):
    def orm():
        queryset = Payment.objects.select_for_update()
        if scoped:
            queryset = queryset.filter(client=merchant)
        return queryset.get(public_id=rich_payment.public_id)

    client = merchant if scoped else None
    expected, expected_sql = _statements(orm)
    payment, sql = _statements(lambda: payment_get_for_update(client=client, payment_id=rich_payment.public_id))

    assert sql == expected_sql
    assert sql[0].endswith("FOR UPDATE")
    assert _everything(payment) == _everything(expected)
    assert None not in _payment_locked.compiled.values()


def test_payment_get_for_update_of_another_clients_payment_is_not_found(rich_payment):
    with pytest.raises(PaymentNotFound) as foreign:
        payment_get_for_update(client=ApiClientFactory(name="someone-else"), payment_id=rich_payment.public_id)

    assert str(foreign.value) == f"No such payment: '{rich_payment.public_id}'"


@pytest.mark.django_db(transaction=True)
def test_payment_get_for_update_outside_a_transaction_is_refused_as_the_orm_refuses_it():
    payment = PaymentFactory()
    with transaction.atomic():  # compiled (if not yet) inside a transaction
        payment_get_for_update(client=None, payment_id=payment.public_id)

    with pytest.raises(TransactionManagementError) as orm:
        Payment.objects.select_for_update().get(public_id=payment.public_id)
    with pytest.raises(TransactionManagementError) as compiled:
        payment_get_for_update(client=None, payment_id=payment.public_id)

    assert str(compiled.value) == str(orm.value)


def _orm_find(*, payment_id: str = "", provider: str = "", provider_payment_id: str = "") -> Payment | None:
    """payment_find as the ORM ran it before it was compiled once (the reference)."""
    if provider_payment_id:
        return Payment.objects.filter(provider=provider, provider_payment_id=provider_payment_id).first()
    if selectors._well_formed(payment_id, "pay"):
        return Payment.objects.filter(public_id=payment_id).first()
    return None


@pytest.mark.parametrize(
    "lookup",
    [
        pytest.param(lambda payment: {"provider": "stripe", "provider_payment_id": "pi_123"}, id="by-intent"),
        pytest.param(lambda payment: {"payment_id": payment.public_id}, id="by-public-id"),
        pytest.param(lambda payment: {"provider": "other", "provider_payment_id": "pi_123"}, id="other-provider"),
        pytest.param(lambda payment: {"provider": "stripe", "provider_payment_id": "pi_none"}, id="unknown-intent"),
        pytest.param(lambda payment: {"payment_id": "pay_01ARZ3NDEKTSV4RRFFQ69G5FAV"}, id="unknown-public-id"),
        pytest.param(
            lambda payment: {"payment_id": payment.public_id, "provider": "stripe", "provider_payment_id": "pi_123"},
            id="intent-wins",
        ),
        pytest.param(lambda payment: {"payment_id": "not-ours"}, id="malformed"),
        pytest.param(lambda payment: {}, id="nothing"),
    ],
)
def test_payment_find_is_the_orms_first_statement_and_instance(merchant, rich_payment, lookup):
    PaymentFactory(client=ApiClientFactory(name="other"))  # never found
    Payment.objects.filter(pk=rich_payment.pk).update(provider="stripe")
    found = Payment.objects.get(pk=rich_payment.pk)
    values = lookup(found)

    expected, expected_sql = _statements(lambda: _orm_find(**values))
    payment, sql = _statements(lambda: payment_find(**values))

    assert sql == expected_sql
    assert all(statement.endswith('ORDER BY "payments_payment"."id" DESC LIMIT 1') for statement in sql)
    if expected is None:
        assert payment is None
    else:
        assert _everything(payment) == _everything(expected)
    assert None not in _payment_finds.compiled.values()  # not the ORM fallback
