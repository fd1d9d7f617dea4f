"""Background jobs of the front end: the living demo's simulator (see ``frontend.simulator``)."""

from celery import shared_task
from django.conf import settings


# Not acknowledged late: a tick lost with its worker costs nothing (the next one carries on), while a
# redelivered one would only double the pace. Beat sends it with an expiry of one period, so ticks
# queued behind a busy worker are dropped rather than run in a burst.
@shared_task(acks_late=False, ignore_result=True)
def demo_simulator_tick() -> dict:
    """One tick of simulated trading on the demo market; nothing unless ``DEMO_SIMULATOR`` is on."""
    if not getattr(settings, "DEMO_SIMULATOR", False):
        return {"skipped": "off"}
    from frontend.simulator import simulate_tick

    summary = simulate_tick()
    summary.pop("log", None)  # each action is logged as it happens; the worker logs the counts
    return summary
