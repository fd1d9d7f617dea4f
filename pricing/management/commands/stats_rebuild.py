"""``manage.py stats_rebuild [--from DATE] [--to DATE]``: rebuild the statistics rollups from the facts.

The rebuild works in whole months (``--from`` and ``--to`` are widened to the months that hold
them; without them, every month holding a fact). Each month is recomputed and the fill state
(``pricing.RollupFillState``) moved past it in one transaction, so a run that crashes or is
stopped loses at most the month in progress: running the same command again continues with the
next month. ``--restart`` starts the range over. Trades recorded while it runs are counted exactly
once (see ``pricing.rollups``).
"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from tqdm import tqdm

from pricing.rollups import facts_month_range, rollups_rebuild, rollups_rebuild_plan


def _date(text: str) -> date:
    text = (text or "").strip()
    try:
        return date.fromisoformat(text if len(text) != 7 else text + "-01")
    except ValueError:
        raise CommandError(_("日期“%(value)s”无效，应为 YYYY-MM-DD 或 YYYY-MM。") % {"value": text}) from None


class Command(BaseCommand):
    help = "Rebuild the statistics rollups from the trade facts, month by month (resumable)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--from", dest="date_from", metavar="DATE", help="first day (YYYY-MM-DD or YYYY-MM)"
        )
        parser.add_argument("--to", dest="date_to", metavar="DATE", help="last day (YYYY-MM-DD or YYYY-MM)")
        parser.add_argument("--restart", action="store_true", help="start the range over instead of resuming")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, date_from=None, date_to=None, restart=False, no_progress=False, **options):
        first = _date(date_from) if date_from else None
        last = _date(date_to) if date_to else None
        if first is None or last is None:
            found = facts_month_range()
            if found is None and (first is None or last is None):
                self.stdout.write(_("没有成交事实，无需重建。"))
                return
            first = first or found[0]
            last = last or found[1]
        if first > last:
            raise CommandError(_("统计的起始日期不能晚于截止日期。"))

        # The plan is looked at first only to size the progress bar; rollups_rebuild decides again.
        plan = rollups_rebuild_plan(first, last, restart=restart)
        if plan.resumed:
            self.stdout.write(
                _("继续上次中断的重建：还剩 %(left)d / %(total)d 个月。")
                % {"left": len(plan.months), "total": plan.total}
            )
        bar = tqdm(
            total=plan.total,
            initial=plan.total - len(plan.months),
            unit="month",
            desc="stats_rebuild",
            disable=no_progress,
            file=self.stderr,
        )
        try:
            rollups_rebuild(first, last, on_month=lambda month: bar.update(1))
        finally:
            bar.close()
        self.stdout.write(
            _("统计汇总已重建：%(first)s 至 %(last)s，共 %(total)d 个月。")
            % {"first": f"{first:%Y-%m}", "last": f"{last:%Y-%m}", "total": plan.total}
        )
