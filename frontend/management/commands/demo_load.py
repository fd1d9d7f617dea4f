"""Load the demo market (idempotent, with a progress bar); ``make run`` calls it."""

from django.core.management.base import BaseCommand
from tqdm import tqdm

from frontend.demo import DEMO_PASSWORD, demo_logins, demo_steps


class Command(BaseCommand):
    help = "Load the demo market: enterprises, members, licences, a government office and an operator."

    def add_arguments(self, parser):
        parser.add_argument("--quiet-logins", action="store_true", help="Do not print the demo logins.")

    def handle(self, *args, quiet_logins=False, **options):
        steps = demo_steps()
        created = 0
        with tqdm(
            total=len(steps), desc="演示市场 demo market", unit="step", file=self.stdout, dynamic_ncols=True
        ) as bar:
            for label, step in steps:
                bar.set_postfix_str(label)
                created += step()
                bar.update()
        self.stdout.write(
            self.style.SUCCESS(
                f"demo market ready: {created} new rows" if created else "demo market already loaded"
            )
        )
        if not quiet_logins:
            self.stdout.write(f"\n演示账号 demo logins (password for all: {DEMO_PASSWORD})")
            for email, what in demo_logins():
                self.stdout.write(f"  {email:<32} {what}")
