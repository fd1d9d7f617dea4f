"""Serve the whole market from one process: daphne (HTTP and websockets), a Celery worker and
Celery beat on threads.

This is how ``make run`` works without any server installed: the broker is a SQLite file (kombu's
SQLAlchemy transport) and live messages are handed by background jobs to daphne's event loop, where
the sockets joined their groups (``market.core.fanout``).

In production run the pieces as separate processes instead (see README): daphne or uvicorn for
websockets, granian (WSGI) for pages and the API, ``celery -A market worker`` and ``celery -A market beat``.
"""

import logging
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

logger = logging.getLogger("market.serve")


class Command(BaseCommand):
    help = "Serve HTTP and websockets with daphne, plus a Celery worker and beat on threads."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-worker", action="store_true", help="Do not run a Celery worker and beat in-process."
        )
        parser.add_argument("--concurrency", type=int, default=2, help="Worker threads for background jobs.")

    def handle(self, *args, host, port, no_worker, concurrency, **options):
        import daphne.server  # installs Twisted's asyncio reactor; must come before other Twisted imports
        from daphne.endpoints import build_endpoint_description_strings

        from market.asgi import application

        if not settings.EMBEDDED_SERVICES and not no_worker:
            self.stdout.write(
                "REDIS_URL is set: run `celery -A market worker` and `celery -A market beat` as their own "
                "processes for production; this process also runs a worker and beat for convenience."
            )
        worker = beat = None
        if not no_worker:
            worker, beat = self._start_background(concurrency)

        url = f"http://{host}:{port}"

        def ready():
            # Called on this (the main) thread just before Twisted's asyncio reactor starts its loop.
            self.stdout.write(
                self.style.SUCCESS(
                    f"再生资源交易市场 serving at {url}  (websockets at ws://{host}:{port}/ws/)"
                )
            )

        server = daphne.server.Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=True,
            ready_callable=ready,
            verbosity=1,
            websocket_timeout=86400,
            application_close_timeout=10,
        )
        try:
            server.run()
        finally:
            if beat is not None:
                beat.stop()
            if worker is not None:
                worker.stop(in_sighandler=False)

    def _start_background(self, concurrency):
        from celery.beat import EmbeddedService
        from celery.worker import WorkController

        from market.celery import app

        started = threading.Event()
        worker = WorkController(
            app=app,
            pool_cls="threads",
            concurrency=concurrency,
            hostname=f"embedded@{threading.get_ident()}",
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            ready_callback=lambda _consumer: started.set(),
            loglevel=logging.INFO,
        )
        threading.Thread(target=worker.start, name="celery-worker", daemon=True).start()
        beat = EmbeddedService(app, thread=True, schedule_filename=settings.CELERY_BEAT_SCHEDULE_FILENAME)
        beat.start()
        if not started.wait(timeout=30):
            logger.warning("the background worker did not report ready within 30 s")
        else:
            self.stdout.write("background jobs: Celery worker and beat running in-process")
        return worker, beat
