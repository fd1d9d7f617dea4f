"""``manage.py trades_import FILE``: import historical settled trades from a CSV file.

Columns (a header row; extra columns are ignored): trade_id, awarded_at, settled_at, category_code,
county_code, seller_uscc, buyer_uscc, quantity_t, unit_price. Times are ISO 8601; one without an
offset is read as Asia/Shanghai time. UTF-8 with or without a byte-order mark.

Each row goes through ``pricing.services.trade_record(source="import")`` in its own transaction, so
an interrupted import can simply be run again: rows already recorded (by an earlier run, or earlier
in the same file) are skipped and nothing is changed. The report counts imported, already present
and rejected rows and gives each rejected row's line number and reason; ``--rejects`` writes the
rejected rows, with ``line`` and ``reason`` columns added, to a CSV that can be fixed and re-imported.
"""

import csv
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _
from tqdm import tqdm

from pricing.models import TradeSource
from pricing.selectors import trade_fact_exists
from pricing.services import FIELD_LABELS, changes_flush, trade_record

COLUMNS = (
    "trade_id",
    "awarded_at",
    "settled_at",
    "category_code",
    "county_code",
    "seller_uscc",
    "buyer_uscc",
    "quantity_t",
    "unit_price",
)
NAIVE_TIME_ZONE = ZoneInfo("Asia/Shanghai")


def _parse_moment(text: str) -> datetime | None:
    """An aware datetime from ISO 8601 text (naive text read as Asia/Shanghai), or None."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return timezone.make_aware(moment, NAIVE_TIME_ZONE) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = "Import historical settled trades from a CSV file into the trade facts (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file (UTF-8, with or without BOM)")
        parser.add_argument("--rejects", metavar="FILE", help="write the rejected rows with a reason column")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, file, rejects=None, no_progress=False, **options):
        try:
            with open(file, encoding="utf-8-sig", newline="") as f:
                total = max(sum(1 for record in csv.reader(f) if record) - 1, 0)
                f.seek(0)
                reader = csv.DictReader(f)
                header = [name.strip() for name in reader.fieldnames or []]
                missing = [name for name in COLUMNS if name not in header]
                if missing:
                    raise CommandError(_("CSV 文件缺少列：%(columns)s。") % {"columns": ", ".join(missing)})
                reader.fieldnames = header
                imported, present, rejected = self._import(reader, total, no_progress)
        except OSError as exc:
            raise CommandError(_("无法读取文件 %(file)s：%(error)s") % {"file": file, "error": exc}) from exc
        except UnicodeDecodeError as exc:
            raise CommandError(_("文件 %(file)s 不是 UTF-8 编码。") % {"file": file}) from exc
        except csv.Error as exc:
            raise CommandError(_("CSV 格式错误：%(error)s") % {"error": exc}) from exc

        # The statistics worker's messages out before the process ends (at most a minute); what is left
        # is counted by the periodic sweep, and the operator is told so.
        if imported and not changes_flush():
            self.stderr.write(_("部分成交尚未通知统计任务，将由定期补录计入统计。"))
        if rejects:
            self._write_rejects(rejects, header, rejected)
        self.stdout.write(
            _("导入 %(imported)d 条，已存在（跳过）%(present)d 条，拒绝 %(rejected)d 条。")
            % {"imported": imported, "present": present, "rejected": len(rejected)}
        )
        for line, _row, reason in rejected:
            self.stdout.write(_("第 %(line)d 行：%(reason)s") % {"line": line, "reason": reason})
        if rejects:
            self.stdout.write(_("被拒绝的行已写入 %(file)s。") % {"file": rejects})

    def _import(self, reader: csv.DictReader, total: int, no_progress: bool):
        imported = present = 0
        rejected: list[tuple[int, dict, str]] = []
        bar = tqdm(total=total, unit="row", desc="trades_import", disable=no_progress, file=sys.stderr)
        try:
            for row in reader:
                bar.update(1)
                line = reader.line_num
                values = {name: (row.get(name) or "").strip() for name in COLUMNS}
                moments = {name: _parse_moment(values[name]) for name in ("awarded_at", "settled_at")}
                already = trade_fact_exists(values["trade_id"])
                arguments = {**values, **{name: m for name, m in moments.items() if m is not None}}
                try:
                    trade_record(**arguments, source=TradeSource.IMPORT)
                except ValidationError as exc:
                    errors = exc.message_dict
                    for name, moment in moments.items():
                        if moment is None:  # say what is wrong with the text, not that it is no datetime
                            errors[name] = [
                                _("%(field)s不是有效的 ISO 8601 时间：“%(value)s”。")
                                % {"field": FIELD_LABELS[name], "value": values[name]}
                            ]
                    reason = " ".join(m for name in errors for m in errors[name])
                    rejected.append((line, row, reason))
                    continue
                if already:
                    present += 1
                else:
                    imported += 1
        finally:
            bar.close()
        return imported, present, rejected

    def _write_rejects(self, path: str, header: list[str], rejected: list[tuple[int, dict, str]]) -> None:
        columns = [name for name in header if name not in ("line", "reason")] + ["line", "reason"]
        try:
            with open(path, "w", encoding="utf-8-sig", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
                writer.writeheader()
                for line, row, reason in rejected:
                    writer.writerow({**row, "line": line, "reason": reason})
        except OSError as exc:
            raise CommandError(_("无法写入文件 %(file)s：%(error)s") % {"file": path, "error": exc}) from exc
