"""Run ticks of the demo market's simulator by hand (``make run`` runs them every
``DEMO_SIMULATOR_S`` seconds through Celery beat)."""

import random
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from frontend.simulator import simulate_tick


class Command(BaseCommand):
    help = "Simulate trading on the demo market: list lots, bid, close auctions, move deals."

    def add_arguments(self, parser):
        parser.add_argument("--ticks", type=int, default=1, help="How many ticks to run (default 1).")
        parser.add_argument(
            "--seed", type=int, default=None, help="Seed the random choices (repeatable runs)."
        )
        parser.add_argument("--sleep", type=float, default=0.0, help="Seconds to wait between ticks.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even though DEMO_SIMULATOR is off (never on a real market).",
        )

    def handle(self, *args, ticks, seed, sleep, force, **options):
        if not settings.DEMO_SIMULATOR and not force:
            raise CommandError(
                "DEMO_SIMULATOR is off: the simulator trades on the demo enterprises' behalf and belongs "
                "on the demo market only. Set DEMO_SIMULATOR=1, or pass --force."
            )
        rng = random.Random(seed) if seed is not None else random.Random()
        totals: dict[str, int] = {}
        for n in range(1, ticks + 1):
            summary = simulate_tick(rng=rng)
            if summary.get("skipped"):
                self.stdout.write(f"tick {n}: skipped ({summary['skipped']})")
            else:
                for line in summary["log"]:
                    self.stdout.write(f"tick {n}: {line}")
                for key, value in summary.items():
                    if isinstance(value, int):
                        totals[key] = totals.get(key, 0) + value
            if sleep and n < ticks:
                time.sleep(sleep)
        self.stdout.write(
            self.style.SUCCESS(", ".join(f"{k} {v}" for k, v in totals.items()) or "nothing simulated")
        )
