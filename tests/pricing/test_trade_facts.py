"""Recording and voiding trade facts: stored values, idempotency, validation, the after-commit hook."""

import logging
import threading
from datetime import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, transaction
from django.utils import translation

from market.core.models import AuditEntry
from pricing import services
from pricing.models import TradeFact, TradeSource
from pricing.services import trade_amount, trade_record, trade_void
from tests.pricing.conftest import (
    BUYER_USCC,
    SELLER_USCC,
    TANGSHAN_LUBEI,
    at,
    make_trade,
    trade_args,
)
from tests.test_i18n import _compiled_english_catalogue  # noqa: F401 - English messages below

pytestmark = pytest.mark.django_db


def _errors(**overrides) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as exc:
        trade_record(**trade_args(**overrides))
    assert not TradeFact.objects.exists()
    return exc.value.message_dict


# --- recording ------------------------------------------------------------------------------------


def test_a_trade_is_stored_with_its_amount_and_currency():
    fact = make_trade(trade_id="deal:1", quantity_t=Decimal("120.5"), unit_price=Decimal("2450"))
    fact.refresh_from_db()
    assert fact.trade_id == "deal:1"
    assert fact.source == TradeSource.DEAL
    assert fact.category_id == "ferrous.heavy"
    assert fact.region_id == TANGSHAN_LUBEI
    assert (fact.seller_uscc, fact.buyer_uscc) == (SELLER_USCC, BUYER_USCC)
    assert fact.quantity_t == Decimal("120.500")
    assert fact.unit_price == Decimal("2450.00")
    assert fact.amount == Decimal("295225.00")
    assert fact.currency == "CNY"
    assert fact.awarded_at == at(2, 10) and fact.settled_at == at(5, 15)
    assert fact.voided_at is None and fact.void_reason == ""
    assert fact.created_at is not None


def test_amount_rounds_half_up_to_the_fen():
    assert trade_amount(Decimal("0.125"), Decimal("1.00")) == Decimal("0.13")
    assert trade_amount(Decimal("1.001"), Decimal("2450.55")) == Decimal("2453.00")  # 2453.00055
    assert trade_amount(Decimal("0.105"), Decimal("0.10")) == Decimal("0.01")  # 0.0105
    fact = make_trade(quantity_t=Decimal("3.333"), unit_price=Decimal("45000.15"))
    assert fact.amount == Decimal("149985.50")  # 149985.49995


def test_strings_and_integers_are_read_exactly_and_uscc_normalised():
    fact = make_trade(quantity_t=" 12.25 ", unit_price=68000, seller_uscc=SELLER_USCC.lower())
    fact.refresh_from_db()
    assert fact.quantity_t == Decimal("12.250")
    assert fact.unit_price == Decimal("68000.00")
    assert fact.seller_uscc == SELLER_USCC


def test_a_city_without_counties_counts_as_its_own_county():
    fact = make_trade(county_code="441900")  # 东莞市
    assert fact.region_id == "441900"


def test_recording_the_same_trade_twice_returns_the_first_row_and_changes_nothing(caplog):
    first = make_trade(trade_id="deal:7")
    again = make_trade(trade_id="deal:7")
    assert again.pk == first.pk
    with caplog.at_level(logging.WARNING, logger="pricing.services"):
        different = make_trade(trade_id="deal:7", unit_price=Decimal("9999"), county_code="320506")
    assert different.pk == first.pk
    assert TradeFact.objects.count() == 1
    stored = TradeFact.objects.get()
    assert stored.unit_price == Decimal("2450.00") and stored.region_id == TANGSHAN_LUBEI
    assert "deal:7" in caplog.text and "region" in caplog.text and "unit_price" in caplog.text


def test_the_hook_runs_after_commit_only_when_something_changed(
    django_capture_on_commit_callbacks, monkeypatch
):
    seen = []
    monkeypatch.setattr(
        services, "_after_trade_change", lambda fact: seen.append((fact.trade_id, fact.is_void))
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        make_trade(trade_id="deal:8")
    assert seen == []  # not before the commit
    for callback in callbacks:
        callback()
    assert seen == [("deal:8", False)]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        make_trade(trade_id="deal:8")
    assert callbacks == [] and len(seen) == 1

    with django_capture_on_commit_callbacks(execute=True):
        trade_void(trade_id="deal:8", reason="退款")
        trade_void(trade_id="deal:8", reason="再次退款")
    assert seen == [("deal:8", False), ("deal:8", True)]


def test_the_default_hook_only_logs(caplog, django_capture_on_commit_callbacks):
    with (
        caplog.at_level(logging.DEBUG, logger="pricing.services"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        make_trade(trade_id="deal:9")
    assert "deal:9" in caplog.text


def test_a_rolled_back_record_leaves_nothing_and_can_be_recorded_again():
    with pytest.raises(RuntimeError), transaction.atomic():
        make_trade(trade_id="deal:10")
        raise RuntimeError
    assert not TradeFact.objects.exists()
    assert make_trade(trade_id="deal:10").pk


def test_the_database_refuses_non_positive_numbers_whoever_writes():
    fact = make_trade()
    for field, value in (("quantity_t", 0), ("unit_price", -1), ("amount", 0)):
        with pytest.raises(IntegrityError), transaction.atomic():
            TradeFact.objects.filter(pk=fact.pk).update(**{field: value})


# --- validation -----------------------------------------------------------------------------------


def test_unknown_category_and_county_name_the_field():
    errors = _errors(category_code="ferrous.unobtainium", county_code="999999")
    assert errors["category_code"] == ["品类代码“ferrous.unobtainium”不存在。"]
    assert errors["county_code"] == ["区县代码“999999”不存在。"]


def test_a_province_or_a_city_with_counties_is_not_a_county():
    assert _errors(county_code="130200")["county_code"] == ["区县代码“130200”不是区县一级的行政区划。"]
    assert "county_code" in _errors(county_code="130000")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Decimal("0"), "数量（吨）必须大于0。"),
        (Decimal("-5"), "数量（吨）必须大于0。"),
        ("abc", "数量（吨）不是有效的数字：“abc”。"),
        ("", "数量（吨）不是有效的数字：“”。"),
        (None, "数量（吨）不是有效的数字：“”。"),
        (Decimal("NaN"), "数量（吨）不是有效的数字：“NaN”。"),
        (Decimal("Infinity"), "数量（吨）不是有效的数字：“Infinity”。"),
        (12.5, "数量（吨）不是有效的数字：“12.5”。"),  # floats are never money or weights
        (Decimal("1.2345"), "数量（吨）最多保留3位小数。"),
        (Decimal("1e13"), "数量（吨）超出允许的范围。"),
    ],
)
def test_bad_quantities_are_refused(value, message):
    assert _errors(quantity_t=value)["quantity_t"] == [message]


def test_bad_prices_are_refused_and_every_problem_is_reported_at_once():
    errors = _errors(unit_price=Decimal("-2450"), quantity_t=Decimal("0"), category_code="nope")
    assert errors["unit_price"] == ["单价（元/吨）必须大于0。"]
    assert errors["quantity_t"] == ["数量（吨）必须大于0。"]
    assert errors["category_code"] == ["品类代码“nope”不存在。"]
    assert _errors(unit_price=Decimal("10.001"))["unit_price"] == ["单价（元/吨）最多保留2位小数。"]
    # trailing zeros beyond the stored places are no extra precision
    assert make_trade(unit_price=Decimal("10.0000")).unit_price == Decimal("10.00")


def test_an_amount_that_rounds_to_nothing_or_overflows_is_refused():
    assert _errors(quantity_t=Decimal("0.001"), unit_price=Decimal("0.01"))["amount"] == [
        "金额（数量×单价）不足0.01元。"
    ]
    huge = _errors(quantity_t=Decimal("9999999999999"), unit_price=Decimal("999999999999"))
    assert huge["amount"] == ["金额（元）超出允许的范围。"]


def test_naive_or_missing_datetimes_are_refused():
    errors = _errors(awarded_at=datetime(2026, 3, 2, 10), settled_at="2026-03-05T15:00:00+08:00")
    assert errors["awarded_at"] == ["成交时间必须带时区（不接受无时区的时间）。"]
    assert errors["settled_at"] == ["结算时间必须是日期时间。"]


def test_settlement_before_the_award_is_refused():
    assert _errors(awarded_at=at(5), settled_at=at(4))["settled_at"] == ["结算时间不能早于成交时间。"]


def test_bad_uscc_trade_id_and_source_are_refused():
    errors = _errors(
        seller_uscc="91130203ABC", buyer_uscc=BUYER_USCC[:-1] + "0", trade_id=" ", source="deals"
    )
    assert errors["seller_uscc"] == ["卖方统一社会信用代码：统一社会信用代码应为18位。"]
    assert errors["buyer_uscc"][0].startswith("买方统一社会信用代码：")
    assert errors["trade_id"] == ["成交编号不能为空。"]
    assert errors["source"] == ["来源“deals”无效。"]
    assert _errors(trade_id="x" * 65)["trade_id"] == ["成交编号不能超过64个字符。"]


def test_messages_follow_the_active_language():
    with translation.override("en"):
        errors = _errors(category_code="nope", quantity_t=Decimal("0"), awarded_at=datetime(2026, 3, 2))
    assert errors["category_code"] == ["Category code “nope” does not exist."]
    assert errors["quantity_t"] == ["Quantity (t) must be greater than 0."]
    assert errors["awarded_at"] == ["Award time must carry a time zone (naive times are not accepted)."]


# --- voiding --------------------------------------------------------------------------------------


def test_void_keeps_the_row_and_is_idempotent():
    make_trade(trade_id="deal:20")
    fact = trade_void(trade_id="deal:20", reason="买方退货，成交撤销")
    assert fact.is_void and fact.void_reason == "买方退货，成交撤销"
    first_time = fact.voided_at

    again = trade_void(trade_id="deal:20", reason="另一个原因")
    assert again.pk == fact.pk
    again.refresh_from_db()
    assert again.voided_at == first_time and again.void_reason == "买方退货，成交撤销"
    assert TradeFact.objects.count() == 1

    audits = AuditEntry.objects.filter(action="trade.void", target_id=str(fact.pk))
    assert [(a.actor_label, a.reason) for a in audits] == [("system", "买方退货，成交撤销")]

    # recording a voided trade again does not bring it back
    assert make_trade(trade_id="deal:20").is_void


def test_void_of_an_unknown_trade_returns_none_and_a_reason_is_required():
    assert trade_void(trade_id="deal:404", reason="退款") is None
    make_trade(trade_id="deal:21")
    with pytest.raises(ValidationError) as exc:
        trade_void(trade_id="deal:21", reason="  ")
    assert exc.value.message_dict == {"reason": ["作废原因不能为空。"]}
    assert not TradeFact.objects.get(trade_id="deal:21").is_void


# --- concurrency ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_records_of_one_trade_make_one_row():
    """Eight threads record the same trade at once; one inserts, the others get its row back."""
    workers, results, failures = 8, [], []
    start = threading.Barrier(workers)
    lock = threading.Lock()

    def record():
        try:
            start.wait()
            fact = trade_record(**trade_args(trade_id="deal:race"))
            with lock:
                results.append(fact.pk)
        except Exception as exc:  # reported by the assertion below
            with lock:
                failures.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=record) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert len(results) == workers and len(set(results)) == 1
    assert TradeFact.objects.filter(trade_id="deal:race").count() == 1
