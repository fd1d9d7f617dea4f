"""``manage.py search_rebuild``: rebuild the active search backend's index of lots."""

import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from listings.search import get_backend


class Command(BaseCommand):
    help = "Rebuild the search index of lots (Elasticsearch, or the database's search tokens)."

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, no_progress=False, **options):
        backend = get_backend()
        bar = tqdm(
            total=0, unit="lot", desc=f"search_rebuild ({backend.name})", disable=no_progress, file=sys.stderr
        )

        def progress(done: int, total: int) -> None:
            if bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        try:
            count = backend.rebuild(progress=progress)
        finally:
            bar.close()
        self.stdout.write(self.style.SUCCESS(f"{count} lots indexed by the {backend.name} backend."))
