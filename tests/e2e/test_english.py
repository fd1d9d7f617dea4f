"""English, the market's second language: a visitor switches to it with the language switch in the
page's header and browses the main pages (home, lots, a lot, the indices, an index, the methodology,
open data, the login page), then signs in and opens the statistics. No Chinese may remain in what
frames each page: the title, the header and its navigation, the headings, the form labels, the
buttons, the tables' column headings and the footer. Data stays as entered (lot titles,
organisation and people's names, region names have no English form) and is left out of the check:
the lot's title, the acting organisation and the user's name; the switch names 简体中文 in Chinese
on purpose."""

import re

from playwright.sync_api import expect

CHINESE = re.compile(r"[\u3001-\u303f\u4e00-\u9fff\uff01-\uffef]+")

# What frames a page, read with the data of the header (who is signed in, for whom) and the
# language switch left out.
FRAME_TEXTS = """() => {
  const doc = document.cloneNode(true);
  doc.querySelectorAll('.lang-switch, .acting-name, .user-name, #acting-organisation, script, template')
    .forEach((el) => el.remove());
  const texts = [['title', document.title]];
  const parts = {
    header: 'header.site-top', h1: 'main h1', h2: 'main h2', label: 'main label',
    button: 'main button', th: 'main th[scope=col]', footer: 'footer',
  };
  for (const [what, selector] of Object.entries(parts)) {
    doc.querySelectorAll(selector).forEach((el) => {
      const text = (el.textContent || '').replace(/\\s+/g, ' ').trim();
      if (text) texts.push([what, text]);
      const label = el.getAttribute('aria-label');
      if (label) texts.push([what + '@aria-label', label]);
    });
  }
  doc.querySelectorAll('nav[aria-label]').forEach((el) => texts.push(['nav@aria-label', el.getAttribute('aria-label')]));
  return texts;
}"""


def _expect_english(page, *, data: tuple[str, ...] = ()) -> None:
    """No Chinese in the page's frame once the ``data`` strings (as entered) are taken out."""
    expect(page.locator("html")).to_have_attribute("lang", "en")
    left = []
    for what, text in page.evaluate(FRAME_TEXTS):
        for value in data:
            text = text.replace(value, "")
        found = CHINESE.findall(text)
        if found:
            left.append(f"{what}: {'/'.join(found)} in {text[:160]!r}")
    assert not left, f"Chinese left on {page.url}:\n" + "\n".join(left)


def test_a_visitor_reads_the_market_in_english(journey):
    page = journey.page()
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")

    # The switch in the header: a button per language, each named in its own language.
    switch = page.get_by_role("form", name="语言")
    switch.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", level=1)).not_to_have_text(CHINESE)
    nav = page.get_by_role("navigation", name="Main navigation")
    expect(nav.get_by_role("link", name="Home")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("form", name="Language").get_by_role("button", name="English")).to_have_attribute(
        "aria-current", "true"
    )
    _expect_english(page)
    journey.shot(page, "home-en")

    # Lots, then the first lot of the search.
    nav.get_by_role("link", name="Lots").click()
    expect(page).to_have_url(re.compile(r"/lots/$"))
    _expect_english(page)
    journey.shot(page, "lots-en")
    first = page.locator(".lot-card .lot-title a").first
    title = first.inner_text().strip()
    first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    _expect_english(page, data=(title,))
    journey.shot(page, "lot-en")

    # The indices, one composite with its chart, the methodology.
    nav.get_by_role("link", name="Price indices").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Price indices")
    _expect_english(page)
    journey.shot(page, "indices-en")
    composite = page.locator("table.index-table").first.get_by_role("link").first
    name = composite.inner_text().strip()
    composite.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.locator("[data-index-chart] canvas, [data-index-chart] svg").first).to_be_visible()
    _expect_english(page)
    journey.shot(page, "index-en")
    page.goto("/indices/methodology/")
    _expect_english(page)
    journey.shot(page, "methodology-en")

    # Open data, from the footer.
    page.locator("footer").get_by_role("link", name="Open data").click()
    expect(page).to_have_url(re.compile(r"/open-data/"))
    _expect_english(page)
    journey.shot(page, "open-data-en")

    # Signing in, in English, keeps English; then the statistics.
    page.locator("header").get_by_role("link", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/login/"))
    _expect_english(page)
    journey.shot(page, "login-en")
    from frontend.demo import DEMO_PASSWORD

    page.get_by_label("Email").fill("scrapyard@demo.market")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.locator("main").get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    nav.get_by_role("link", name="Statistics").click()
    expect(page).to_have_url(re.compile(r"/statistics/"))
    _expect_english(page)
    journey.shot(page, "statistics-en")
