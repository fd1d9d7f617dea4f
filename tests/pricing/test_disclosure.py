"""Disclosure control of the open data (``pricing.disclosure``): the primary rule, complementary
suppression, and attackers who subtract published cells from published totals, or solve every
published equation at once."""

from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pricing.disclosure import TOTAL, CellStats, Rule, bridges, cell_sensitive, suppress

SAFE = {"sellers": 5, "buyers": 5}


def cell(tonnes, trades=10, sellers=5, buyers=5, top_seller=None, top_buyer=None) -> CellStats:
    tonnes = Decimal(tonnes)
    return CellStats(
        trades=trades,
        tonnes=tonnes,
        sellers=sellers,
        buyers=buyers,
        top_seller_tonnes=tonnes / 5 if top_seller is None else Decimal(top_seller),
        top_buyer_tonnes=tonnes / 5 if top_buyer is None else Decimal(top_buyer),
    )


def with_margins(inner: dict, rows, cols, margin=None) -> dict:
    """The table with its totals (safe organisations counts unless ``margin`` says otherwise)."""
    margin = margin or {}
    cells = dict(inner)

    def total(positions):
        parts = [inner[p] for p in positions if p in inner]
        return cell(
            sum((p.tonnes for p in parts), Decimal(0)),
            trades=sum(p.trades for p in parts),
            sellers=20,
            buyers=20,
        )

    for r in rows:
        cells[(r, TOTAL)] = margin.get((r, TOTAL)) or total([(r, c) for c in cols])
    for c in cols:
        cells[(TOTAL, c)] = margin.get((TOTAL, c)) or total([(r, c) for r in rows])
    cells[(TOTAL, TOTAL)] = margin.get((TOTAL, TOTAL)) or total(list(inner))
    return cells


# --- the attacker -----------------------------------------------------------------------------------


def subtraction_attack(cells: dict, rows, cols, hidden) -> dict:
    """What total minus published cells gives away: for each published total whose line has exactly
    one suppressed cell, that cell's tonnes."""
    found = {}
    lines = [[(r, c) for c in cols] + [(r, TOTAL)] for r in [*rows, TOTAL]]
    lines += [[(r, c) for r in rows] + [(TOTAL, c)] for c in [*cols, TOTAL]]
    for line in lines:
        members, total = line[:-1], line[-1]
        if total in hidden:
            continue
        missing = [p for p in members if p in hidden]
        if len(missing) == 1:
            known = sum((cells.get(p, CellStats()).tonnes for p in members if p not in hidden), Decimal(0))
            found[missing[0]] = cells[total].tonnes - known
    return found


def _rank(matrix: list[list[Fraction]]) -> int:
    rows = [row[:] for row in matrix]
    rank, width = 0, len(rows[0]) if rows else 0
    for col in range(width):
        pivot = next((i for i in range(rank, len(rows)) if rows[i][col] != 0), None)
        if pivot is None:
            continue
        rows[rank], rows[pivot] = rows[pivot], rows[rank]
        for i in range(len(rows)):
            if i != rank and rows[i][col] != 0:
                factor = rows[i][col] / rows[rank][col]
                rows[i] = [a - factor * b for a, b in zip(rows[i], rows[rank], strict=True)]
        rank += 1
    return rank


def solvable(rows, cols, hidden) -> set:
    """The suppressed positions an attacker solving every published equation (each line's cells sum
    to its total) at once determines exactly: those whose unit vector is in the equations' row space."""
    unknowns = sorted(hidden, key=repr)
    index = {p: i for i, p in enumerate(unknowns)}
    equations = []
    for r in [*rows, TOTAL]:
        equations.append({**{(r, c): 1 for c in cols}, (r, TOTAL): -1})
    for c in [*cols, TOTAL]:
        equations.append({**{(r, c): 1 for r in rows}, (TOTAL, c): -1})
    matrix = []
    for equation in equations:
        row = [Fraction(0)] * len(unknowns)
        for position, coefficient in equation.items():
            if position in index:
                row[index[position]] = Fraction(coefficient)
        if any(row):
            matrix.append(row)
    if not matrix:
        return set(unknowns)
    base = _rank(matrix)
    found = set()
    for position, i in index.items():
        unit = [Fraction(0)] * len(unknowns)
        unit[i] = Fraction(1)
        if _rank([*matrix, unit]) == base:
            found.add(position)
    return found


# --- primary rule -----------------------------------------------------------------------------------


def test_primary_rule_counts_sellers_buyers_and_the_largest_share():
    assert not cell_sensitive(CellStats())  # nothing traded: published as zero
    assert not cell_sensitive(cell(100, sellers=3, buyers=3))
    assert cell_sensitive(cell(100, sellers=2, buyers=9))
    assert cell_sensitive(cell(100, sellers=9, buyers=2))
    assert not cell_sensitive(cell(100, top_seller=50, top_buyer=50))  # exactly half is allowed
    assert cell_sensitive(cell(100, top_seller="50.001"))
    assert cell_sensitive(cell(100, top_buyer=80))
    assert not cell_sensitive(cell(100, sellers=2, buyers=2), Rule(min_sellers=2, min_buyers=2))


# --- complementary suppression ------------------------------------------------------------------------


ROWS = ["130000", "320000", "440000"]
COLS = ["ferrous", "nonferrous", "paper"]


def _table(sensitive: set, values=None, empty=()):
    values = values or {}
    inner = {}
    for i, r in enumerate(ROWS):
        for j, c in enumerate(COLS):
            if (r, c) in empty:
                continue
            tonnes = values.get((r, c), 100 + 10 * i + j)
            inner[(r, c)] = cell(tonnes, sellers=1 if (r, c) in sensitive else 5)
    return with_margins(inner, ROWS, COLS)


def test_one_sensitive_cell_cannot_be_recovered_by_subtracting_published_cells_from_the_totals():
    cells = _table({("130000", "ferrous")}, {("130000", "ferrous"): 987})
    # With only the primary suppression, the row total minus the published cells gives it away.
    naive = {("130000", "ferrous")}
    assert subtraction_attack(cells, ROWS, COLS, naive) == {("130000", "ferrous"): Decimal(987)}

    result = suppress(cells, ROWS, COLS)
    assert result.primary == {("130000", "ferrous")}
    assert subtraction_attack(cells, ROWS, COLS, result.all) == {}
    assert solvable(ROWS, COLS, result.all) == set()
    # The cheapest hiding places: the smallest cells sharing its row and column, and the fourth
    # corner of the rectangle; no total had to go.
    assert result.secondary == {("130000", "nonferrous"), ("320000", "ferrous"), ("320000", "nonferrous")}
    assert all(TOTAL not in position for position in result.all)


def test_the_smallest_cells_are_chosen_and_empty_cells_only_as_a_last_resort():
    values = {("130000", "paper"): 5, ("440000", "ferrous"): 7}
    cells = _table({("130000", "ferrous")}, values, empty={("320000", "ferrous")})  # nothing traded there
    result = suppress(cells, ROWS, COLS)
    assert ("320000", "ferrous") not in result.all
    assert {("130000", "paper"), ("440000", "ferrous")} <= result.secondary
    assert solvable(ROWS, COLS, result.all) == set()


def test_two_cells_per_line_is_not_enough_when_a_chain_joins_two_blocks():
    """Two protected 2 × 2 blocks joined by one suppressed cell: every line holds at least two
    suppressed cells, so no single subtraction works, yet the joining cell is solvable."""
    rows, cols = ["r1", "r2", "r3", "r4", "r5"], ["c1", "c2", "c3", "c4", "c5"]
    primary = {
        ("r1", "c1"), ("r1", "c2"), ("r2", "c1"), ("r2", "c2"),  # block A
        ("r3", "c3"), ("r3", "c4"), ("r4", "c3"), ("r4", "c4"),  # block B
        ("r2", "c3"),  # the bridge
    }  # fmt: skip
    inner = {
        (r, c): cell(50 + 7 * i + 3 * j, sellers=1 if (r, c) in primary else 5)
        for i, r in enumerate(rows)
        for j, c in enumerate(cols)
    }
    cells = with_margins(inner, rows, cols)
    assert subtraction_attack(cells, rows, cols, primary) == {}
    assert solvable(rows, cols, primary) == {("r2", "c3")}
    assert bridges((("r", r), ("c", c)) for r, c in primary) == {(("r", "r2"), ("c", "c3"))}

    result = suppress(cells, rows, cols)
    assert result.primary == primary
    assert solvable(rows, cols, result.all) == set()
    assert result.secondary  # something had to be added


def test_a_sensitive_total_is_suppressed_and_protected_too():
    cells = _table(set())
    cells[("440000", TOTAL)] = cell(cells[("440000", TOTAL)].tonnes, sellers=2)
    result = suppress(cells, ROWS, COLS)
    assert result.primary == {("440000", TOTAL)}
    assert solvable(ROWS, COLS, result.all) == set()
    assert subtraction_attack(cells, ROWS, COLS, result.all) == {}


def test_a_single_row_table_hides_the_totals_when_nothing_else_can():
    rows, cols = ["130000"], ["ferrous"]
    inner = {("130000", "ferrous"): cell(40, sellers=1)}
    result = suppress(with_margins(inner, rows, cols), rows, cols)
    assert result.all == {("130000", "ferrous"), ("130000", TOTAL), (TOTAL, "ferrous"), (TOTAL, TOTAL)}


def test_nothing_sensitive_nothing_suppressed():
    result = suppress(_table(set()), ROWS, COLS)
    assert result.all == set()


# --- any table --------------------------------------------------------------------------------------


@st.composite
def tables(draw):
    rows = [f"r{i}" for i in range(draw(st.integers(1, 6)))]
    cols = [f"c{j}" for j in range(draw(st.integers(1, 5)))]
    inner = {}
    for r in rows:
        for c in cols:
            kind = draw(st.sampled_from(["empty", "safe", "safe", "few", "dominant"]))
            if kind == "empty":
                continue
            tonnes = draw(st.integers(1, 10_000))
            if kind == "safe":
                inner[(r, c)] = cell(tonnes)
            elif kind == "few":
                inner[(r, c)] = cell(tonnes, sellers=draw(st.integers(1, 2)))
            else:
                inner[(r, c)] = cell(tonnes, top_buyer=Decimal(tonnes) * Decimal("0.9"))
    margin = {}
    if draw(st.booleans()):
        margin[(rows[0], TOTAL)] = CellStats(
            trades=sum(inner[(rows[0], c)].trades for c in cols if (rows[0], c) in inner),
            tonnes=sum((inner[(rows[0], c)].tonnes for c in cols if (rows[0], c) in inner), Decimal(0)),
            sellers=1,
            buyers=1,
        )
    return rows, cols, with_margins(inner, rows, cols, margin)


@hypothesis_settings(max_examples=300, deadline=None)
@given(tables())
def test_no_suppressed_cell_is_ever_determined_by_what_is_published(table):
    rows, cols, cells = table
    result = suppress(cells, rows, cols)
    primary = {
        p for p, c in cells.items() if cell_sensitive(c)
    }  # every sensitive position, margins included, is hidden
    assert result.primary == primary
    assert primary <= result.all
    assert solvable(rows, cols, result.all) == set()
    assert subtraction_attack(cells, rows, cols, result.all) == {}
    assert suppress(cells, rows, cols) == result  # deterministic
