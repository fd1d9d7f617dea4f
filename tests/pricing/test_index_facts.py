"""Reading the facts of a span for the set-wise rebuild (``pricing.index_facts``): the ``COPY`` with
hashed codes, the ``COPY`` joined to the dictionaries and the rows (the embedded SQLite demo's path)
give the same arrays; codes that share a hash, or an organisation missing from its dictionary, make
the read use the joins."""

from datetime import date

import numpy as np
import pytest

from pricing import index_facts
from pricing import indices as ix
from tests.pricing.test_indices_rebuild import END, START, facts_make

FIRST, LAST = date(2025, 11, 10), date(2026, 2, 20)


def read() -> index_facts.FactArrays:
    return index_facts.facts_of(FIRST, LAST, ix.params())


def arrays(facts: index_facts.FactArrays) -> dict:
    names = ("day", "category", "county", "seller", "buyer", "q", "p", "voided")
    return {name: getattr(facts, name).tolist() for name in names}


def named(facts: index_facts.FactArrays) -> list[tuple]:
    """Every fact with its codes (not its indices), in the arrays' order."""
    return [
        (d, facts.categories[c], facts.counties[r], facts.orgs[s], facts.orgs[b], q, p, v)
        for d, c, r, s, b, q, p, v in zip(*(arrays(facts)[k] for k in (
            "day", "category", "county", "seller", "buyer", "q", "p", "voided")), strict=True)
    ]  # fmt: skip


def spy(monkeypatch) -> list:
    calls = []
    joined = index_facts._joined
    monkeypatch.setattr(index_facts, "_joined", lambda *a: calls.append(1) or joined(*a))
    return calls


@pytest.mark.django_db
def test_hashed_joined_and_row_reads_give_the_same_arrays(monkeypatch):
    facts_make(11, START, END)
    calls = spy(monkeypatch)
    hashed = read()
    assert calls == []  # the catalogue's, the regions' and these organisations' hashes are distinct
    assert len(hashed.q) > 1000 and hashed.voided.any() and (hashed.seller == hashed.buyer).any()
    assert list(hashed.day) == sorted(hashed.day) and hashed.days[0] == FIRST and hashed.days[-1] == LAST
    assert hashed.categories == sorted(hashed.categories) and "320506" in hashed.counties
    # The facts settled before FIRST's window or counting after LAST are not read.
    assert hashed.day.min() == 0 and hashed.day.max() == len(hashed.days) - 1

    monkeypatch.setattr(
        index_facts, "_HASHES", index_facts._HASHES.replace("hashtextextended(code, 0)", "k %% 2")
    )
    joined = read()
    assert calls == [1] and joined.orgs == hashed.orgs
    # Within a day, facts come in the order the database returns them (the cells do not depend on it).
    assert sorted(named(joined)) == sorted(named(hashed))
    assert sorted(zip(*arrays(joined).values(), strict=True)) == sorted(
        zip(*arrays(hashed).values(), strict=True)
    )

    monkeypatch.setattr(index_facts, "COPY", False)
    rows = read()
    # The rows number the organisations in Python's order of strings, PostgreSQL in its collation's.
    assert sorted(named(rows)) == sorted(named(hashed))


@pytest.mark.django_db
def test_an_organisation_missing_from_its_dictionary_is_read_through_the_joins(monkeypatch):
    """An organisation's first trade written between reading the dictionary and reading the facts: the
    hashes find a code they cannot name and the joins read the facts again, without that trade."""
    facts_make(12, START, END)
    whole = named(read())
    missing = whole[0][3]
    monkeypatch.setattr(index_facts, "_ORGS", index_facts._ORGS.replace(
        ") u ORDER BY code", f") u WHERE code <> '{missing}' ORDER BY code"))  # fmt: skip
    calls = spy(monkeypatch)
    without = read()
    assert calls == [1] and missing not in without.orgs
    assert sorted(named(without)) == sorted(f for f in whole if missing not in (f[3], f[4]))


def test_a_dictionary_finds_each_hash_and_refuses_one_it_does_not_hold():
    d = index_facts._Dictionary([30, -7, 12, 2**62])
    assert d.unique() and not index_facts._Dictionary([5, 1, 5]).unique()
    assert d.index(np.array([2**62, 30, -7, -7, 12], np.int64)).tolist() == [3, 0, 1, 1, 2]
    for absent in ([13], [2**63 - 1], [-8]):
        with pytest.raises(index_facts._Unknown):
            d.index(np.array(absent, np.int64))
    empty = index_facts._Dictionary([])
    assert empty.index(np.zeros(0, np.int64)).tolist() == []
    with pytest.raises(index_facts._Unknown):
        empty.index(np.array([1], np.int64))
