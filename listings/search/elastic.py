"""Search in Elasticsearch (``settings.ELASTICSEARCH_URL``), with ``elasticsearch.dsl``.

The index ``<ELASTICSEARCH_INDEX_PREFIX>lots`` is an alias over one physical index
(``<alias>-<timestamp>``), so a rebuild fills a new index and swaps the alias in one step. It holds
the public lots (published, closed, expired). Text is matched on ``tokens``: the very tokens the
database backend stores, joined by spaces and split again by the ``whitespace`` analyzer, so both
backends find the same lots; every query token is required (``operator: and``), ranked by BM25.

:func:`build_search_body` is the request body, a pure function of the query, for the tests.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import UTC

from django.conf import settings
from django.utils import timezone
from elasticsearch import ApiError, Elasticsearch, TransportError, helpers
from elasticsearch.dsl import (
    Boolean,
    Date,
    Document,
    GeoPoint,
    Index,
    Keyword,
    Long,
    MetaField,
    Q,
    ScaledFloat,
    Search,
    Text,
)

from listings.models import Lot
from listings.search.base import (
    Progress,
    SearchBackend,
    SearchUnavailable,
    batched,
    lots_for_indexing,
    unique_ids,
)
from listings.search.documents import (
    FACET_SIZES,
    INDEXED_STATUSES,
    category_ancestor_codes,
    category_map,
    lot_tokens,
    zone_province_codes,
)
from listings.search.query import LotQuery, SearchResult, region_prefix
from listings.search.tokens import query_tokens

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "market-"


class LotDocument(Document):
    """The mapping of the lots index (no default index: the name comes from the settings)."""

    lot_id = Long()
    tokens = Text(analyzer="whitespace")
    status = Keyword()
    category = Keyword()
    category_path = Keyword()  # the category and its ancestors: a.b.c -> [a, a.b, a.b.c]
    province = Keyword()  # XX0000
    city = Keyword()  # XXXX00
    county = Keyword()  # the lot's region, six digits
    trade_mode = Keyword()
    hazardous = Boolean()
    quantity = ScaledFloat(scaling_factor=1000)  # 3 decimal places, exact
    current_price = ScaledFloat(scaling_factor=100)  # 2 decimal places, exact
    closes_at = Date()
    published_at = Date()
    updated_at = Date()
    location = GeoPoint()  # the county's centroid
    sync_key = Keyword(index=False, doc_values=False)  # what reconcile compares with the database

    class Meta:
        dynamic = MetaField("strict")


def index_alias() -> str:
    return f"{getattr(settings, 'ELASTICSEARCH_INDEX_PREFIX', DEFAULT_PREFIX)}lots"


def index_definition(name: str) -> Index:
    index = Index(name)
    index.settings(number_of_shards=1)
    index.mapping(LotDocument._doc_type.mapping)
    return index


def sync_key(updated_at, status, current_price, closes_at, trade_mode) -> str:
    """The lot's last change and its market state (which trading may write without touching
    ``updated_at``): when the index's copy differs, reconcile re-indexes the lot."""
    stamps = [None if t is None else t.astimezone(UTC).isoformat() for t in (updated_at, closes_at)]
    return f"{stamps[0]}|{status}|{current_price}|{stamps[1]}|{trade_mode}"


def lot_source(lot: Lot, categories) -> dict:
    """The document of a lot (``lot`` with ``INDEX_RELATED`` selected)."""
    region = lot.region
    source = {
        "lot_id": lot.pk,
        "tokens": " ".join(lot_tokens(lot, categories)),
        "status": lot.status,
        "category": lot.category_id,
        "category_path": category_ancestor_codes(lot.category_id),
        "province": region.code[:2] + "0000",
        "city": region.code[:4] + "00",
        "county": region.code,
        "trade_mode": lot.trade_mode or None,
        "hazardous": lot.hazardous,
        "quantity": float(lot.quantity),
        "current_price": None if lot.current_price is None else float(lot.current_price),
        "closes_at": lot.closes_at,
        "published_at": lot.published_at,
        "updated_at": lot.updated_at,
        "sync_key": sync_key(lot.updated_at, lot.status, lot.current_price, lot.closes_at, lot.trade_mode),
    }
    latitude, longitude = getattr(region, "latitude", None), getattr(region, "longitude", None)
    if latitude is not None and longitude is not None:
        source["location"] = {"lat": latitude, "lon": longitude}
    return {key: value for key, value in source.items() if value is not None}


# --- the request ----------------------------------------------------------------------------

_LAST = {"published_at": {"order": "desc", "missing": "_last"}}
_TIE = {"lot_id": {"order": "desc"}}
SORT_CLAUSES = {
    "relevance": ["_score", _LAST, _TIE],
    "newest": [_LAST, _TIE],
    "closing": [{"closes_at": {"order": "asc", "missing": "_last"}}, _TIE],
    "price_asc": [{"current_price": {"order": "asc", "missing": "_last"}}, _TIE],
    "price_desc": [{"current_price": {"order": "desc", "missing": "_last"}}, _TIE],
}
_REGEX_SPECIAL = set('.?+*|{}[]()"\\#@&<>~')


def _regex_literal(text: str) -> str:
    """``text`` as a literal in Lucene's regular expression syntax."""
    return "".join(f"\\{c}" if c in _REGEX_SPECIAL else c for c in text)


def _range(low, high) -> dict:
    bounds = {}
    if low is not None:
        bounds["gte"] = float(low)
    if high is not None:
        bounds["lte"] = float(high)
    return bounds


def build_search(query: LotQuery, *, zone_provinces: list[str] | None = None) -> Search:
    """The search for ``query``. ``zone_provinces``: the six-digit province codes of
    ``query.zone`` (read from the database when not given)."""
    filters = [Q("terms", status=list(query.statuses))]
    if query.category:
        filters.append(Q("term", category_path=query.category))
    if query.region:
        field = {2: "province", 4: "city", 6: "county"}[len(region_prefix(query.region))]
        filters.append(Q("term", **{field: query.region}))
    if query.zone:
        codes = zone_province_codes(query.zone) if zone_provinces is None else zone_provinces
        filters.append(Q("terms", province=[code[:2] + "0000" for code in codes]))
    if query.quantity_min is not None or query.quantity_max is not None:
        filters.append(Q("range", quantity=_range(query.quantity_min, query.quantity_max)))
    if query.price_min is not None or query.price_max is not None:
        filters.append(Q("range", current_price=_range(query.price_min, query.price_max)))
    if query.trade_mode:
        filters.append(Q("term", trade_mode=query.trade_mode))
    if query.hazardous is not None:
        filters.append(Q("term", hazardous=query.hazardous))
    if query.closing_within_hours is not None:
        filters.append(Q("range", closes_at={"gt": "now", "lte": f"now+{query.closing_within_hours}h"}))
    if query.near is not None and query.within_km is not None:
        lat, lon = query.near
        filters.append(
            Q(
                "geo_distance",
                distance=f"{query.within_km}km",
                location={"lat": float(lat), "lon": float(lon)},
            )
        )

    tokens = query_tokens(query.text)
    must = [Q("match", tokens={"query": " ".join(tokens), "operator": "and"})] if tokens else []
    search = (
        Search().query(Q("bool", must=must, filter=filters))
        if must
        else Search().query(Q("bool", filter=filters))
    )

    include = f"{_regex_literal(query.category)}\\.[^.]+" if query.category else "[^.]+"
    search.aggs.bucket(
        "category", "terms", field="category_path", include=include, size=FACET_SIZES["category"]
    )
    search.aggs.bucket("province", "terms", field="province", size=FACET_SIZES["province"])
    search.aggs.bucket("trade_mode", "terms", field="trade_mode", size=FACET_SIZES["trade_mode"])

    return (
        search.sort(*SORT_CLAUSES[query.effective_sort])
        .source(False)
        .extra(from_=query.offset, size=query.page_size, track_total_hits=True)
    )


def build_search_body(query: LotQuery, *, zone_provinces: list[str] | None = None) -> dict:
    """The request body Elasticsearch receives for ``query``."""
    return build_search(query, zone_provinces=zone_provinces).to_dict()


# --- the backend ----------------------------------------------------------------------------

_clients: dict[str, Elasticsearch] = {}
_clients_lock = threading.Lock()


def client_for(url: str) -> Elasticsearch:
    """One client (and connection pool) per URL and process."""
    with _clients_lock:
        if url not in _clients:
            _clients[url] = Elasticsearch(url, request_timeout=10, retry_on_timeout=True, max_retries=2)
        return _clients[url]


class _Unavailable:
    """Turns a transport failure or a server error into :class:`SearchUnavailable`."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            return False
        if isinstance(exc, TransportError) or (isinstance(exc, ApiError) and (exc.status_code or 0) >= 500):
            raise SearchUnavailable(f"Elasticsearch: {exc}") from exc
        return False


class ElasticsearchBackend(SearchBackend):
    name = "elasticsearch"

    def __init__(self, url: str, *, client: Elasticsearch | None = None, alias: str | None = None):
        self.url = url
        self.client = client or client_for(url)
        self.alias = alias or index_alias()
        self._ensured = False

    # --- index management -------------------------------------------------------------------

    def _create_index(self, name: str, *, with_alias: bool) -> None:
        body = index_definition(name).to_dict()
        if with_alias:
            body["aliases"] = {self.alias: {}}
        self.client.indices.create(index=name, **body)

    def ensure_index(self) -> None:
        """Create the index and its alias unless they exist (the first write of a fresh cluster)."""
        if self._ensured:
            return
        with _Unavailable():
            if not self.client.indices.exists(index=self.alias):
                try:
                    self._create_index(f"{self.alias}-0", with_alias=True)
                except ApiError as exc:  # another process made it first
                    if exc.status_code != 400 or not self.client.indices.exists(index=self.alias):
                        raise
        self._ensured = True

    def refresh(self) -> None:
        with _Unavailable():
            self.client.indices.refresh(index=self.alias)

    def delete_index(self) -> None:
        """Drop the alias and every index behind it (tests, and leaving Elasticsearch)."""
        with _Unavailable():
            if self.client.indices.exists_alias(name=self.alias):
                for name in self.client.indices.get_alias(name=self.alias):
                    self.client.indices.delete(index=name, ignore_unavailable=True)
            elif self.client.indices.exists(index=self.alias):
                self.client.indices.delete(index=self.alias)
        self._ensured = False

    # --- search -----------------------------------------------------------------------------

    def search(self, query: LotQuery) -> SearchResult:
        self.ensure_index()
        search = build_search(query).using(self.client).index(self.alias)
        with _Unavailable():
            response = search.execute()
        aggs = response.aggregations
        facets = {
            name: [(bucket.key, bucket.doc_count) for bucket in getattr(aggs, name).buckets]
            for name in ("category", "province", "trade_mode")
        }
        return SearchResult(
            ids=[int(hit.meta.id) for hit in response],
            total=response.hits.total.value,
            page=query.page,
            page_size=query.page_size,
            facets=facets,
        )

    # --- indexing ---------------------------------------------------------------------------

    def _actions(self, ids: list[int], categories, index: str):
        lots = {lot.pk: lot for lot in lots_for_indexing(ids, status__in=INDEXED_STATUSES)}
        for pk in ids:
            lot = lots.get(pk)
            if lot is None:  # gone, or no longer public
                yield {"_op_type": "delete", "_index": index, "_id": str(pk)}
            else:
                yield {
                    "_op_type": "index",
                    "_index": index,
                    "_id": str(pk),
                    "_source": lot_source(lot, categories),
                }

    def _bulk(self, actions) -> int:
        with _Unavailable():
            indexed, errors = helpers.bulk(self.client, actions, ignore_status=(404,), raise_on_error=True)
        return indexed

    def index_lots(self, ids: Iterable[int]) -> int:
        self.ensure_index()
        return self._index_into(ids, self.alias)

    def _index_into(self, ids: Iterable[int], index: str) -> int:
        written = 0
        categories = None
        for batch in batched(unique_ids(ids)):
            categories = categories if categories is not None else category_map()
            written += self._bulk(self._actions(batch, categories, index))
        return written

    def remove_lots(self, ids: Iterable[int]) -> None:
        self.ensure_index()
        self._bulk({"_op_type": "delete", "_index": self.alias, "_id": str(pk)} for pk in unique_ids(ids))

    def rebuild(self, progress: Progress | None = None) -> int:
        """Fill a new index, then point the alias at it and drop the old ones, in one step. Lots
        changed while it runs are written to the old index; the next reconcile catches them up."""
        name = f"{self.alias}-{timezone.now().astimezone(UTC):%Y%m%d%H%M%S%f}"
        with _Unavailable():
            self._create_index(name, with_alias=False)
            self.client.indices.put_settings(index=name, settings={"index": {"refresh_interval": "-1"}})
        ids = list(
            Lot.objects.filter(status__in=INDEXED_STATUSES).order_by("pk").values_list("pk", flat=True)
        )
        done = 0
        if progress:
            progress(0, len(ids))
        for batch in batched(ids):
            self._index_into(batch, name)
            done += len(batch)
            if progress:
                progress(done, len(ids))
        with _Unavailable():
            self.client.indices.put_settings(index=name, settings={"index": {"refresh_interval": None}})
            self.client.indices.refresh(index=name)
            actions: list[dict] = [{"add": {"index": name, "alias": self.alias}}]
            old: list[str] = []
            if self.client.indices.exists_alias(name=self.alias):
                old = [n for n in self.client.indices.get_alias(name=self.alias) if n != name]
                actions += [{"remove": {"index": n, "alias": self.alias}} for n in old]
            elif self.client.indices.exists(index=self.alias):  # a concrete index under the alias's name
                actions.append({"remove_index": {"index": self.alias}})
            self.client.indices.update_aliases(actions=actions)
            for n in old:
                self.client.indices.delete(index=n, ignore_unavailable=True)
        self._ensured = True
        return done

    def reconcile(self) -> dict[str, int]:
        """Compare ids and ``sync_key`` (``updated_at`` and the market state) of the database's public
        lots with the index; re-index what differs, drop what should not be there."""
        self.ensure_index()
        wanted = {
            pk: sync_key(updated_at, status, price, closes_at, mode)
            for pk, updated_at, status, price, closes_at, mode in Lot.objects.filter(
                status__in=INDEXED_STATUSES
            ).values_list("pk", "updated_at", "status", "current_price", "closes_at", "trade_mode")
        }
        with _Unavailable():
            held = {
                int(hit["_id"]): hit.get("_source", {}).get("sync_key")
                for hit in helpers.scan(
                    self.client, index=self.alias, query={"query": {"match_all": {}}, "_source": ["sync_key"]}
                )
            }
        stale = [pk for pk, key in wanted.items() if held.get(pk) != key]
        extra = [pk for pk in held if pk not in wanted]
        # index_lots reads each lot again: a lot published since `wanted` was read is kept, not dropped.
        self.index_lots(stale + extra)
        return {"indexed": len(stale), "removed": len(extra)}
