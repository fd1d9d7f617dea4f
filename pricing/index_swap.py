"""A rebuild that replaces every stored value writes them into a fresh table, swapped in at its end
(PostgreSQL; ``index_rebuild.rebuild``).

Deleting a span's values and inserting their replacements in one transaction makes each insertion
check the unique (series, day) index against the entry of the value it replaces, deleted but not yet
dead: 25 s more of inserts for 4.2 million values than into an empty table, and as many dead rows
left for vacuum.

Every rebuild on PostgreSQL first locks the values' table in ``EXCLUSIVE`` mode (``lock``):
everyone else goes on reading the values stored until the rebuild commits; writers (the daily close,
corrections) wait for it. When values are stored in the span and none outside it, the set-wise
rebuild then:

1. creates an empty copy of the table (``LIKE ... INCLUDING ALL EXCLUDING INDEXES``: columns,
   defaults, checks, identity) in a schema of its own, its identity continuing the table's, and puts
   that schema first on the connection's ``search_path``: every query of the rebuild, the ORM's and
   the writer thread's, reads and writes the copy;
2. once the elementary values are written, gives the copy the old table's indexes and the
   constraints they back, under their names (a migration finds them as it left them): building
   them from the whole table took 3 s, keeping them up to date while inserting 4.2 million values
   20 s (128 MB of shared buffers, the index's pages read again and again);
3. at the end drops the old table (waiting for its readers to finish), moves the copy into the old
   one's schema and restores the ``search_path``. Writers that waited then write into the new table
   (PostgreSQL looks a table's name up again once it has waited for its lock).

Into an empty table the rebuild writes in place: there, keeping the indexes up to date while the
cells are computed cost less than building them after.

All of it is transactional: a rebuild that fails leaves the table it found.
"""

import re

from django.db import connection

from pricing.index_models import IndexValue

SCHEMA = "index_rebuild"


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _indexes(cursor, oid: int) -> list[str]:
    """Statements that give a table's indexes, and the constraints they back, to ``{table}``."""
    cursor.execute(
        "SELECT con.conname, pg_get_constraintdef(con.oid), pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid "
        "WHERE i.indrelid = %s ORDER BY i.indexrelid",
        [oid],
    )
    return [
        f"ALTER TABLE {{table}} ADD CONSTRAINT {_q(name)} {constraint}"
        if name
        else re.sub(r" ON \S+ ", " ON {table} ", index.replace("{", "{{").replace("}", "}}"), count=1)
        for name, constraint, index in cursor.fetchall()
    ]


def lock() -> None:
    """The values' table in ``EXCLUSIVE`` mode until the rebuild's transaction ends: read by others,
    written by none."""
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {_q(IndexValue._meta.db_table)} IN EXCLUSIVE MODE")


class Fresh:
    """The fresh table of a rebuild: ``begin`` (after ``lock``) before anything is written, ``end``
    after the last."""

    def __init__(self):
        self.table = IndexValue._meta.db_table
        self.pk = IndexValue._meta.pk.column
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.oid, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.oid = %s::regclass",
                [self.table],
            )
            self.oid, self.schema = cursor.fetchone()
        self.old = f"{_q(self.schema)}.{_q(self.table)}"  # its name while the new one is first on the path
        self.new = f"{_q(SCHEMA)}.{_q(self.table)}"
        self.indexed = False

    def begin(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('search_path'), pg_get_serial_sequence(%s, %s)", [self.old, self.pk]
            )
            self.path, sequence = cursor.fetchone()
            cursor.execute(f"SELECT last_value + CASE WHEN is_called THEN 1 ELSE 0 END FROM {sequence}")  # noqa: S608
            following = int(cursor.fetchone()[0])
            cursor.execute(f"CREATE SCHEMA {_q(SCHEMA)}")
            cursor.execute(f"CREATE TABLE {self.new} (LIKE {self.old} INCLUDING ALL EXCLUDING INDEXES)")
            cursor.execute(f"ALTER TABLE {self.new} ALTER COLUMN {_q(self.pk)} RESTART WITH {following}")
            cursor.execute("SELECT set_config('search_path', %s, true)", [f"{_q(SCHEMA)}, {self.path}"])

    def index(self) -> None:
        """The old table's indexes and the constraints they back (unique, primary key), under their
        names, on the new table, once its elementary values are written (before the composites,
        whose chaining looks values up), and its statistics; once."""
        if self.indexed:
            return
        self.indexed = True
        with connection.cursor() as cursor:
            for statement in _indexes(cursor, self.oid):
                cursor.execute(statement.format(table=self.new))
            cursor.execute(f"ANALYZE {self.new}")

    def end(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {self.old}")
            cursor.execute(f"ALTER TABLE {self.new} SET SCHEMA {_q(self.schema)}")
            cursor.execute(f"DROP SCHEMA {_q(SCHEMA)}")
            cursor.execute("SELECT set_config('search_path', %s, true)", [self.path])
