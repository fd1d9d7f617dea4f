"""``manage.py trace_verify``: check every trace chain; name the first broken link of each bad one."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from market.deals.models import TraceChain
from market.deals.selectors import trace_verify


class Command(BaseCommand):
    help = "Verify the hash chain of every lot's trace log (exit status 1 if any chain is broken)."

    def add_arguments(self, parser):
        parser.add_argument("--code", help="only the chain with this public code")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        chains = TraceChain.objects.order_by("pk")
        if opts["code"]:
            chains = chains.filter(code=opts["code"].strip().upper())
        broken = []
        entries = 0
        total = chains.count()
        for chain in tqdm(chains.iterator(), total=total, disable=opts["no_progress"], unit="chain"):
            check = trace_verify(chain)
            entries += check.entries
            if not check.ok:
                broken.append((chain, check.first_broken))
        for chain, index in broken:
            self.stdout.write(
                self.style.ERROR(f"BROKEN {chain.code} ({chain.title}): first broken link at entry #{index}")
            )
        summary = f"{total} chains, {entries} entries checked, {len(broken)} broken"
        if broken:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
