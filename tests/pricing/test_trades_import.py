"""``manage.py trades_import FILE``: good rows, rejected rows with their line and reason, duplicates,
a second run that adds nothing, naive times read as Shanghai time, a byte-order mark, a rejects file."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from pricing.models import TradeFact, TradeSource
from tests.pricing.conftest import BUYER_USCC, SELLER_USCC, SHANGHAI

pytestmark = pytest.mark.django_db

HEADER = (
    "trade_id,awarded_at,settled_at,category_code,county_code,seller_uscc,buyer_uscc,quantity_t,unit_price"
)
S, B = SELLER_USCC, BUYER_USCC
ROWS = [
    # line 2: offset given
    f"H-0001,2025-06-02T10:15:00+08:00,2025-06-05T16:00:00+08:00,ferrous.heavy,130203,{S},{B},120.5,2450",
    # line 3: naive times, read as Asia/Shanghai
    f"H-0002,2025-06-03 09:30:00,2025-06-06 11:00,nonferrous.copper.bright,320506,{S},{B},2.125,68000.50",
    # line 4: a category that does not exist
    f"H-0003,2025-06-03T09:30:00+08:00,2025-06-06T11:00:00+08:00,ferrous.gold,130203,{S},{B},10,2400",
    # line 5: a quantity that is no number
    f"H-0004,2025-06-03T09:30:00+08:00,2025-06-06T11:00:00+08:00,ferrous.heavy,130203,{S},{B},十吨,2400",
    # line 6: the first row again
    f"H-0001,2025-06-02T10:15:00+08:00,2025-06-05T16:00:00+08:00,ferrous.heavy,130203,{S},{B},120.5,2450",
    # line 7: UTC offset
    f"H-0005,2025-06-04T01:00:00Z,2025-06-07T02:00:00Z,paper.occ,441900,{S},{B},30,1500",
    # line 8: an unreadable time and a non-positive price
    f"H-0006,June 4th,2025-06-07T02:00:00Z,paper.occ,441900,{S},{B},30,0",
]


def _write(tmp_path, rows=ROWS, *, name="trades.csv", bom=False) -> str:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8-sig" if bom else "utf-8")
    return str(path)


def _run(*args) -> str:
    out = io.StringIO()
    call_command("trades_import", *args, "--no-progress", stdout=out)
    return out.getvalue()


def test_import_records_good_rows_and_reports_the_rest(tmp_path):
    output = _run(_write(tmp_path))
    assert "导入 3 条，已存在（跳过）1 条，拒绝 3 条。" in output
    assert "第 4 行：品类代码“ferrous.gold”不存在。" in output
    assert "第 5 行：数量（吨）不是有效的数字：“十吨”。" in output
    assert "第 8 行：成交时间不是有效的 ISO 8601 时间：“June 4th”。 单价（元/吨）必须大于0。" in output

    facts = {f.trade_id: f for f in TradeFact.objects.all()}
    assert sorted(facts) == ["H-0001", "H-0002", "H-0005"]
    assert {f.source for f in facts.values()} == {TradeSource.IMPORT}
    first = facts["H-0001"]
    assert first.quantity_t == Decimal("120.500") and first.amount == Decimal("295225.00")
    assert first.awarded_at == datetime(2025, 6, 2, 10, 15, tzinfo=SHANGHAI)
    naive = facts["H-0002"]
    assert naive.awarded_at == datetime(2025, 6, 3, 9, 30, tzinfo=SHANGHAI)
    assert naive.settled_at == datetime(2025, 6, 6, 11, 0, tzinfo=SHANGHAI)
    assert naive.amount == Decimal("144501.06")  # 144501.0625
    assert facts["H-0005"].settled_at == datetime(2025, 6, 7, 2, 0, tzinfo=UTC)


def test_importing_the_same_file_twice_adds_nothing(tmp_path):
    path = _write(tmp_path)
    _run(path)
    before = list(TradeFact.objects.order_by("pk").values())
    output = _run(path)
    assert "导入 0 条，已存在（跳过）4 条，拒绝 3 条。" in output
    assert list(TradeFact.objects.order_by("pk").values()) == before


def test_a_file_with_a_byte_order_mark_reads_the_same_and_progress_goes_to_stderr(tmp_path, capsys):
    out = io.StringIO()
    call_command("trades_import", _write(tmp_path, ROWS[:2], bom=True), stdout=out)
    assert "导入 2 条，已存在（跳过）0 条，拒绝 0 条。" in out.getvalue()
    assert TradeFact.objects.count() == 2
    progress = capsys.readouterr().err
    assert "trades_import" in progress and "2/2" in progress


def test_rejected_rows_are_written_with_their_reason(tmp_path):
    rejects = tmp_path / "rejects.csv"
    output = _run(_write(tmp_path), "--rejects", str(rejects))
    assert str(rejects) in output
    with rejects.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["trade_id"] for r in rows] == ["H-0003", "H-0004", "H-0006"]
    assert [r["line"] for r in rows] == ["4", "5", "8"]
    assert rows[0]["reason"] == "品类代码“ferrous.gold”不存在。"
    assert rows[1]["quantity_t"] == "十吨"
    assert list(rows[0])[-2:] == ["line", "reason"]

    # the rejects file, once corrected, imports as it is (the extra columns are ignored)
    fixed = rejects.read_text(encoding="utf-8-sig").replace("ferrous.gold", "ferrous.heavy")
    rejects.write_text(fixed, encoding="utf-8-sig")
    assert "导入 1 条，已存在（跳过）0 条，拒绝 2 条。" in _run(str(rejects))


def test_missing_columns_or_file_stop_the_command(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("trade_id,awarded_at\nH-1,2025-06-02T10:15:00+08:00\n", encoding="utf-8")
    with pytest.raises(CommandError, match="缺少列"):
        _run(str(path))
    with pytest.raises(CommandError):
        _run(str(tmp_path / "missing.csv"))
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes((HEADER + "\n" + ROWS[0].replace("H-0001", "历史-1") + "\n").encode("gbk"))
    with pytest.raises(CommandError, match="UTF-8"):
        _run(str(gbk))
    assert not TradeFact.objects.exists()


def test_messages_still_unsent_at_the_end_are_reported_and_left_to_the_sweep(tmp_path, monkeypatch):
    from pricing.management.commands import trades_import
    from pricing.models import VolumeRollup
    from pricing.tasks import stats_sweep

    monkeypatch.setattr(trades_import, "changes_flush", lambda: False)  # the broker did not take them in time
    out, err = io.StringIO(), io.StringIO()
    call_command("trades_import", _write(tmp_path, ROWS[:2]), "--no-progress", stdout=out, stderr=err)
    assert "导入 2 条" in out.getvalue()
    assert "部分成交尚未通知统计任务，将由定期补录计入统计。" in err.getvalue()
    assert not VolumeRollup.objects.exists()
    assert stats_sweep() == 2
    assert VolumeRollup.objects.filter(grain="month", region="CN").exists()
