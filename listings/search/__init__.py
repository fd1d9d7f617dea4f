"""Search of lots behind one interface, with swappable backends (after Wagtail's search backends).

    from listings.search import LotQuery, get_backend

    result = get_backend().search(LotQuery.from_params(request.query_params))
    result.ids, result.total, result.facets

* :class:`LotQuery`: what is asked (text, category with descendants, region of any level, economic
  zone, quantity and price ranges, trade mode, hazardous, closing within hours, distance from a
  point, statuses, sort, page); ``from_params`` / ``to_params`` for URLs and saved searches.
* :class:`SearchResult`: the page's lot ids in order, the total, and facet counts.
* :func:`get_backend`: :class:`ElasticsearchBackend` when ``settings.ELASTICSEARCH_URL`` is set,
  else :class:`DatabaseBackend` (PostgreSQL full text, or LIKE on SQLite). Both implement
  ``search``, ``index_lots``, ``remove_lots``, ``rebuild``, ``reconcile`` and ``lot_matches``.
* :func:`tokenise`: the tokens of a text (jieba search mode, see :mod:`listings.search.tokens`).

Sync: ``listings.tasks.lot_index`` (after each lifecycle change), ``listings.search.tasks.lots_index``
and the periodic ``listings.search.tasks.lots_reconcile``; ``manage.py search_rebuild`` rebuilds.
"""

from django.conf import settings

from listings.search.base import SearchBackend, SearchUnavailable
from listings.search.query import SORTS, LotQuery, SearchResult
from listings.search.tokens import tokenise

__all__ = [
    "SORTS",
    "DatabaseBackend",
    "ElasticsearchBackend",
    "LotQuery",
    "SearchBackend",
    "SearchResult",
    "SearchUnavailable",
    "get_backend",
    "tokenise",
]


_elastic_backends: dict[tuple[str, str], SearchBackend] = {}


def get_backend() -> SearchBackend:
    """The active backend: Elasticsearch when ``ELASTICSEARCH_URL`` is set, else the database."""
    url = getattr(settings, "ELASTICSEARCH_URL", "")
    if url:
        from listings.search.elastic import ElasticsearchBackend, index_alias

        key = (url, index_alias())
        backend = _elastic_backends.get(key)
        if backend is None:  # one per URL and index: it remembers that the index exists
            backend = _elastic_backends[key] = ElasticsearchBackend(url, alias=key[1])
        return backend
    from listings.search.database import DatabaseBackend

    return DatabaseBackend()


def __getattr__(name: str):
    # The backends load lazily: the Elasticsearch client is imported only where it is used.
    if name == "DatabaseBackend":
        from listings.search.database import DatabaseBackend

        return DatabaseBackend
    if name == "ElasticsearchBackend":
        from listings.search.elastic import ElasticsearchBackend

        return ElasticsearchBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
