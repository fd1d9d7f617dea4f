"""Property tests of the pure settlement rules: the weighbridge tolerance and final amount, the
credit score and the trace hash."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from market.deals import rules

MILLI = Decimal("0.001")


def tonnes(min_value="0.001", max_value="100000"):
    return st.decimals(min_value=Decimal(min_value), max_value=Decimal(max_value), places=3)


prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2)
tolerances = st.decimals(min_value=Decimal("0"), max_value=Decimal("0.2"), places=4)


@given(
    tare=tonnes("0", "60"),
    net=tonnes("0.001", "100000"),
    quantity=tonnes("0.001", "100000"),
    price=prices,
    tolerance=tolerances,
)
def test_weigh_by_the_tonne(tare, net, quantity, price, tolerance):
    gross = tare + net
    r = rules.weigh(
        gross_t=gross, tare_t=tare, unit="t", quantity=quantity, unit_price=price, tolerance=tolerance
    )
    assert r.net_t == gross - tare == net
    assert r.final_quantity == r.net_t
    assert r.within_tolerance == (abs(r.final_quantity - quantity) <= quantity * tolerance)
    assert r.final_amount == (r.final_quantity * price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert r.final_amount.as_tuple().exponent == -2
    assert (r.difference > 0) == (r.final_quantity > quantity) or r.difference == 0


@given(
    tare=tonnes("0", "60"),
    net=tonnes("0.001", "100"),
    quantity=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("100000"), places=3),
    price=prices,
    tolerance=tolerances,
)
def test_weigh_by_the_kilogram_follows_the_net_weight_in_kg(tare, net, quantity, price, tolerance):
    r = rules.weigh(
        gross_t=tare + net, tare_t=tare, unit="kg", quantity=quantity, unit_price=price, tolerance=tolerance
    )
    assert r.net_t == net
    assert r.final_quantity == net * 1000
    assert r.within_tolerance == (abs(r.final_quantity - quantity) <= quantity * tolerance)
    assert r.final_amount == (r.final_quantity * price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@given(
    tare=tonnes("0", "60"),
    net=tonnes("0.001", "100"),
    quantity=st.integers(min_value=1, max_value=100000).map(Decimal),
    price=prices,
    tolerance=tolerances,
)
def test_weigh_by_the_piece_keeps_the_contract_quantity(tare, net, quantity, price, tolerance):
    r = rules.weigh(
        gross_t=tare + net,
        tare_t=tare,
        unit="piece",
        quantity=quantity,
        unit_price=price,
        tolerance=tolerance,
    )
    assert r.net_t == net  # kept for the record and the statistics
    assert r.final_quantity == quantity and r.difference == 0 and r.within_tolerance
    assert r.final_amount == (quantity * price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_tolerance_edges_at_two_percent():
    def within(net):
        return rules.weigh(
            gross_t=Decimal(net) + 20, tare_t=Decimal(20), unit="t", quantity=Decimal("500"),
            unit_price=Decimal("2000"), tolerance=Decimal("0.02"),
        ).within_tolerance  # fmt: skip

    assert within("510.000") and within("490.000")  # exactly 2 %: still accepted
    assert not within("510.001") and not within("489.999")


@given(gross=tonnes("0", "100"), tare=tonnes("0", "100"))
def test_gross_must_exceed_tare(gross, tare):
    assume(gross <= tare)
    with pytest.raises(ValueError):
        rules.weigh(
            gross_t=gross,
            tare_t=tare,
            unit="t",
            quantity=Decimal(1),
            unit_price=Decimal(1),
            tolerance=Decimal(0),
        )


records = st.builds(
    rules.CreditRecord,
    deals=st.integers(0, 10_000),
    on_time=st.integers(0, 10_000),
    defaults=st.integers(0, 1_000),
    disputes_lost=st.integers(0, 1_000),
    rating_sum=st.just(0),
    ratings=st.just(0),
)


@st.composite
def credit_records(draw):
    record = draw(records)
    ratings = draw(st.integers(0, 500))
    scores = draw(st.lists(st.integers(1, 5), min_size=ratings, max_size=ratings))
    return rules.CreditRecord(
        deals=record.deals, on_time=record.on_time, defaults=record.defaults,
        disputes_lost=record.disputes_lost, rating_sum=sum(scores), ratings=ratings,
    )  # fmt: skip


@given(record=credit_records(), base=st.integers(0, 100))
def test_credit_score_stays_between_0_and_100(record, base):
    score = rules.credit_score(record, base=base)
    assert isinstance(score, int) and 0 <= score <= 100


@given(record=credit_records(), more=st.integers(1, 50))
def test_more_defaults_or_lost_disputes_never_raise_the_score(record, more):
    worse = rules.CreditRecord(**{**record.__dict__, "defaults": record.defaults + more})
    assert rules.credit_score(worse) <= rules.credit_score(record)
    lost = rules.CreditRecord(**{**record.__dict__, "disputes_lost": record.disputes_lost + more})
    assert rules.credit_score(lost) <= rules.credit_score(record)


def test_a_newcomer_starts_at_the_base_and_a_default_costs_fifteen():
    assert rules.credit_score(rules.CreditRecord()) == 80
    assert rules.credit_score(rules.CreditRecord(deals=1, defaults=1)) == 65


json_values = st.one_of(st.none(), st.booleans(), st.integers(-(10**9), 10**9), st.text(max_size=20))
trace_fields = st.fixed_dictionaries(
    {
        "prev_hash": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
        "chain": st.text(alphabet="23456789ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=10, max_size=10),
        "index": st.integers(0, 10**6),
        "event": st.sampled_from(["listed", "closed", "awarded", "paid", "weighed", "settled"]),
        "data": st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=5),
        "occurred_at": st.datetimes().map(lambda d: d.replace(microsecond=0).isoformat() + "+00:00"),
    }
)


@given(fields=trace_fields, which=st.sampled_from(["prev_hash", "chain", "index", "event", "data", "occurred_at"]),
       data=st.data())  # fmt: skip
def test_trace_hash_changes_when_any_field_changes(fields, which, data):
    digest = rules.trace_hash(**fields)
    assert len(digest) == 64 and digest == rules.trace_hash(**dict(fields))  # deterministic
    changed = dict(fields)
    if which == "index":
        changed["index"] = fields["index"] + data.draw(st.integers(1, 1000))
    elif which == "data":
        key = data.draw(st.text(min_size=1, max_size=8))
        value = data.draw(json_values)
        assume(fields["data"].get(key, object()) != value or key not in fields["data"])
        changed["data"] = {**fields["data"], key: value}
        assume(changed["data"] != fields["data"])
    else:
        other = data.draw(trace_fields)[which]
        assume(other != fields[which])
        changed[which] = other
    assert rules.trace_hash(**changed) != digest


def test_trace_hash_does_not_depend_on_key_order():
    a = rules.trace_hash(
        prev_hash=rules.GENESIS, chain="X", index=0, event="e", data={"a": 1, "b": 2}, occurred_at="t"
    )
    b = rules.trace_hash(
        prev_hash=rules.GENESIS, chain="X", index=0, event="e", data={"b": 2, "a": 1}, occurred_at="t"
    )
    assert a == b
