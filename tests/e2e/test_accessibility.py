"""axe-core (from npm, frontend/node_modules) on the main public pages, as a visitor sees them:
no violation of impact "critical" or "serious". Every violation found, of any impact, is written to
test-results/e2e/<test>/axe-<page>.json."""

import pytest
from playwright.sync_api import expect

# Rules that may fail on a page for a known reason: {page: {rule id: why}}. Empty: none known.
KNOWN: dict[str, dict[str, str]] = {}


def _lot_page(page, facts) -> None:
    # A live auction that stays open through the run (one closing meanwhile would reload its page).
    page.goto(f"/lots/{facts['auction']['lot']}/")
    expect(page.locator("#trading")).to_be_visible()


PAGES = [
    ("home", lambda page, facts: page.goto("/")),
    ("lot-search", lambda page, facts: page.goto("/lots/?q=废钢&sort=closing")),
    ("lot", _lot_page),
    ("index-list", lambda page, facts: page.goto("/indices/")),
    ("index", lambda page, facts: page.goto("/indices/composite.ferrous/")),
    ("open-data", lambda page, facts: page.goto("/open-data/")),
    ("login", lambda page, facts: page.goto("/login/")),
]


@pytest.mark.parametrize(("name", "visit"), PAGES, ids=[name for name, _visit in PAGES])
def test_main_pages_have_no_serious_accessibility_violations(journey, name, visit):
    page = journey.page()
    visit(page, journey.server.facts)
    expect(page.locator("main")).to_be_visible()
    page.wait_for_load_state("networkidle")  # charts and live parts drawn: axe sees the page as a person does
    journey.shot(page, name)
    journey.axe(page, name, known=KNOWN.get(name))
