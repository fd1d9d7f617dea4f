"""Statistical disclosure control of the published tables: which cells to leave blank.

Pure functions, no database. A table is a grid of rows × columns with its margins: a total per row,
a total per column and a grand total, all published unless suppressed. Positions are
``(row, column)`` pairs where either may be :data:`TOTAL`.

**Primary suppression** (:func:`cell_sensitive`): a cell with trades in it is sensitive when fewer
than 3 distinct sellers or 3 distinct buyers make it up, or one organisation (on either side) has
more than half of its tonnes. An empty cell discloses nothing and is published as zero.

**Secondary (complementary) suppression** (:func:`suppress`): published cells and totals must not
give a suppressed cell away. With margins the table is a system of linear equations (each row's
cells sum to its total, each column's likewise, the totals to the grand total); a suppressed
value is recoverable from the published ones exactly when it is fixed by that system. Seen as a
graph with a node per row and per column (the margins included) and an edge per suppressed
position, that happens exactly when its edge is a *bridge*: an edge on no cycle. The simple case is
a row or column holding a single suppressed cell (total minus the others gives it away), but a
chain of suppressions joining two otherwise protected blocks can also be solved, which the usual
"at least two per line" rule misses. So, until no suppressed edge is a bridge, take a bridge and
suppress the cheapest set of further cells that closes a cycle through it: the shortest path
between its two ends, where a suppressed position costs nothing and a published one costs, in this
order of priority, being a grand total, being a margin, being an empty cell (often known to be
zero, a poor hiding place) and its tonnes. Every round adds at least one cell, so it ends.

A cycle means the suppressed values can move together (+d, -d around the cycle) without changing
any published figure, so no suppressed value is determined. The width of that range (interval
protection) is not checked; cells are protected against exact recovery.
"""

import heapq
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal


class _Total:
    """The margin of a row or a column."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self):
        return "TOTAL"

    def __reduce__(self):
        return (_Total, ())


TOTAL = _Total()

MIN_SELLERS = 3
MIN_BUYERS = 3
MAX_SHARE = Decimal("0.5")


@dataclass(frozen=True)
class CellStats:
    """What disclosure control needs of one cell: its trades and tonnes, how many distinct sellers and
    buyers make it up and the tonnes of the largest single seller and buyer."""

    trades: int = 0
    tonnes: Decimal = Decimal(0)
    sellers: int = 0
    buyers: int = 0
    top_seller_tonnes: Decimal = Decimal(0)
    top_buyer_tonnes: Decimal = Decimal(0)

    @property
    def empty(self) -> bool:
        return self.trades <= 0


@dataclass(frozen=True)
class Rule:
    min_sellers: int = MIN_SELLERS
    min_buyers: int = MIN_BUYERS
    max_share: Decimal = MAX_SHARE


def cell_sensitive(cell: CellStats, rule: Rule = Rule()) -> bool:
    """Primary rule: too few sellers or buyers, or one organisation above ``max_share`` of the tonnes."""
    if cell.empty:
        return False
    if cell.sellers < rule.min_sellers or cell.buyers < rule.min_buyers:
        return True
    limit = rule.max_share * cell.tonnes
    return cell.top_seller_tonnes > limit or cell.top_buyer_tonnes > limit


def _node_row(row):
    return ("r", row)


def _node_col(col):
    return ("c", col)


def bridges(edges: Iterable[tuple[Hashable, Hashable]]) -> set[tuple[Hashable, Hashable]]:
    """The edges of an undirected simple graph that lie on no cycle (Tarjan)."""
    graph: dict = defaultdict(list)
    edge_list = list(edges)
    for index, (a, b) in enumerate(edge_list):
        graph[a].append((b, index))
        graph[b].append((a, index))
    order: dict = {}
    low: dict = {}
    found: set = set()
    counter = 0
    for root in list(graph):
        if root in order:
            continue
        order[root] = low[root] = counter
        counter += 1
        stack = [(root, -1, iter(graph[root]))]
        while stack:
            node, via, neighbours = stack[-1]
            advanced = False
            for other, index in neighbours:
                if index == via:
                    continue
                if other in order:
                    low[node] = min(low[node], order[other])
                else:
                    order[other] = low[other] = counter
                    counter += 1
                    stack.append((other, index, iter(graph[other])))
                    advanced = True
                    break
            if advanced:
                continue
            stack.pop()
            if stack:
                parent = stack[-1][0]
                low[parent] = min(low[parent], low[node])
                if low[node] > order[parent]:
                    found.add(edge_list[via])
    return found


def _cost(position, cell: CellStats) -> tuple:
    """The price of suppressing a published position, compared as a tuple (see the module doc)."""
    row, col = position
    grand = row is TOTAL and col is TOTAL
    margin = (row is TOTAL or col is TOTAL) and not grand
    return (int(grand), int(margin), int(cell.empty), cell.tonnes)


def _add(a: tuple, b: tuple) -> tuple:
    return tuple(x + y for x, y in zip(a, b, strict=True))


ZERO_COST = (0, 0, 0, Decimal(0))


def _cheapest_cycle(
    bridge: tuple, rows: Sequence, cols: Sequence, suppressed: set, cells: Mapping
) -> list[tuple]:
    """The published positions to suppress so that ``bridge`` (a suppressed position) lies on a cycle:
    the cheapest path from its row to its column in the complete row × column graph without it."""
    start, goal = _node_row(bridge[0]), _node_col(bridge[1])
    best = {start: ZERO_COST}
    previous: dict = {}
    tie = 0
    heap = [(ZERO_COST, tie, start)]
    done = set()
    while heap:
        cost, _, node = heapq.heappop(heap)
        if node in done:
            continue
        done.add(node)
        if node == goal:
            break
        kind, key = node
        others = [_node_col(c) for c in cols] if kind == "r" else [_node_row(r) for r in rows]
        for other in others:
            position = (key, other[1]) if kind == "r" else (other[1], key)
            if position == bridge or other in done:
                continue
            step = ZERO_COST if position in suppressed else _cost(position, cells.get(position, CellStats()))
            total = _add(cost, step)
            if other not in best or total < best[other]:
                best[other] = total
                previous[other] = (node, position)
                tie += 1
                heapq.heappush(heap, (total, tie, other))
    if goal not in previous:  # a table of one row or one column without margins: nothing can hide it
        return []
    path, node = [], goal
    while node != start:
        node, position = previous[node]
        path.append(position)
    return [p for p in path if p not in suppressed]


@dataclass(frozen=True)
class Suppression:
    primary: frozenset
    secondary: frozenset

    @property
    def all(self) -> frozenset:
        return self.primary | self.secondary

    def __contains__(self, position) -> bool:
        return position in self.primary or position in self.secondary


def suppress(
    cells: Mapping[tuple, CellStats], rows: Sequence, cols: Sequence, rule: Rule = Rule()
) -> Suppression:
    """The positions of a table with margins to leave blank.

    ``cells`` maps ``(row, col)`` to its figures for the inner cells and the margins (``(row,
    TOTAL)``, ``(TOTAL, col)``, ``(TOTAL, TOTAL)``); a missing position is empty. Margins must be
    the sums of their cells for tonnes and trades (their distinct counts come from the data, they
    are not sums). The result is deterministic for a given input: ties go to the order of ``rows``
    and ``cols``.
    """
    all_rows = [*rows, TOTAL]
    all_cols = [*cols, TOTAL]
    primary = {
        (r, c) for r in all_rows for c in all_cols if cell_sensitive(cells.get((r, c), CellStats()), rule)
    }
    suppressed = set(primary)
    order = {(r, c): i for i, (r, c) in enumerate((r, c) for r in all_rows for c in all_cols)}
    while True:
        open_edges = bridges((_node_row(r), _node_col(c)) for r, c in suppressed)
        if not open_edges:
            break
        positions = sorted(
            ((a[1], b[1]) if a[0] == "r" else (b[1], a[1]) for a, b in open_edges), key=order.get
        )
        added = _cheapest_cycle(positions[0], all_rows, all_cols, suppressed, cells)
        if not added:
            break
        suppressed.update(added)
    return Suppression(primary=frozenset(primary), secondary=frozenset(suppressed - primary))
