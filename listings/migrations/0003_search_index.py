"""A GIN index for full-text search of lots, on PostgreSQL only.

The indexed expression is the one ``listings.search.database`` searches with,
``to_tsvector('simple'::regconfig, COALESCE(search_tokens, ''))``, built here from the very same
Django expression (``SearchVector("search_tokens", config="simple")``) so the two cannot drift apart.
No other database gets it (the SQLite demo matches tokens with LIKE). Plain ``CREATE INDEX``, not
``CONCURRENTLY``: migrations run in a transaction. The index lives outside the model state (it is not
in ``Lot.Meta.indexes``), so ``makemigrations`` never sees it.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations

INDEX_NAME = "listings_lot_search_gin"


def search_index() -> GinIndex:
    return GinIndex(SearchVector("search_tokens", config="simple"), name=INDEX_NAME)


def index_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(apps.get_model("listings", "Lot"), search_index())


def index_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(apps.get_model("listings", "Lot"), search_index())


class Migration(migrations.Migration):
    dependencies = [("listings", "0002_catalogue")]

    operations = [migrations.RunPython(index_create, index_drop, elidable=False)]
