"""Search on PostgreSQL reads a stored tsvector instead of parsing ``search_tokens`` per row; and
indexes for the broad searches (price range and sort, facet counts).

PostgreSQL only (``RunPython`` guarded by vendor, like ``0003_search_index``):

* ``listings_lot.search_vector tsvector``, kept equal to
  ``to_tsvector('simple'::regconfig, COALESCE(search_tokens, ''))`` by PostgreSQL's built-in
  ``tsvector_update_trigger`` on every insert and every update that writes the tokens, whichever code
  writes them. The column
  is not in the model state: Django never reads or writes it, ``listings.search.database`` names it
  in its queries (matching and ``ts_rank`` then skip the parse of the text, which cost ~20 us a row).
* The GIN index ``listings_lot_search_gin`` is rebuilt on the column (same name, so the query and
  the tests keep their reference); the old expression index goes.

Every database (model state): ``(status, current_price)`` for the price range and the price sorts,
and ``(status, category, region, trade_mode)`` in place of ``(status, category)``: a category filter
reads it as before, and the facet counts of a search can be an index-only scan of it.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations, models

INDEX_NAME = "listings_lot_search_gin"
TRIGGER = "listings_lot_search_vector_update"

FORWARD = [
    "ALTER TABLE listings_lot ADD COLUMN search_vector tsvector",
    "UPDATE listings_lot SET search_vector = to_tsvector('simple'::regconfig, COALESCE(search_tokens, ''))",
    f"DROP INDEX IF EXISTS {INDEX_NAME}",
    f"CREATE INDEX {INDEX_NAME} ON listings_lot USING gin (search_vector)",
    # tsvector_update_trigger(column, configuration, text columns...): built into PostgreSQL. Only
    # updates that write search_tokens fire it (a bid's market update does not pay for a parse).
    f"CREATE TRIGGER {TRIGGER} BEFORE INSERT OR UPDATE OF search_tokens ON listings_lot FOR EACH ROW"
    " EXECUTE FUNCTION tsvector_update_trigger(search_vector, 'pg_catalog.simple', search_tokens)",
]
BACKWARD = [
    f"DROP TRIGGER IF EXISTS {TRIGGER} ON listings_lot",
    f"DROP INDEX IF EXISTS {INDEX_NAME}",
    "ALTER TABLE listings_lot DROP COLUMN IF EXISTS search_vector",
]


def vector_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for sql in FORWARD:
        schema_editor.execute(sql)


def vector_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for sql in BACKWARD:
        schema_editor.execute(sql)
    # 0003's expression index comes back.
    schema_editor.add_index(
        apps.get_model("listings", "Lot"),
        GinIndex(SearchVector("search_tokens", config="simple"), name=INDEX_NAME),
    )


class Migration(migrations.Migration):
    dependencies = [("listings", "0004_category_aliases")]

    operations = [
        migrations.RunPython(vector_create, vector_drop, elidable=False),
        migrations.RemoveIndex(model_name="lot", name="listings_lo_status_822351_idx"),
        migrations.AddIndex(
            model_name="lot",
            index=models.Index(
                fields=["status", "category", "region", "trade_mode"], name="listings_lot_facets_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="lot",
            index=models.Index(fields=["status", "current_price"], name="listings_lot_price_idx"),
        ),
    ]
