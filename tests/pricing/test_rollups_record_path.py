"""The path of every settled trade: what ``trade_record`` sends to the database, and the memory of
valid codes that spares it the look-ups."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from listings.models import Category
from market.core.sender import BatchSender
from pricing import services
from pricing.models import TradeFact, TradeFactRollupMark, VolumeRollup
from pricing.tasks import stats_facts_changed
from tests.pricing.conftest import SUZHOU_WUZHONG, at, trade_args


@pytest.fixture(autouse=True)
def _fresh_memory():
    services._memory_clear()
    yield
    services._memory_clear()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_trade_is_one_statement_and_its_rollups_two_in_an_asynchronous_commit_in_the_worker(monkeypatch):
    """Outside a transaction (as ``market.deals`` calls it, after the deal's commit): the fact and
    its pending mark in one statement, committed on its own, and nothing else on the caller's path
    (no savepoint, no read of the fact first, no look-up of a category or county seen before); its
    id handed to the sender. The worker's message then applies it to the rollups in one transaction
    of two statements, the first of which makes its commit asynchronous, before its tick."""
    sent = []
    monkeypatch.setattr(services, "_changes", BatchSender("spy", sent.extend))
    services.trade_record(**trade_args(trade_id="deal:warm"))
    with CaptureQueriesContext(connection) as queries:
        fact = services.trade_record(**trade_args(trade_id="deal:one", settled_at=at(6, 11)))
    sql = [" ".join(q["sql"].split()) for q in queries.captured_queries]
    assert len(sql) == 1 and sql[0].startswith('WITH fact AS ( INSERT INTO "pricing_tradefact"'), sql
    assert TradeFactRollupMark.objects.get(fact=fact).pending
    assert not VolumeRollup.objects.exists()  # not on the caller's path
    assert services.changes_flush() and sent[-1] == fact.pk

    with CaptureQueriesContext(connection) as queries:
        assert stats_facts_changed([fact.pk]) == 1
    sql = [" ".join(q["sql"].split()) for q in queries.captured_queries]
    assert sql[0] == "BEGIN" and sql[3] == "COMMIT", sql
    assert "set_config('synchronous_commit', 'off', true)" in sql[1]
    mark = TradeFactRollupMark.objects.get(fact=fact)
    assert mark.counted and not mark.pending
    day = VolumeRollup.objects.get(grain="day", region="CN", category="ferrous", period=at(6).date())
    assert day.trades == 1

    # A repeat inserts nothing, reads the stored fact and runs no hook.
    with CaptureQueriesContext(connection) as queries:
        again = services.trade_record(**trade_args(trade_id="deal:one", settled_at=at(6, 11)))
    assert again.pk == fact.pk and len(queries.captured_queries) == 2
    assert services.changes_flush() and sent.count(fact.pk) == 1
    assert TradeFact.objects.count() == 2


@pytest.mark.faults
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_counts_the_trades_the_sender_hands_it():
    """Trades recorded and voided through the services, in this process; a real Celery worker (no
    beat, so no sweep) receives the sender's messages and brings the rollups in line."""
    from tests.conftest import worker_start, worker_stop, worker_wait
    from tests.pricing.test_rollups import assert_rollups_match_facts

    worker = worker_start("statistics", fresh=True)
    try:
        kept = services.trade_record(**trade_args(trade_id="deal:w1", quantity_t=Decimal("4.000")))
        services.trade_record(**trade_args(trade_id="deal:w2", county_code=SUZHOU_WUZHONG))
        voided = services.trade_record(**trade_args(trade_id="deal:w3", category_code="paper.occ"))
        services.trade_void(trade_id=voided.trade_id, reason="撤销")
        assert services.changes_flush()
        worker_wait(
            worker,
            lambda: not TradeFactRollupMark.objects.filter(pending=True).exists(),
            "the worker did not apply the trades",
        )
    finally:
        worker_stop(worker)
    assert_rollups_match_facts()
    national = VolumeRollup.objects.get(grain="month", region="CN", category="ferrous.heavy")
    assert national.trades == 2 and national.tonnes == kept.quantity_t + Decimal("120.500")
    assert not VolumeRollup.objects.filter(category="paper").exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_category_removed_after_it_was_remembered_is_refused_with_the_usual_message():
    Category.objects.create(code="ferrous.h2test", name="试验", name_en="Test", parent_id="ferrous")
    with pytest.raises(ValidationError) as refused:  # the category is checked (and remembered) ...
        services.trade_record(**trade_args(category_code="ferrous.h2test", quantity_t=Decimal("-1")))
    assert set(refused.value.message_dict) == {"quantity_t"}
    Category.objects.filter(pk="ferrous.h2test").delete()  # ... and removed meanwhile
    with pytest.raises(ValidationError) as refused:
        services.trade_record(**trade_args(category_code="ferrous.h2test"))
    assert [e.code for e in refused.value.error_dict["category_code"]] == ["category_unknown"]
    assert not TradeFact.objects.exists()


@pytest.mark.django_db
def test_codes_unknown_to_the_memory_are_looked_up_and_bad_ones_refused():
    assert services._category_known("ferrous")  # the memory is filled before the category exists ...
    Category.objects.create(code="ferrous.h2new", name="新品类", name_en="New", parent_id="ferrous")
    fact = services.trade_record(**trade_args(category_code="ferrous.h2new"))  # ... and still finds it
    assert fact.category_id == "ferrous.h2new"
    with pytest.raises(ValidationError) as refused:
        services.trade_record(
            **trade_args(category_code="no.such", county_code="130200", settled_at=at(5) - timedelta(days=9))
        )
    codes = {name: [e.code for e in errors] for name, errors in refused.value.error_dict.items()}
    assert codes == {
        "category_code": ["category_unknown"],
        "county_code": ["region_not_county"],
        "settled_at": ["settled_before_awarded"],
    }
