"""``manage.py indices_rebuild --from YYYY-MM-DD --to YYYY-MM-DD``: recompute the indices from the
trade facts over a span of history (progress bar; ``-v 2`` also prints the seconds of each phase:
reading the facts, the rules, building and writing the values, bases, composites);
``indices_close`` computes one day."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from pricing import indices
from pricing.models import TradeFact


class Command(BaseCommand):
    help = "Recompute every price index over a span of business days from the trade facts."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", help="first day (default: the first trade's day)")
        parser.add_argument("--to", dest="end", help="last day (default: yesterday)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        try:
            start = date.fromisoformat(opts["start"]) if opts["start"] else None
            end = date.fromisoformat(opts["end"]) if opts["end"] else None
        except ValueError as exc:
            raise CommandError(f"dates are YYYY-MM-DD: {exc}") from None
        if start is None:
            first = TradeFact.objects.order_by("awarded_at").values_list("awarded_at", flat=True).first()
            if first is None:
                self.stdout.write("No trades yet: nothing to compute.")
                return
            start = timezone.localdate(first)
        end = end or timezone.localdate() - timezone.timedelta(days=1)
        if end < start:
            raise CommandError("--to is before --from")
        bar = tqdm(total=None, unit="day", disable=opts["no_progress"])

        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)

        timings: dict[str, float] = {}
        days = indices.indices_rebuild(start, end, progress=progress, timings=timings)
        bar.close()
        self.stdout.write(self.style.SUCCESS(f"{days} business days recomputed, {start} to {end}"))
        if opts["verbosity"] >= 2:
            self.stdout.write(", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in timings.items()))
