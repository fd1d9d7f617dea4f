"""Hot reads compiled once per process (``Prepared``).

Django compiles a queryset's SQL every time it is evaluated. For the joined reads on the bid path
(the API token with its user, the acting membership with its organisation, the sale locked with
its lot and category) compiling costs 0.4 to 1.8 ms each, several times what PostgreSQL takes to
answer them, and the bid path runs a handful of them on every bid.

``Prepared(build, name=type, ...)`` calls ``build`` once per database alias with probe values
(distinctive integers and strings), compiles the queryset it returns, and finds where each probe
landed among the statement's parameters. Each call then runs the cached SQL with the caller's
values in those places and builds the model instances as Django's own ``ModelIterable`` does
(``select_related`` objects, annotations and the database converters included). Only integer,
string and ``Decimal`` parameters are supported (what the hot reads filter on), and a ``build`` whose SQL would
depend on the values themselves (``filter(x__in=...)`` with a varying length, or ``if`` on them) is
refused at the first compile: every probe must appear among the parameters as itself.

``sql(**values)`` gives the statement and its parameters without running it, for any queryset (a
``values_list`` too): a subquery sent within another statement, compiled once as well.

The statement runs through Django's cursor, so query logging, ``execute_wrapper`` and error
translation apply; on PostgreSQL psycopg prepares it on the server once it has run twice on a
connection (``DB_PREPARE_THRESHOLD`` in the settings).

A statement whose SQL depends on the transaction (``select_for_update``) is compiled inside one, as
Django requires; callers use it only inside one.
"""

import threading
from dataclasses import dataclass
from decimal import Decimal

from django.db import connections
from django.db.models.query import ModelIterable, get_related_populators

_INT_PROBE = 7_340_000_000_000
_STR_PROBE = "\u2063prepared-probe-{}\u2063"
_DECIMAL_PROBE = Decimal("7340000000000.37")
_KINDS = (int, str, Decimal)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    slots: tuple  # for each parameter: the caller's name (str) or a constant (a 1-tuple)
    col_count: int
    converters: tuple  # ((position, (converters, expression)), ...)
    model: type
    init_list: tuple
    fields_start: int
    fields_end: int
    klass_info: dict
    select: list
    annotation_col_map: dict


class Prepared:
    """A queryset-building function compiled once per database alias: see the module."""

    def __init__(self, build, **types):
        for name, kind in types.items():
            if kind not in _KINDS:
                raise TypeError(f"{name}: only int, str and Decimal parameters are prepared")
        self.build = build
        self.types = types
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _probes(self) -> dict:
        probe = {int: lambda i: _INT_PROBE + i, str: _STR_PROBE.format, Decimal: lambda i: _DECIMAL_PROBE + i}
        return {name: probe[kind](i) for i, (name, kind) in enumerate(self.types.items())}

    def _compile(self, alias: str) -> _Compiled:
        probes = self._probes()
        queryset = self.build(**probes)
        if queryset._prefetch_related_lookups:
            raise TypeError("Prepared runs querysets without prefetching")
        compiler = queryset.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        slots, seen = [], set()
        for param in params:
            name = next(
                (n for n, probe in probes.items() if type(param) is type(probe) and param == probe), None
            )
            if name is None:
                slots.append((param,))
            else:
                slots.append(name)
                seen.add(name)
        missing = set(probes) - seen
        if missing:
            raise ValueError(f"parameters not found in the compiled statement: {sorted(missing)}")
        if queryset._iterable_class is not ModelIterable:  # its SQL only (``sql``)
            return _Compiled(sql, tuple(slots), *(None,) * 9)
        select, klass_info = compiler.select, compiler.klass_info
        fields = [s[0] for s in select[0 : compiler.col_count]]
        select_fields = klass_info["select_fields"]
        start, end = select_fields[0], select_fields[-1] + 1
        return _Compiled(
            sql=sql,
            slots=tuple(slots),
            col_count=compiler.col_count,
            converters=tuple(compiler.get_converters(fields).items()),
            model=klass_info["model"],
            init_list=tuple(f[0].target.attname for f in select[start:end]),
            fields_start=start,
            fields_end=end,
            klass_info=klass_info,
            select=select,
            annotation_col_map=compiler.annotation_col_map or {},
        )

    def compiled(self, alias: str = "default") -> _Compiled:
        found = self._compiled.get(alias)
        if found is None:
            with self._lock:
                found = self._compiled.get(alias) or self._compile(alias)
                self._compiled[alias] = found
        return found

    def sql(self, using: str = "default", **values) -> tuple[str, list]:
        """The statement and its parameters, not run: for a query sent within another statement
        (any queryset, ``values_list`` too)."""
        if values.keys() != self.types.keys():
            raise TypeError(f"expected the parameters {sorted(self.types)}, got {sorted(values)}")
        c = self.compiled(using)
        return c.sql, [values[s] if isinstance(s, str) else s[0] for s in c.slots]

    def all(self, using: str = "default", **values) -> list:
        c = self.compiled(using)
        if c.model is None:
            raise TypeError("Prepared runs querysets of model instances (others: sql())")
        sql, params = self.sql(using, **values)
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return self.instances(rows, using)

    def instances(self, rows, using: str = "default") -> list:
        """The model instances of ``rows`` fetched by running ``sql()`` (as ``all`` builds them): for a
        statement sent with others (``market.trading.gateway``)."""
        c = self.compiled(using)
        if c.model is None:
            raise TypeError("Prepared runs querysets of model instances (others: sql())")
        if not rows:
            return []
        connection = connections[using]
        out = []
        populators = get_related_populators(c.klass_info, c.select, using)
        for row in rows:
            if c.converters:
                row = list(row)
                for pos, (convs, expression) in c.converters:
                    value = row[pos]
                    for convert in convs:
                        value = convert(value, expression, connection)
                    row[pos] = value
            obj = c.model.from_db(using, c.init_list, row[c.fields_start : c.fields_end])
            for populator in populators:
                populator.populate(row, obj)
            for attr, pos in c.annotation_col_map.items():
                setattr(obj, attr, row[pos])
            out.append(obj)
        return out

    def first(self, using: str = "default", **values):
        """The first row's instance, or None (``build`` orders and slices as it means to)."""
        rows = self.all(using, **values)
        return rows[0] if rows else None
