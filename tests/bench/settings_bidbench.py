"""Settings of the server started by the bid benchmark (``test_bid_bench.py``): the test settings
plus a urlconf that adds the benchmark's baseline views. Never used outside the benchmark."""

from market.settings_test import *  # noqa: F403

ROOT_URLCONF = "tests.bench.urls_bidbench"
