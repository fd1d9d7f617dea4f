"""The interface every search backend implements (after Wagtail's ``wagtail.search.backends``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from listings.models import Lot
from listings.search.documents import INDEX_RELATED, lot_tokens, lots_filtered
from listings.search.query import LotQuery, SearchResult
from listings.search.tokens import query_tokens

Progress = Callable[[int, int], None]  # (lots done, lots in all)
BATCH_SIZE = 500


class SearchUnavailable(ConnectionError):
    """The search service cannot be reached. A ConnectionError, so indexing tasks that autoretry on
    ConnectionError retry; a search view can answer 503."""


class SearchBackend:
    name = "base"

    def search(self, query: LotQuery) -> SearchResult:
        """One page of lots matching ``query``, with the total and the facets."""
        raise NotImplementedError

    def index_lots(self, ids: Iterable[int]) -> int:
        """Bring these lots in line with the database: index (or re-index) those that exist, drop the
        others from the index. Returns how many lots were written."""
        raise NotImplementedError

    def remove_lots(self, ids: Iterable[int]) -> None:
        raise NotImplementedError

    def rebuild(self, progress: Progress | None = None) -> int:
        """Index every lot afresh; ``progress(done, total)`` is called after each batch."""
        raise NotImplementedError

    def reconcile(self) -> dict[str, int]:
        """Find lots the index misses or holds stale and fix them (the periodic safety net)."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Make everything indexed so far visible to searches (a no-op where writes are immediate)."""

    def lot_matches(self, query: LotQuery, lot_id: int) -> bool:
        """Whether the lot matches ``query`` now (for saved-search alerts).

        Answered from the database and the lot's freshly computed tokens, not from the index: the
        alert task may run before the indexing task, and a match must not depend on that order.
        The filters are those of the database backend, the text rule that of every backend: the lot
        has every token of the query.
        """
        lot = lots_filtered(query).filter(pk=lot_id).select_related(*INDEX_RELATED).first()
        if lot is None:
            return False
        tokens = query_tokens(query.text)
        return not tokens or set(tokens) <= set(lot_tokens(lot))


def batched(ids: Iterable[int], size: int = BATCH_SIZE) -> Iterator[list[int]]:
    batch: list[int] = []
    for pk in ids:
        batch.append(pk)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def unique_ids(ids: Iterable[int]) -> list[int]:
    return sorted({int(pk) for pk in ids})


def lots_for_indexing(ids: list[int], **filters) -> list[Lot]:
    return list(Lot.objects.filter(pk__in=ids, **filters).select_related(*INDEX_RELATED))
