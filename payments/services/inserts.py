"""New rows written together in one INSERT statement: one round trip where Model.save() takes one per row."""

from __future__ import annotations

from functools import lru_cache

from django.db import connections, models, transaction

_TAG = "r{}"  # the CTE that inserts rows[i]


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
    fields = [_insert_fields(type(row)) for row in rows]
    links = [None] + [_link(row, row_fields, parent) for row, row_fields in zip(rows[1:], fields[1:], strict=True)]
    params: list = []
    for row, row_fields, link in zip(rows, fields, links, strict=True):
        for field in row_fields:
            if field is not link:
                params.append(field.get_db_prep_save(field.pre_save(row, add=True), connection))
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


def _link(row: models.Model, row_fields: list[models.Field], parent: models.Model) -> models.Field | None:
    """The row's ForeignKey set to `parent` (the first row, not saved yet), if it has one."""
    for field in row_fields:
        if field.is_relation and field.related_model is type(parent) and field.get_cached_value(row, None) is parent:
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
