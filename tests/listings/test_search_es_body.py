"""The Elasticsearch backend without a cluster: the request bodies ``build_search_body`` makes, the
mapping and documents, and the backend's requests (index creation, bulk, alias swap, reconcile)
against a small in-memory stand-in that speaks HTTP to the real client.

Whether a cluster finds the right lots with those bodies is the contract tests' job
(``test_search_contract.py``, run whenever ``ELASTICSEARCH_URL`` is set).
"""

import json
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node import NodeApiResponse
from elasticsearch import Elasticsearch

from listings.models import Lot, LotStatus
from listings.search import SORTS, LotQuery, SearchUnavailable
from listings.search.documents import category_map, lot_tokens
from listings.search.elastic import (
    ElasticsearchBackend,
    build_search_body,
    index_definition,
    lot_source,
    sync_key,
)
from listings.search.tokens import query_tokens

STATUS = {"terms": {"status": ["published"]}}
NEWEST = [{"published_at": {"order": "desc", "missing": "_last"}}, {"lot_id": {"order": "desc"}}]
AGGS = {
    "category": {"terms": {"field": "category_path", "include": "[^.]+", "size": 200}},
    "province": {"terms": {"field": "province", "size": 50}},
    "trade_mode": {"terms": {"field": "trade_mode", "size": 20}},
}


def body(**fields):
    return build_search_body(LotQuery(**fields), zone_provinces=fields.pop("_zone", None))


def filters(b: dict) -> list[dict]:
    return b["query"]["bool"]["filter"]


# --- request bodies -------------------------------------------------------------------------


def test_the_empty_query_filters_on_status_and_sorts_newest_first():
    assert body() == {
        "query": {"bool": {"filter": [STATUS]}},
        "aggs": AGGS,
        "sort": NEWEST,
        "from": 0,
        "size": 20,
        "track_total_hits": True,
        "_source": False,
    }


def test_text_is_matched_on_the_same_tokens_with_every_token_required():
    b = body(text="粉煤灰 江苏")
    assert b["query"]["bool"]["must"] == [
        {"match": {"tokens": {"query": "粉煤 煤灰 粉煤灰 江苏", "operator": "and"}}}
    ]
    assert b["query"]["bool"]["must"][0]["match"]["tokens"]["query"].split() == query_tokens("粉煤灰 江苏")
    assert b["sort"] == ["_score", *NEWEST]  # relevance, ties newest then -id
    assert body(text="重废 Copper")["query"]["bool"]["must"][0]["match"]["tokens"]["query"] == "重废 copper"
    assert "must" not in body(text="，。！")["query"]["bool"]  # no tokens: no text condition
    assert body(text="，。！")["sort"] == NEWEST


def test_category_filters_on_the_path_and_the_facet_goes_one_level_down():
    b = body(category="nonferrous.copper")
    assert {"term": {"category_path": "nonferrous.copper"}} in filters(b)
    assert b["aggs"]["category"]["terms"]["include"] == "nonferrous\\.copper\\.[^.]+"
    assert body(category="a+b")["aggs"]["category"]["terms"]["include"] == "a\\+b\\.[^.]+"  # regex-escaped


@pytest.mark.parametrize(
    ("region", "condition"),
    [
        ("320000", {"term": {"province": "320000"}}),
        ("320500", {"term": {"city": "320500"}}),
        ("320506", {"term": {"county": "320506"}}),
        ("110100", {"term": {"city": "110100"}}),  # 北京市's 市辖区
        ("441900", {"term": {"city": "441900"}}),  # 东莞市, a city without counties
    ],
)
def test_region_filters_on_the_field_of_its_level(region, condition):
    assert filters(body(region=region)) == [STATUS, condition]


def test_zone_filters_on_its_provinces():
    b = build_search_body(LotQuery(zone="jingjinji"), zone_provinces=["110000", "120000", "130000"])
    assert filters(b) == [STATUS, {"terms": {"province": ["110000", "120000", "130000"]}}]


def test_ranges_mode_hazardous_deadline_and_distance():
    b = body(
        quantity_min=Decimal("10"),
        quantity_max=Decimal("2000.5"),
        price_max=Decimal("80"),
        trade_mode="auction",
        hazardous=False,
        closing_within_hours=24,
        near=(31.3, 120.6),
        within_km=50,
    )
    assert filters(b) == [
        STATUS,
        {"range": {"quantity": {"gte": 10.0, "lte": 2000.5}}},
        {"range": {"current_price": {"lte": 80.0}}},
        {"term": {"trade_mode": "auction"}},
        {"term": {"hazardous": False}},
        {"range": {"closes_at": {"gt": "now", "lte": "now+24h"}}},
        {"geo_distance": {"distance": "50km", "location": {"lat": 31.3, "lon": 120.6}}},
    ]
    assert filters(body(hazardous=True, price_min=Decimal("0")))[1:] == [
        {"range": {"current_price": {"gte": 0.0}}},
        {"term": {"hazardous": True}},
    ]


def test_statuses_are_a_terms_filter():
    assert filters(body(statuses=("published", "closed"))) == [{"terms": {"status": ["published", "closed"]}}]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("newest", NEWEST),
        ("relevance", NEWEST),  # without text
        ("closing", [{"closes_at": {"order": "asc", "missing": "_last"}}, {"lot_id": {"order": "desc"}}]),
        (
            "price_asc",
            [{"current_price": {"order": "asc", "missing": "_last"}}, {"lot_id": {"order": "desc"}}],
        ),
        (
            "price_desc",
            [{"current_price": {"order": "desc", "missing": "_last"}}, {"lot_id": {"order": "desc"}}],
        ),
    ],
)
def test_every_sort_ends_with_the_id_tie_breaker(sort, expected):
    assert sort in SORTS
    assert body(sort=sort)["sort"] == expected
    assert body(sort=sort, text="废钢")["sort"][-1] == {"lot_id": {"order": "desc"}}


def test_pages():
    b = body(page=3, page_size=50)
    assert (b["from"], b["size"]) == (100, 50)


# --- mapping and documents ------------------------------------------------------------------


def test_mapping():
    definition = index_definition("market-lots-1").to_dict()
    mapping = definition["mappings"]
    assert mapping["dynamic"] == "strict"
    types = {name: spec["type"] for name, spec in mapping["properties"].items()}
    assert types == {
        "lot_id": "long", "tokens": "text", "status": "keyword", "category": "keyword", "category_path": "keyword",
        "province": "keyword", "city": "keyword", "county": "keyword", "trade_mode": "keyword",
        "hazardous": "boolean", "quantity": "scaled_float", "current_price": "scaled_float", "closes_at": "date",
        "published_at": "date", "updated_at": "date", "location": "geo_point", "sync_key": "keyword",
    }  # fmt: skip
    assert mapping["properties"]["tokens"]["analyzer"] == "whitespace"
    assert mapping["properties"]["quantity"]["scaling_factor"] == 1000
    assert mapping["properties"]["current_price"]["scaling_factor"] == 100
    assert definition["settings"] == {"number_of_shards": 1}


@pytest.mark.django_db
def test_a_lots_document(search_lots):
    lot = Lot.objects.select_related("category", "seller", "region__parent__parent").get(
        pk=search_lots["bright_sz"].pk
    )
    source = lot_source(lot, category_map())
    assert source["tokens"].split() == lot_tokens(lot)
    assert {"光亮铜", "copper", "bright", "苏州", "江苏", "竞价"} <= set(source["tokens"].split())
    assert source["category"] == "sxcopper.bright" and source["category_path"] == [
        "sxcopper",
        "sxcopper.bright",
    ]
    assert (source["province"], source["city"], source["county"]) == ("320000", "320500", "320506")
    assert (source["quantity"], source["current_price"], source["trade_mode"]) == (2.0, 68000.0, "auction")
    assert source["location"] == {"lat": lot.region.latitude, "lon": lot.region.longitude}
    assert source["sync_key"] == sync_key(
        lot.updated_at, "published", Decimal("68000.00"), lot.closes_at, "auction"
    )
    slag = Lot.objects.select_related("category", "seller", "region__parent__parent").get(
        pk=search_lots["slag_ts"].pk
    )
    assert "current_price" not in lot_source(slag, category_map()) and "closes_at" not in lot_source(
        slag, category_map()
    )


# --- the backend's requests, against an in-memory stand-in ------------------------------------


class FakeCluster:
    """Enough of Elasticsearch's REST API for the backend: indices, aliases, bulk, scroll, and a
    canned answer to searches (recorded, so the tests can read the bodies sent)."""

    def __init__(self):
        self.indices: dict[str, dict] = {}  # name -> {"docs": {id: source}, "aliases": set, "body": {...}}
        self.requests: list[tuple[str, str, object]] = []
        self.search_answer: dict | None = None
        self.down = False

    def resolve(self, name: str) -> list[str]:
        if name in self.indices:
            return [name]
        return [n for n, index in self.indices.items() if name in index["aliases"]]

    def handle(self, method: str, target: str, raw: bytes | None):
        if self.down:
            raise ConnectionRefusedError("cluster down")
        url = urlsplit(target)
        parts = [p for p in url.path.split("/") if p]
        params = parse_qs(url.query)
        body = None
        if raw:
            text = raw.decode()
            body = (
                [json.loads(line) for line in text.splitlines() if line]
                if parts[-1] == "_bulk"
                else json.loads(text)
            )
        self.requests.append((method, url.path, body))

        if parts == ["_bulk"]:
            return 200, self.bulk(body)
        if parts == ["_aliases"]:
            for action in body["actions"]:
                ((kind, spec),) = action.items()
                if kind == "add":
                    self.indices[spec["index"]]["aliases"].add(spec["alias"])
                elif kind == "remove":
                    self.indices[spec["index"]]["aliases"].discard(spec["alias"])
                elif kind == "remove_index":
                    del self.indices[spec["index"]]
            return 200, {"acknowledged": True}
        if parts[0] == "_alias":
            names = [n for n, index in self.indices.items() if parts[1] in index["aliases"]]
            if method == "HEAD":
                return (200 if names else 404), None
            return 200, {n: {"aliases": {parts[1]: {}}} for n in names}
        if parts[:2] == ["_search", "scroll"]:
            if method == "DELETE":
                return 200, {"succeeded": True, "num_freed": 1}
            return 200, self.hits([], scroll=True)
        name = parts[0]
        if len(parts) == 1:
            if method == "HEAD":
                return (200 if self.resolve(name) else 404), None
            if method == "PUT":
                if name in self.indices:
                    return 400, {"error": {"type": "resource_already_exists_exception"}, "status": 400}
                self.indices[name] = {
                    "docs": {},
                    "aliases": set((body or {}).get("aliases", {})),
                    "body": body,
                }
                return 200, {"acknowledged": True, "index": name}
            if method == "DELETE":
                self.indices.pop(name, None)
                return 200, {"acknowledged": True}
        if parts[1:] == ["_settings"]:
            return 200, {"acknowledged": True}
        if parts[1:] == ["_refresh"]:
            return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
        if parts[1:] == ["_search"]:
            if "scroll" in params:  # helpers.scan: every document, with the _source asked for
                fields = body.get("_source")
                docs = [
                    {
                        "_index": n,
                        "_id": pk,
                        "_source": {k: v for k, v in src.items() if not fields or k in fields},
                    }
                    for n in self.resolve(name)
                    for pk, src in self.indices[n]["docs"].items()
                ]
                return 200, self.hits(docs, scroll=True)
            return 200, self.search_answer
        return 404, {"error": {"type": "not_handled", "reason": f"{method} {target}"}, "status": 404}

    def bulk(self, lines):
        items, i = [], 0
        while i < len(lines):
            ((op, meta),) = lines[i].items()
            names = self.resolve(meta["_index"])
            assert len(names) == 1, f"writes go to exactly one index, not {names}"
            docs = self.indices[names[0]]["docs"]
            if op == "delete":
                found = docs.pop(meta["_id"], None) is not None
                items.append({"delete": {"_id": meta["_id"], "status": 200 if found else 404}})
                i += 1
            else:
                docs[meta["_id"]] = lines[i + 1]
                items.append({op: {"_id": meta["_id"], "status": 201}})
                i += 2
        return {
            "took": 1,
            "errors": any(item[next(iter(item))]["status"] >= 300 for item in items),
            "items": items,
        }

    @staticmethod
    def hits(docs, scroll=False):
        answer = {
            "took": 1,
            "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {"total": {"value": len(docs), "relation": "eq"}, "hits": docs},
        }
        if scroll:
            answer["_scroll_id"] = "scroll-1"
        return answer

    def docs(self, alias: str) -> dict[str, dict]:
        (name,) = self.resolve(alias)
        return self.indices[name]["docs"]


@pytest.fixture
def cluster():
    return FakeCluster()


@pytest.fixture
def es(cluster):
    class Node(BaseNode):
        _CLIENT_META_HTTP_CLIENT = ("fake", "1")

        def perform_request(self, method, target, body=None, headers=None, request_timeout=None):
            try:
                status, payload = cluster.handle(method, target, body)
            except ConnectionRefusedError as exc:
                from elastic_transport import ConnectionError as TransportConnectionError

                raise TransportConnectionError(str(exc)) from exc
            meta = ApiResponseMeta(
                status=status,
                http_version="1.1",
                headers=HttpHeaders(
                    {"content-type": "application/json", "x-elastic-product": "Elasticsearch"}
                ),
                duration=0.0,
                node=self.config,
            )
            return NodeApiResponse(meta, b"" if payload is None else json.dumps(payload).encode())

    client = Elasticsearch("http://fake-es:9200", node_class=Node, max_retries=0)
    return ElasticsearchBackend("http://fake-es:9200", client=client, alias="t-lots")


@pytest.mark.django_db
def test_indexing_creates_the_index_and_writes_public_lots_only(es, cluster, search_lots):
    ids = [lot.pk for lot in search_lots.values()]
    es.index_lots(ids)
    (name,) = cluster.indices
    assert name == "t-lots-0" and cluster.indices[name]["aliases"] == {"t-lots"}
    assert cluster.indices[name]["body"]["mappings"] == index_definition(name).to_dict()["mappings"]
    public = {str(lot.pk) for lot in search_lots.values() if lot.status in ("published", "closed", "expired")}
    assert set(cluster.docs("t-lots")) == public
    doc = cluster.docs("t-lots")[str(search_lots["flyash_sz"].pk)]
    assert {"粉煤灰", "江苏"} <= set(doc["tokens"].split()) and doc["county"] == "320508"

    # Withdrawn since: the next index_lots drops it; remove_lots drops whatever it is given.
    Lot.objects.filter(pk=search_lots["flyash_sz"].pk).update(status=LotStatus.WITHDRAWN)
    es.index_lots([search_lots["flyash_sz"].pk, 999999])
    assert str(search_lots["flyash_sz"].pk) not in cluster.docs("t-lots")
    es.remove_lots([search_lots["oil_sh"].pk])
    assert str(search_lots["oil_sh"].pk) not in cluster.docs("t-lots")


@pytest.mark.django_db
def test_search_sends_the_body_and_reads_ids_total_and_facets(es, cluster, search_lots):
    cluster.search_answer = {
        **FakeCluster.hits([{"_index": "t-lots-0", "_id": "42"}, {"_index": "t-lots-0", "_id": "7"}]),
        "aggregations": {
            "category": {
                "buckets": [{"key": "sxbulk", "doc_count": 20}, {"key": "sxcopper", "doc_count": 11}]
            },
            "province": {"buckets": [{"key": "320000", "doc_count": 31}]},
            "trade_mode": {
                "buckets": [{"key": "fixed", "doc_count": 30}, {"key": "auction", "doc_count": 1}]
            },
        },
    }
    query = LotQuery(text="粉煤灰 江苏", zone="yangtze-river-delta", page=2, page_size=2)
    result = es.search(query)
    assert (result.ids, result.total, result.page, result.page_size) == ([42, 7], 2, 2, 2)
    assert result.facets == {
        "category": [("sxbulk", 20), ("sxcopper", 11)],
        "province": [("320000", 31)],
        "trade_mode": [("fixed", 30), ("auction", 1)],
    }
    method, path, sent = cluster.requests[-1]
    assert path == "/t-lots/_search"
    assert sent == build_search_body(query, zone_provinces=["310000", "320000", "330000", "340000"])


@pytest.mark.django_db
def test_rebuild_fills_a_new_index_and_swaps_the_alias(es, cluster, search_lots):
    es.index_lots([search_lots["oil_sh"].pk])  # the old index, behind the alias
    progress = []
    done = es.rebuild(progress=lambda n, total: progress.append((n, total)))
    public = {str(lot.pk) for lot in search_lots.values() if lot.status in ("published", "closed", "expired")}
    assert done == len(public) and progress[-1] == (done, done)
    (name,) = cluster.indices  # the old one is gone
    assert name.startswith("t-lots-2") and cluster.indices[name]["aliases"] == {"t-lots"}
    assert set(cluster.docs("t-lots")) == public
    swap = next(body for method, path, body in cluster.requests if path == "/_aliases")
    assert swap["actions"] == [
        {"add": {"index": name, "alias": "t-lots"}},
        {"remove": {"index": "t-lots-0", "alias": "t-lots"}},
    ]


@pytest.mark.django_db
def test_reconcile_compares_sync_keys(es, cluster, search_lots):
    es.index_lots([lot.pk for lot in search_lots.values()])
    assert es.reconcile() == {"indexed": 0, "removed": 0}
    docs = cluster.docs("t-lots")
    del docs[str(search_lots["flyash_sz"].pk)]  # lost
    Lot.objects.filter(pk=search_lots["bright_sz"].pk).update(
        current_price=Decimal("70000")
    )  # trading, updated_at untouched
    Lot.objects.filter(pk=search_lots["occ_cd"].pk).update(status=LotStatus.WITHDRAWN)  # no longer public
    assert es.reconcile() == {"indexed": 2, "removed": 1}
    docs = cluster.docs("t-lots")
    assert str(search_lots["flyash_sz"].pk) in docs and str(search_lots["occ_cd"].pk) not in docs
    assert docs[str(search_lots["bright_sz"].pk)]["current_price"] == 70000.0
    assert es.reconcile() == {"indexed": 0, "removed": 0}


@pytest.mark.django_db
def test_an_unreachable_cluster_raises_search_unavailable(es, cluster, search_lots):
    cluster.down = True
    with pytest.raises(SearchUnavailable):
        es.search(LotQuery())
    with pytest.raises(ConnectionError):  # what the indexing tasks retry on
        es.index_lots([search_lots["oil_sh"].pk])


@pytest.mark.django_db
def test_rebuild_on_an_empty_cluster_and_over_a_plain_index(es, cluster, search_lots):
    es.rebuild()
    (name,) = cluster.indices
    assert cluster.indices[name]["aliases"] == {"t-lots"}  # no stray "t-lots-0" made on the way
    # A concrete index holding the alias's name (made by hand, or by a write before the alias) is replaced.
    cluster.indices = {"t-lots": {"docs": {}, "aliases": set(), "body": {}}}
    es.rebuild()
    (name,) = cluster.indices
    assert name.startswith("t-lots-2") and cluster.indices[name]["aliases"] == {"t-lots"}
