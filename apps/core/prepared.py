"""Hot-path queries: prepared single-row reads (an ORM query compiled to SQL once per thread and
database, then run with new parameters) and ``UPDATE … RETURNING``.

**Fenced.** :class:`PreparedGet` runs on Django's compiler internals, so it runs only while
``MEDIAROUTER_PREPARED_QUERIES`` is on (the default) and only on a Django version it was tested with
(:data:`TESTED_DJANGO_VERSIONS`; ``apps.core.checks`` refuses to start on any other). Off, it runs
the same QuerySet through the ORM (``.get()``): same results, ~0.6 ms more per call on a 50-column row
(``bench/prepared.py``), ~0.8 ms of an embedded retrieve's 1.6 ms (``bench/api_overhead.py``): on
by default since the API's retrieve target became 3 ms as the client sees it.
:func:`update_returning` is small, single-table and always on: it only appends ``RETURNING`` to the
SQL of ``QuerySet.update()`` (see its docstring).

For the hottest reads only (an API client polling its job), where turning the QuerySet into SQL
costs more CPU than PostgreSQL spends running it: compiling ``Generation`` (≈50 columns) with its
user joined takes ~0.6 ms; executing it and building the instances ~0.3 ms. The instances are built
the way ``QuerySet.__iter__`` builds them (``Model.from_db``, the compiler's converters and its
``select_related`` populators), so they are the same objects the QuerySet would return.

Parameters are found by compiling the QuerySet once with placeholder values of the right type
(distinct from anything real) and noting where they land in the SQL's parameter list.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import django
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.db.models import QuerySet, sql
from django.db.models.expressions import Col
from django.db.models.query import get_related_populators

# Django (major, minor) versions that tests/core/test_prepared.py passed on with the setting on.
# Add a version only after running those tests (and bench/prepared.py) on it.
TESTED_DJANGO_VERSIONS = ((5, 2),)


def prepared_queries_enabled() -> bool:
    """``MEDIAROUTER_PREPARED_QUERIES`` is on and this Django is a tested one (read per call, so a
    test's or an operator's change applies at once)."""
    if not getattr(settings, "MEDIAROUTER_PREPARED_QUERIES", False):
        return False
    return django.VERSION[:2] in TESTED_DJANGO_VERSIONS


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    positions: dict[str, int]
    model: type
    init_list: list[str]
    start: int
    end: int
    converters: list
    populators: list
    annotations: dict[str, int]


class PreparedGet:
    """``PreparedGet(build, name=placeholder, ...)``; ``prepared(using, name=value, ...)`` returns the
    row's instance, or None.

    ``build(**placeholders)`` must return a model QuerySet (``filter``, ``select_related``,
    ``annotate``; no ``values()``, ``only()``/``defer()`` or prefetching) whose rows are unique for
    the parameters, as a lookup by a unique column is. Tenant scoping is the caller's job, on both
    paths: build it on an unscoped manager with the organization as a parameter, and check the
    active scope first (:func:`apps.core.scoping.scoped_organization_id`).

    With prepared queries off (:func:`prepared_queries_enabled`) a call is
    ``build(**values).get()`` on the ORM: nothing is compiled by hand, and a second matching row
    raises ``MultipleObjectsReturned`` instead of being ignored.

    Placeholders must be values no real parameter takes (``-7_000_000_000_000_001``,
    ``"prepared-placeholder:name"``), each appearing exactly once in the compiled SQL's parameters:
    that is how :meth:`_compile` finds where each one is bound (ImproperlyConfigured otherwise).
    """

    def __init__(self, build: Callable[..., QuerySet], **placeholders: Any) -> None:
        self._build = build
        self._placeholders = placeholders
        self._local = threading.local()

    def _compile(self, using: str) -> _Compiled:
        qs = self._build(**self._placeholders)
        query = qs.query
        if query.values_select or query.deferred_loading[0] or qs._prefetch_related_lookups:
            raise ImproperlyConfigured("PreparedGet takes plain model querysets only.")
        compiler = query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        positions = {}
        for name, value in self._placeholders.items():
            found = [i for i, p in enumerate(params) if type(p) is type(value) and p == value]
            if len(found) != 1:
                raise ImproperlyConfigured(f"placeholder {name}={value!r} appears {len(found)} times in the SQL")
            positions[name] = found[0]
        select, klass_info = compiler.select, compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        fields = [s[0] for s in select[: compiler.col_count]]
        return _Compiled(
            sql=sql,
            params=tuple(params),
            positions=positions,
            model=klass_info["model"],
            init_list=[f[0].target.attname for f in select[start:end]],
            start=start,
            end=end,
            converters=list(compiler.get_converters(fields).items()),
            populators=get_related_populators(klass_info, select, using),
            annotations=dict(compiler.annotation_col_map or {}),
        )

    def __call__(self, using: str = "default", **values: Any):
        if not prepared_queries_enabled():
            qs = self._build(**values).using(using)
            try:
                return qs.get()
            except qs.model.DoesNotExist:
                return None
        cache = self._local.__dict__
        compiled = cache.get(using)
        if compiled is None:
            compiled = cache[using] = self._compile(using)
        params = list(compiled.params)
        for name, value in values.items():
            params[compiled.positions[name]] = value
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        if compiled.converters:
            row = list(row)
            for pos, (convs, expression) in compiled.converters:
                value = row[pos]
                for converter in convs:
                    value = converter(value, expression, connection)
                row[pos] = value
        obj = compiled.model.from_db(using, compiled.init_list, row[compiled.start : compiled.end])
        for populator in compiled.populators:
            populator.populate(row, obj)
        for name, pos in compiled.annotations.items():
            setattr(obj, name, row[pos])
        return obj


def update_returning(queryset: QuerySet, returning: Sequence[str], **values: Any) -> list[tuple]:
    """``queryset.update(**values)`` that also returns the ``returning`` fields of each updated row
    (``UPDATE … RETURNING``: PostgreSQL, SQLite ≥ 3.35). One statement where ``update()`` and a
    re-read of ``F()`` results took two. Single-table updates only.

    Kept unconditionally (not behind ``MEDIAROUTER_PREPARED_QUERIES``): it is the SQL that
    ``QuerySet.update()`` compiles, with ``RETURNING`` appended and each field's own database
    converters applied, so it touches far less of Django's internals than :class:`PreparedGet`
    (``UpdateQuery`` and ``as_sql()``, no select bookkeeping). It lets the engine's conditional
    state change (``UPDATE … WHERE state IN …``) return the ``F()`` counters it computed in the same
    statement, where ``update()`` plus ``refresh_from_db()`` costs a second query and could read a
    concurrent update's values.
    Pinned by tests/core/test_prepared.py."""
    query = queryset.query.chain(sql.UpdateQuery)
    query.add_update_values(values)
    query.clear_select_clause()
    if query.related_updates:
        raise ValueError("update_returning updates one table only")
    compiler = query.get_compiler(queryset.db)
    sql_text, params = compiler.as_sql()
    if not sql_text:
        return []
    connection = compiler.connection
    meta = queryset.model._meta
    fields = [meta.get_field(name) for name in returning]
    qn = connection.ops.quote_name
    sql_text += " RETURNING " + ", ".join(f"{qn(meta.db_table)}.{qn(f.column)}" for f in fields)
    converters = []
    for f in fields:
        col = Col(meta.db_table, f)
        converters.append((col, connection.ops.get_db_converters(col) + f.get_db_converters(connection)))
    with transaction.mark_for_rollback_on_error(using=queryset.db), connection.cursor() as cursor:
        cursor.execute(sql_text, params)
        rows = cursor.fetchall()
    out = []
    for row in rows:
        row = list(row)
        for i, (col, convs) in enumerate(converters):
            for converter in convs:
                row[i] = converter(row[i], col, connection)
        out.append(tuple(row))
    return out
