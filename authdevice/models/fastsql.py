"""Hand-written INSERT and row loading for the hot paths.

Compiling an ORM statement costs several times more than running it on SQLite (see
benchmarks/README.md, "Where the time goes"): ``Model.save()`` spends ~300 µs in the
compiler for a ~30 µs INSERT. These helpers build each statement once per model and
database vendor and then only convert values, through the same field and backend
converters the ORM uses, so what is stored and loaded is identical on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models, router
from django.db.models import signals
from django.db.models.base import ModelState

M = TypeVar("M", bound=models.Model)

_insert_sql: dict[tuple[type[models.Model], str], tuple[str, list[models.Field]]] = {}
_Converters = list[tuple[int, Any, list[Callable[..., Any]]]]
_converters: dict[tuple[type[models.Model], str], _Converters] = {}


def _write_alias(model: type[models.Model]) -> str:
    return router.db_for_write(model) or "default"


Prepared = tuple[str, list[Any]]
_sql: dict[tuple[object, ...], str] = {}


def cached_sql(key: tuple[object, ...], build: Callable[[], str]) -> str:
    """The statement ``build()`` returns, built once per ``key`` and database vendor
    (building a statement costs as much as running it on SQLite)."""
    full = (connections[DEFAULT_DB_ALIAS].vendor, *key)
    sql = _sql.get(full)
    if sql is None:
        sql = _sql[full] = build()
    return sql


def fetch_one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """Run a hand-written SELECT on the default connection; its first row or None."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def load_joined(row: Sequence[Any], *models_: type[models.Model]) -> list[Any]:
    """Instances of ``models_`` from one row that selected their :func:`columns` one after
    another; None for a model whose primary key came back NULL (a LEFT JOIN that found
    nothing)."""
    found: list[Any] = []
    offset = 0
    for model in models_:
        fields = model._meta.concrete_fields
        values = row[offset : offset + len(fields)]
        pk_index = fields.index(model._meta.pk)
        found.append(None if values[pk_index] is None else load(model, values))
        offset += len(fields)
    return found


def attach_user(identity: Any, user: Any) -> None:
    """Link a loaded ``UserIdentity`` and its user both ways, as ``select_related`` would
    (``identity`` None: the user has none, and reading it raises DoesNotExist)."""
    from .identities import UserIdentity

    if identity is not None:
        identity.user = user
    UserIdentity._meta.get_field("user").remote_field.set_cached_value(user, identity)


def is_active_sql(user_model: type[models.Model], table_ref: str) -> str:
    """SQL for the user's ``is_active`` flag: its column, or ``1`` for a custom user model
    that keeps ``AbstractBaseUser``'s constant ``is_active = True`` and has no column."""
    field = next((f for f in user_model._meta.concrete_fields if f.name == "is_active"), None)
    if field is None:
        return "1"
    return f"{table_ref}.{connections[DEFAULT_DB_ALIAS].ops.quote_name(field.column)}"


def prepare_insert(instance: models.Model) -> Prepared:
    """The INSERT of ``instance`` (primary key already set: our ids are chosen in Python)
    and its converted values, ``auto_now``/``auto_now_add`` fields filled as by ``save()``.
    Callers convert before their write transaction and only :func:`run_insert` inside it."""
    model = type(instance)
    connection = connections[_write_alias(model)]
    key = (model, connection.vendor)
    cached = _insert_sql.get(key)
    if cached is None:
        fields = [f for f in model._meta.concrete_fields if not f.generated]
        q = connection.ops.quote_name
        sql = "INSERT INTO {} ({}) VALUES ({})".format(
            q(model._meta.db_table),
            ", ".join(q(f.column) for f in fields),
            ", ".join(["%s"] * len(fields)),
        )
        cached = _insert_sql[key] = (
            sql,
            [(f, f.attname, _passes_through(f), _needs_pre_save(f)) for f in fields],
        )
    sql, plan = cached
    params = []
    attrs = instance.__dict__
    for field, attname, plain, pre_save in plan:
        # pre_save fills auto_now(_add) fields and returns the attribute value for the
        # others, which a field without its own pre_save reads as below.
        if pre_save or attname not in attrs:
            value = field.pre_save(instance, True)
        else:
            value = attrs[attname]
        if plain is datetime:
            if type(value) is datetime and value.tzinfo is not None:
                value = connection.ops.adapt_datetimefield_value(value)
            elif value is not None:
                value = field.get_db_prep_save(value, connection)
        elif value is not None and not (plain is not None and type(value) is plain):
            value = field.get_db_prep_save(value, connection)
        # else: stored as it is
        params.append(value)
    return sql, params


def _needs_pre_save(field: models.Field) -> bool:
    """Whether ``field.pre_save`` can do more than return the attribute: a field class
    with its own ``pre_save``, except date(-time) fields without ``auto_now(_add)``."""
    if type(field).pre_save is models.Field.pre_save:
        return False
    if type(field) in (models.DateTimeField, models.DateField):
        return bool(field.auto_now or field.auto_now_add)
    return True


_PLAIN_FIELDS: dict[type[models.Field], type] = {
    models.CharField: str,
    models.TextField: str,
    models.BigIntegerField: int,
    models.IntegerField: int,
    models.PositiveSmallIntegerField: int,
    models.PositiveIntegerField: int,
    models.SmallIntegerField: int,
    models.AutoField: int,
    models.BigAutoField: int,
}


def _passes_through(field: models.Field) -> type | None:
    """For fields whose database value is the Python value itself (text and integers,
    also as a foreign key's target): that type, so a value of exactly that type skips the
    field's conversion chain; ``datetime`` for date-times (aware ones go straight to the
    backend's adapter). Anything else (UUIDs, JSON, lazy strings) converts as usual."""
    # Exactly the type: TextChoices members (str subclasses) and lazy strings convert.
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if type(target) is models.DateTimeField:
        return datetime  # an aware datetime only needs the backend's adapter
    return _PLAIN_FIELDS.get(type(target))


_NewPlan = tuple[frozenset[str], tuple[tuple[str, str, bool, Callable[[], Any]], ...]]
_new_plans: dict[type[models.Model], _NewPlan] = {}


def _new_plan(model: type[models.Model]) -> _NewPlan:
    plan = _new_plans.get(model)
    if plan is None:
        names: set[str] = set()
        steps = []
        for field in model._meta.concrete_fields:
            names.update((field.name, field.attname))
            steps.append((field.name, field.attname, field.is_relation, field.get_default))
        plan = _new_plans[model] = (frozenset(names), tuple(steps))
    return plan


def new(model: type[M], **values: Any) -> M:
    """``model(**values)`` for a new row, without ``Model.__init__``'s walk through every
    field (a quarter of the cost of preparing an INSERT here). Same result: the given
    values (relations as instances by field name, or ids by attname), every other field's
    default, and ``_state.adding``. Relations are assigned through their descriptors, as
    ``__init__`` does. Models with their own ``__init__``, init signal receivers, or
    values that are not concrete fields take ``model(**values)`` itself."""
    names, steps = _new_plan(model)
    if (
        not _is_plain(model)
        or not names.issuperset(values)
        or signals.pre_init.has_listeners(model)
        or signals.post_init.has_listeners(model)
    ):
        return model(**values)
    instance = model.__new__(model)
    instance._state = ModelState()
    attrs = instance.__dict__
    for name, attname, is_relation, default in steps:
        if is_relation and name in values:
            setattr(instance, name, values[name])  # the descriptor: id and cache
            if attname in values:  # __init__ sets both, the id last (dropping the cache)
                setattr(instance, attname, values[attname])
        elif attname in values:
            attrs[attname] = values[attname]
        else:
            attrs[attname] = default()
    return instance


def run_insert(instance: M, prepared: Prepared | None = None) -> M:
    """Execute the prepared INSERT of ``instance`` (preparing it now if not given). No
    signals are sent (nothing listens to these models' saves)."""
    alias = _write_alias(type(instance))
    if prepared is None:
        prepared = prepare_insert(instance)
    with connections[alias].cursor() as cursor:
        cursor.execute(*prepared)
    instance._state.adding = False
    instance._state.db = alias
    return instance


def insert(instance: M) -> M:
    """INSERT ``instance`` with one prepared statement (see :func:`prepare_insert`)."""
    return run_insert(instance)


def _row_converters(model: type[models.Model], connection: Any) -> _Converters:
    key = (model, connection.vendor)
    found = _converters.get(key)
    if found is None:
        found = []
        for index, field in enumerate(model._meta.concrete_fields):
            col = field.get_col(model._meta.db_table)
            funcs = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
            if funcs:
                found.append((index, col, funcs))
        _converters[key] = found
    return found


def columns(model: type[models.Model], table_alias: str | None = None) -> str:
    """The quoted, comma-separated columns of ``model`` in field order (for SELECTs whose
    first columns :func:`load` turns into an instance)."""
    q = connections[DEFAULT_DB_ALIAS].ops.quote_name
    prefix = q(table_alias or model._meta.db_table) + "."
    return ", ".join(prefix + q(f.column) for f in model._meta.concrete_fields)


def load(model: type[M], row: Sequence[Any], *, using: str | None = None) -> M:
    """An instance of ``model`` from the first ``len(concrete_fields)`` values of ``row``
    (selected with :func:`columns`), converted exactly as the ORM converts them. ``using``
    names the connection the row was read from (the hand-written SELECTs use the default)."""
    alias = using or DEFAULT_DB_ALIAS
    connection = connections[alias]
    values = list(row[: len(model._meta.concrete_fields)])
    for index, expression, funcs in _row_converters(model, connection):
        value = values[index]
        for func in funcs:
            value = func(value, expression, connection)
        values[index] = value
    if (
        not _is_plain(model)
        or signals.pre_init.has_listeners(model)
        or signals.post_init.has_listeners(model)
    ):
        return model.from_db(alias, None, values)
    # What Model.from_db + __init__ leave behind for a full row, without walking every
    # field through __init__ (a third of the cost of loading a row here).
    instance = model.__new__(model)
    instance.__dict__.update(zip(_attnames(model), values, strict=True))
    state = instance._state = ModelState()
    state.adding = False
    state.db = alias
    return instance


_plain_models: dict[type[models.Model], bool] = {}


def _is_plain(model: type[models.Model]) -> bool:
    """Whether ``model`` keeps Django's own ``__init__`` and ``from_db`` (a site's custom
    user model may not): only such models are loaded without them."""
    plain = _plain_models.get(model)
    if plain is None:
        plain = _plain_models[model] = model.__init__ is models.Model.__init__ and (
            model.from_db.__func__ is models.Model.from_db.__func__  # type: ignore[attr-defined]
        )
    return plain


_attnames_cache: dict[type[models.Model], tuple[str, ...]] = {}


def _attnames(model: type[models.Model]) -> tuple[str, ...]:
    found = _attnames_cache.get(model)
    if found is None:
        found = _attnames_cache[model] = tuple(f.attname for f in model._meta.concrete_fields)
    return found
