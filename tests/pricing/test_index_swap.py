"""A rebuild that replaces every stored value writes into a fresh table swapped in at its end
(``pricing.index_swap``): the table swapped in is the migrated one (constraints, indexes and their
names, identity continuing), readers are not held up while it runs, writers wait for it and then
write into the new table; a rebuild that leaves values outside its span deletes and inserts."""

import threading
from datetime import date

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.db.utils import OperationalError

from pricing import index_rebuild, indices
from pricing.index_models import IndexValue
from tests.pricing.test_indices_rebuild import END, START, everything, facts_make

TABLE = IndexValue._meta.db_table


def catalog() -> dict:
    """What a migration sees of the values' table: its oid, constraints, indexes, columns."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::regclass::oid", [TABLE])
        (oid,) = cursor.fetchone()
        cursor.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s", [oid]
        )
        constraints = sorted(cursor.fetchall())
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [TABLE])
        indexes = sorted(cursor.fetchall())
        cursor.execute(
            "SELECT column_name, data_type, is_nullable, column_default, is_identity, identity_generation "
            "FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
            [TABLE],
        )
        columns = cursor.fetchall()
        cursor.execute("SELECT bool_or(indcheckxmin) FROM pg_index WHERE indrelid = %s", [oid])
        (unusable,) = cursor.fetchone()
        cursor.execute(
            "SELECT current_setting('search_path'), count(*) FROM pg_namespace WHERE nspname = 'index_rebuild'"
        )
        path, schemas = cursor.fetchone()
    return {"oid": oid, "constraints": constraints, "indexes": indexes, "columns": columns,
            "unusable": unusable, "path": path, "schemas": schemas}  # fmt: skip


@pytest.mark.django_db
def test_a_rebuild_of_every_value_swaps_in_a_table_like_the_migrated_one(monkeypatch):
    migrated = catalog()
    assert migrated["unusable"] is False and migrated["schemas"] == 0
    assert ("index_value_once_per_day", "u", "UNIQUE (series_id, day)") in migrated["constraints"]
    facts_make(21)
    # Values written without a level are updated once their series' base is found: the indexes are
    # there before (an index built on a table with updated rows is not usable by its transaction).
    monkeypatch.setattr(index_rebuild, "HOLD_VALUES", 50)
    indices.indices_rebuild(START, END)
    # Nothing stored yet: written into the table there is (keeping its indexes up to date costs
    # less than building them).
    first, ids = everything(), list(IndexValue.objects.values_list("pk", flat=True))
    assert catalog() == migrated

    indices.indices_rebuild(START, END)
    again = catalog()
    assert again["oid"] != migrated["oid"] and {**again, "oid": 0} == {**migrated, "oid": 0}
    assert everything() == first
    # The identity goes on from the old table's: no value gets an id an earlier value had.
    assert IndexValue.objects.order_by("pk").first().pk > max(ids)
    value = IndexValue.objects.order_by("pk").first()
    with pytest.raises(IntegrityError), transaction.atomic():
        IndexValue.objects.create(**{
            f.attname: getattr(value, f.attname) for f in IndexValue._meta.concrete_fields if f.attname != "id"
        })  # fmt: skip

    # Values outside the span stay: deleted and inserted in the same table.
    indices.indices_rebuild(date(2026, 1, 12), END)
    assert catalog() == again and everything()[1:] == first[1:]
    indices.indices_rebuild(START, END)
    assert catalog()["oid"] != again["oid"] and everything() == first


def other_connection(work):
    """``work(cursor)`` on a connection of its own (its own transaction), in a thread; its result."""
    out = {}

    def run():
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SET lock_timeout = '3s'")
                out["result"] = work(cursor)
        except Exception as exc:
            out["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_while_it_runs_others_read_the_old_values_and_writers_wait_for_the_new_table():
    # Few facts: this test commits them, and in the whole suite committing 2,500 took a minute (the
    # foreign keys' checks at commit), against a second when the test runs alone.
    last_day = date(2025, 11, 21)
    facts_make(22, START, last_day, per_day=4)
    indices.indices_rebuild(START, last_day)
    count, last = IndexValue.objects.count(), IndexValue.objects.order_by("pk").last()
    seen = {}

    def during(i, _n):
        if i != 1:
            return
        # A reader: the values stored until the rebuild commits, at once.
        thread, out = other_connection(
            lambda c: c.execute("SELECT count(*), max(id) FROM pricing_indexvalue").fetchone()
        )
        thread.join()
        seen["read"] = out

        # A writer without patience: refused by its lock timeout.
        def impatient(cursor):
            cursor.execute("SET lock_timeout = '200ms'")
            cursor.execute("UPDATE pricing_indexvalue SET n = n WHERE id = -1")

        thread, out = other_connection(impatient)
        thread.join()
        seen["impatient"] = out
        # A writer that waits: its update lands in the new table once the rebuild has committed.
        seen["writer"] = other_connection(
            lambda c: (
                c.execute(
                    "UPDATE pricing_indexvalue SET corrected_at = now() WHERE series_id = %s AND day = %s",
                    [last.series_id, last.day],
                ).rowcount
            )  # fmt: skip
        )

    indices.indices_rebuild(START, last_day, progress=during)
    assert seen["read"] == {"result": (count, last.pk)}
    assert isinstance(seen["impatient"].get("error"), OperationalError)
    assert "lock timeout" in str(seen["impatient"]["error"])
    thread, out = seen["writer"]
    thread.join(timeout=30)
    assert out == {"result": 1}
    replaced = IndexValue.objects.get(series_id=last.series_id, day=last.day)
    assert replaced.pk > last.pk and replaced.corrected_at is not None
    assert IndexValue.objects.count() == count
