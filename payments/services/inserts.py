"""New rows written together in one INSERT statement: one round trip where Model.save() takes one per row."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from django.db import connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.backends.postgresql.operations import DatabaseOperations as PostgreSQLOperations
from django.db.models.fields.related import ForeignKey

_TAG = "r{}"  # the CTE that inserts rows[i]

# How a field's value becomes its parameter (issue 11: Django's pre_save + get_db_prep_save were ~20 %
# of a create's CPU, three to five calls for each of a create's ~46 values). Each kind below is taken
# only for a field whose methods are Django's own (a subclass that overrides one gets _DJANGO), and only
# for the value types for which those methods change nothing but what the kind does; any other value
# (a lazy string, an IntEnum, a naive datetime, an expression, …) goes through Django's full path.
# tests/payments/test_inserts.py holds every kind equal to Django's path, parameter for parameter.
_DJANGO = 0  # pre_save, then get_db_prep_save: every field we do not know
_STR = 1  # CharField / TextField: a str (or subclass, a TextChoices member) or None is itself
_INT = 2  # IntegerField family: an int is adapted as IntegerField.get_db_prep_value does (psycopg3: Int8…)
_DATETIME = 3  # DateTimeField: an aware datetime or None is itself (PostgreSQL adapts nothing)
_JSON = 4  # JSONField: None is NULL; a dict or list goes straight to the backend's adapt_json_value
_FOREIGN_KEY = 5  # ForeignKey to an auto primary key: an int or None is itself
_BOOL = 6  # BooleanField: a bool or None is itself
_PREP = ("pre_save", "get_db_prep_save", "get_db_prep_value", "get_prep_value", "to_python")


class _Column(NamedTuple):
    field: models.Field
    attname: str
    kind: int
    pre_save: bool  # the value is field.pre_save(row, add=True) (auto_now, auto_now_add), not the attribute
    adapt: object  # _INT: the callable that adapts an int, or None if the backend sends it as it is


class _Plan(NamedTuple):
    columns: tuple[_Column, ...]
    relations: tuple[models.Field, ...]  # the model's ForeignKeys: where a link to the first row may be


def rows_insert(*rows: models.Model, using: str = "default") -> None:
    """
    INSERT new model instances in one statement (data-modifying CTEs), in order, as save() would write them.

    Each row is what save() would send: its fields' pre_save (auto_now, auto_now_add) and database
    preparation. A later row's ForeignKey to the first row (set to that unsaved instance) takes the
    id the first INSERT returns, so a payment and its timeline event go in together. Each row gets
    its id and counts as saved. Save signals are not sent and save() overrides do not run: use it for
    models that need neither. Constraints and triggers fire as for separate INSERTs, and the
    statement, like a transaction, writes all the rows or none.
    """
    if not rows:
        return
    connection = connections[using]
    parent = rows[0]
    plans = [_plan(type(row), connection) for row in rows]
    links = [None] + [_link(row, plan, parent) for row, plan in zip(rows[1:], plans[1:], strict=True)]
    params: list = []
    for row, plan, link in zip(rows, plans, links, strict=True):
        params += _row_params(row, plan, link, connection)
    sql = _statement(tuple(type(row) for row in rows), tuple(link.attname if link else None for link in links))
    with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = cursor.fetchone()
    for row, row_id, link in zip(rows, ids, links, strict=True):
        row.pk = row_id
        if link is not None:
            setattr(row, link.attname, parent.pk)
        row._state.adding = False
        row._state.db = using


def _row_params(row: models.Model, plan: _Plan, link: models.Field | None, connection: BaseDatabaseWrapper) -> list:
    """The row's parameters, each what `field.get_db_prep_save(field.pre_save(row, add=True), connection)` is."""
    params = []
    append = params.append
    for field, attname, kind, pre_save, adapt in plan.columns:
        if field is link:
            continue
        value = field.pre_save(row, True) if pre_save else getattr(row, attname)
        if value is None and kind:  # every kind but _DJANGO sends None as NULL
            append(None)
        elif kind == _STR and isinstance(value, str):
            append(value)
        elif kind == _INT and type(value) is int:
            append(value if adapt is None else adapt(value))
        elif kind == _DATETIME and isinstance(value, datetime) and value.utcoffset() is not None:
            append(value)
        elif kind == _JSON and type(value) in (dict, list):
            append(connection.ops.adapt_json_value(value, field.encoder))
        elif (kind == _FOREIGN_KEY and type(value) is int) or (kind == _BOOL and type(value) is bool):
            append(value)
        else:
            append(field.get_db_prep_save(value, connection))
    return params


def _plan(model: type[models.Model], connection: BaseDatabaseWrapper) -> _Plan:
    """The model's columns and how each value becomes a parameter on this connection's backend: computed once."""
    key = (model, connection.alias)
    plan = _PLANS.get(key)
    if plan is None:
        fields = _insert_fields(model)
        columns = tuple(_column(field, connection) for field in fields)
        relations = tuple(field for field in fields if field.is_relation)
        plan = _PLANS[key] = _Plan(columns, relations)
    return plan


_PLANS: dict[tuple[type[models.Model], str], _Plan] = {}


def _column(field: models.Field, connection: BaseDatabaseWrapper) -> _Column:
    ops = type(connection.ops)
    postgresql = connection.vendor == "postgresql"
    if _stock(field, models.CharField) or _stock(field, models.TextField):
        return _Column(field, field.attname, _STR, False, None)
    if _stock(field, models.BooleanField):
        return _Column(field, field.attname, _BOOL, False, None)
    if _stock(field, models.IntegerField):
        if ops.adapt_integerfield_value is BaseDatabaseOperations.adapt_integerfield_value:
            return _Column(field, field.attname, _INT, False, None)
        if postgresql and ops.adapt_integerfield_value is PostgreSQLOperations.adapt_integerfield_value:
            adapt = getattr(connection.ops, "integerfield_type_map", {}).get(field.get_internal_type())
            if adapt is not None:
                return _Column(field, field.attname, _INT, False, adapt)
    if (
        _stock(field, models.DateTimeField)
        and postgresql
        and ops.adapt_datetimefield_value is PostgreSQLOperations.adapt_datetimefield_value
    ):
        return _Column(field, field.attname, _DATETIME, field.auto_now or field.auto_now_add, None)
    if _stock(field, models.JSONField):
        return _Column(field, field.attname, _JSON, False, None)
    if (
        _stock(field, ForeignKey)
        and _stock(field.target_field, models.AutoField)  # AutoField's metaclass: Big and Small too
        and ops.validate_autopk_value is BaseDatabaseOperations.validate_autopk_value
    ):
        return _Column(field, field.attname, _FOREIGN_KEY, False, None)
    return _Column(field, field.attname, _DJANGO, True, None)


def _stock(field: models.Field, django_class: type[models.Field]) -> bool:
    """Whether `field` reads and prepares a value with exactly `django_class`'s methods."""
    return isinstance(field, django_class) and all(
        getattr(type(field), name) is getattr(django_class, name) for name in _PREP
    )


def _link(row: models.Model, plan: _Plan, parent: models.Model) -> models.Field | None:
    """The row's ForeignKey set to `parent` (the first row, not saved yet), if it has one."""
    for field in plan.relations:
        if field.related_model is type(parent) and field.get_cached_value(row, None) is parent:
            return field
    return None


def _insert_fields(model: type[models.Model]) -> list[models.Field]:
    opts = model._meta
    if opts.parents:
        raise TypeError(f"rows_insert cannot write {model.__name__}: it inherits from another concrete model")
    return [field for field in opts.local_concrete_fields if field is not opts.auto_field and not field.generated]


@lru_cache(maxsize=32)
def _statement(models_: tuple[type[models.Model], ...], links: tuple[str | None, ...]) -> str:
    """WITH r0 AS (INSERT … RETURNING id), r1 AS (INSERT … VALUES ((SELECT id FROM r0), …) …) SELECT the ids.

    Only our models' quoted table and column names go into the text; every value is a %s parameter.
    """
    quote = connections["default"].ops.quote_name
    parent_id = f"(SELECT {quote(models_[0]._meta.pk.column)} FROM {_TAG.format(0)})"  # noqa: S608 - names only
    ctes, selects = [], []
    for index, (model, link) in enumerate(zip(models_, links, strict=True)):
        row_fields = _insert_fields(model)
        columns = ", ".join(quote(field.column) for field in row_fields)
        values = ", ".join(parent_id if field.attname == link else "%s" for field in row_fields)
        insert = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({values})"  # noqa: S608
        ctes.append(f"{_TAG.format(index)} AS ({insert} RETURNING {quote(model._meta.pk.column)})")
        selects.append(f"(SELECT {quote(model._meta.pk.column)} FROM {_TAG.format(index)})")  # noqa: S608
    return f"WITH {', '.join(ctes)} SELECT {', '.join(selects)}"
