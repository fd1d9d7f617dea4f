"""Search in the database: ``Lot.search_tokens`` holds the lot's tokens, space-joined.

* PostgreSQL: ``search_vector @@ plainto_tsquery('simple', '<query tokens>')`` (every token
  required), ranked by ``ts_rank(search_vector, ...)``. ``listings_lot.search_vector`` is a stored
  ``to_tsvector('simple', search_tokens)`` that a trigger keeps in line with the tokens, with a GIN
  index (migration ``listings 0005_search_vector``; the column is not in the model): matching and
  ranking read the stored vector and never parse text. The 'simple' configuration only lower-cases,
  and every token is one lexeme for the parser, so PostgreSQL sees our tokens as they are.
* SQLite (the embedded demo) and others: each query token as a whole word in
  ``' ' || search_tokens || ' '`` with LIKE; relevance sorts as newest there.

A search costs at most five queries: the zone's provinces (with a zone), the three facets (the trade
mode facet, blanks included, also gives the total) and the page of ids. On PostgreSQL the facet
counts and the total are cached per filter until any lot changes (:mod:`listings.search.facets_cache`).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector, SearchVectorField
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Count, Expression, F, QuerySet, TextField, Value
from django.db.models.functions import Concat, Substr

from listings.models import Lot
from listings.search.base import (
    Progress,
    SearchBackend,
    batched,
    lots_for_indexing,
    unique_ids,
)
from listings.search.documents import (
    FACET_SIZES,
    INDEXED_STATUSES,
    category_facet_key,
    category_map,
    facet_sorted,
    lot_tokens,
    lots_filtered,
    zone_province_codes,
)
from listings.search.facets_cache import facets_cached, lots_changed
from listings.search.query import LotQuery, SearchResult
from listings.search.tokens import query_tokens

TS_CONFIG = "simple"

# All three facets in one scan of the filtered lots (PostgreSQL GROUPING SETS).
FACETS_SQL_HEAD = (
    "SELECT f.category_id, substr(f.region_id, 1, 2), f.trade_mode,"
    " GROUPING(f.category_id, substr(f.region_id, 1, 2), f.trade_mode), COUNT(*) FROM ("
)
FACETS_SQL_TAIL = (
    ") AS f GROUP BY GROUPING SETS ((f.category_id), (substr(f.region_id, 1, 2)), (f.trade_mode))"
)


def search_vector() -> SearchVector:
    """``to_tsvector('simple'::regconfig, COALESCE(search_tokens, ''))``: what ``search_vector`` holds."""
    return SearchVector("search_tokens", config=TS_CONFIG)


class StoredSearchVector(Expression):
    """The column ``listings_lot.search_vector`` (PostgreSQL only, outside the model state)."""

    output_field = SearchVectorField()

    def as_sql(self, compiler, connection):
        table = compiler.quote_name_unless_alias(compiler.query.get_initial_alias())
        return f"{table}.{connection.ops.quote_name('search_vector')}", []


def _order(sort: str) -> list:
    # Searched lots are all published, so published_at is never null here; plain DESC matches the
    # (status, -published_at, -id) index and a page of "newest" is read straight off it.
    last = [F("published_at").desc(), F("pk").desc()]
    return {
        "relevance": [F("rank").desc(), *last],
        "newest": last,
        "closing": [F("closes_at").asc(nulls_last=True), F("pk").desc()],
        "price_asc": [F("current_price").asc(nulls_last=True), F("pk").desc()],
        "price_desc": [F("current_price").desc(nulls_last=True), F("pk").desc()],
    }[sort]


class DatabaseBackend(SearchBackend):
    name = "database"

    def _vendor(self) -> str:
        return connections[Lot.objects.db].vendor

    def _match_text(self, qs: QuerySet[Lot], tokens: list[str]) -> tuple[QuerySet[Lot], SearchRank | None]:
        """``qs`` narrowed to lots having every token; and the rank expression, where there is one."""
        if not tokens:
            return qs, None
        if self._vendor() == "postgresql":
            vector = StoredSearchVector()
            ts_query = SearchQuery(" ".join(tokens), config=TS_CONFIG, search_type="plain")
            return qs.alias(search_vector=vector).filter(search_vector=ts_query), SearchRank(vector, ts_query)
        padded = Concat(Value(" "), "search_tokens", Value(" "), output_field=TextField())
        qs = qs.alias(padded_tokens=padded)
        for token in tokens:
            qs = qs.filter(padded_tokens__contains=f" {token} ")
        return qs, None

    def search(self, query: LotQuery) -> SearchResult:
        zone_provinces = zone_province_codes(query.zone) if query.zone else None
        qs = lots_filtered(query, zone_provinces=zone_provinces)
        qs, rank = self._match_text(qs, query_tokens(query.text))

        facets, total = facets_cached(query, self._vendor(), lambda: self._facets(qs, query))
        ids: list[int] = []
        if query.offset < total:
            sort = query.effective_sort
            if sort == "relevance":
                if rank is None:
                    sort = "newest"  # SQLite: no rank
                else:
                    qs = qs.alias(rank=rank)
            page = qs.order_by(*_order(sort)).values_list("pk", flat=True)
            ids = list(page[query.offset : query.offset + query.page_size])
        return SearchResult(ids=ids, total=total, page=query.page, page_size=query.page_size, facets=facets)

    def _facet_counts(self, base: QuerySet[Lot]) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        """Counts per category, province prefix and trade mode of the filtered lots."""
        if self._vendor() == "postgresql":
            # One scan for all three facets: GROUPING() tells which grouping set a row belongs to.
            try:
                sql, params = base.values("category_id", "region_id", "trade_mode").query.sql_with_params()
            except EmptyResultSet:  # a filter Django knows matches nothing (e.g. no county in range)
                return {}, {}, {}
            # Django's own compiled SQL goes inside; its parameters are passed apart.
            facet_sql = FACETS_SQL_HEAD + sql + FACETS_SQL_TAIL
            with connections[base.db].cursor() as cursor:
                cursor.execute(facet_sql, params)
                rows = cursor.fetchall()
            by_set: dict[int, dict[str, int]] = {0b011: {}, 0b101: {}, 0b110: {}}
            for category, province, mode, grouping, n in rows:
                by_set[grouping][{0b011: category, 0b101: province, 0b110: mode}[grouping]] = n
            return by_set[0b011], by_set[0b101], by_set[0b110]
        categories = dict(
            base.values_list("category_id").annotate(n=Count("pk")).values_list("category_id", "n")
        )
        provinces = dict(
            base.annotate(province=Substr("region_id", 1, 2))
            .values("province")
            .annotate(n=Count("pk"))
            .values_list("province", "n")
        )
        modes = dict(base.values("trade_mode").annotate(n=Count("pk")).values_list("trade_mode", "n"))
        return categories, provinces, modes

    def _facets(self, qs: QuerySet[Lot], query: LotQuery) -> tuple[dict[str, list[tuple[str, int]]], int]:
        by_category, by_province, modes = self._facet_counts(qs.order_by())
        categories: dict[str, int] = {}
        for code, n in by_category.items():
            key = category_facet_key(code, query.category)
            if key is not None:
                categories[key] = categories.get(key, 0) + n
        provinces = {f"{prefix}0000": n for prefix, n in by_province.items()}
        total = sum(modes.values())
        modes.pop("", None)
        facets = {
            "category": facet_sorted(categories, FACET_SIZES["category"]),
            "province": facet_sorted(provinces, FACET_SIZES["province"]),
            "trade_mode": facet_sorted(modes, FACET_SIZES["trade_mode"]),
        }
        return facets, total

    # --- indexing ---------------------------------------------------------------------------

    def index_lots(self, ids: Iterable[int]) -> int:
        """Write the tokens of these lots (every status: filters decide what is found)."""
        written = 0
        categories = None
        for batch in batched(unique_ids(ids)):
            categories = categories if categories is not None else category_map()
            changed = []
            for lot in lots_for_indexing(batch):
                tokens = " ".join(lot_tokens(lot, categories))
                if tokens != lot.search_tokens:
                    lot.search_tokens = tokens
                    changed.append(lot)
            # bulk_update writes only search_tokens (updated_at stays: tokens are no change of the lot).
            Lot.objects.bulk_update(changed, ["search_tokens"])
            written += len(changed)
        if written:
            lots_changed(Lot.objects.db)
        return written

    def remove_lots(self, ids: Iterable[int]) -> None:
        if Lot.objects.filter(pk__in=unique_ids(ids)).exclude(search_tokens="").update(search_tokens=""):
            lots_changed(Lot.objects.db)

    def rebuild(self, progress: Progress | None = None) -> int:
        ids = list(Lot.objects.order_by("pk").values_list("pk", flat=True))
        done = 0
        if progress:
            progress(0, len(ids))
        for batch in batched(ids):
            self.index_lots(batch)
            done += len(batch)
            if progress:
                progress(done, len(ids))
        return done

    def reconcile(self) -> dict[str, int]:
        """Public lots without tokens (an indexing task lost) get them."""
        missing = list(
            Lot.objects.filter(status__in=INDEXED_STATUSES, search_tokens="").values_list("pk", flat=True)
        )
        return {"indexed": self.index_lots(missing), "removed": 0}
