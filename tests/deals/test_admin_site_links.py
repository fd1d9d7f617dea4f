"""The back office links deals, lots and organisations to their pages in the market: a column of
the changelists and Django's "view on site" button on the change forms (``get_absolute_url``)."""

import pytest
from django.contrib.contenttypes.models import ContentType

from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(make_user(email="ops@market.test", is_staff=True, is_superuser=True))
    return client


def test_the_models_know_their_market_pages(awarded_deal):
    assert awarded_deal.get_absolute_url() == f"/deals/{awarded_deal.pk}/"
    assert awarded_deal.lot.get_absolute_url() == f"/lots/{awarded_deal.lot.pk}/"
    assert awarded_deal.seller.get_absolute_url() == f"/organisations/{awarded_deal.seller.pk}/"


@pytest.mark.parametrize(
    ("changelist", "row"),
    [
        ("/admin/deals/deal/", lambda deal: deal),
        ("/admin/listings/lot/", lambda deal: deal.lot),
        ("/admin/accounts/organisation/", lambda deal: deal.seller),
    ],
)
def test_each_row_links_to_its_page_in_the_market(staff_client, awarded_deal, changelist, row):
    obj = row(awarded_deal)
    page = staff_client.get(changelist).content.decode()
    assert "市场页面" in page  # the column's heading
    assert f'<a href="{obj.get_absolute_url()}" class="site-link">在市场中查看</a>' in page
    # The change form's "view on site" goes through the admin's shortcut to the same page.
    change = staff_client.get(f"{changelist}{obj.pk}/change/").content.decode()
    shortcut = f"/admin/r/{ContentType.objects.get_for_model(obj).pk}/{obj.pk}/"
    assert f'href="{shortcut}"' in change
    response = staff_client.get(shortcut)
    assert response.status_code == 302 and response["Location"].endswith(obj.get_absolute_url())
    assert staff_client.get(obj.get_absolute_url()).status_code == 200  # the page is there
