"""``market.core.prepared``: a queryset compiled once answers like the ORM for every value."""

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from market.accounts.models import Membership, User
from market.core.prepared import Prepared
from tests.factories import make_member, make_organisation, make_user

pytestmark = pytest.mark.django_db

MEMBERSHIP = Prepared(
    lambda user, org: (
        Membership.objects.select_related("organisation", "organisation__region")
        .filter(user_id=user, organisation_id=org)
        .annotate(org_name=F("organisation__legal_name"))
        .order_by("pk")[:1]
    ),
    user=int,
    org=int,
)
USER_BY_EMAIL = Prepared(lambda email: User.objects.filter(email=email).order_by("pk"), email=str)


def test_each_call_binds_its_own_values_and_builds_related_objects():
    a, b = make_organisation(name="甲再生资源有限公司"), make_organisation(name="乙再生资源有限公司")
    member_a, member_b = make_member(a), make_member(b)

    for member, org in ((member_a, a), (member_b, b)):
        with CaptureQueriesContext(connection) as ctx:
            found = MEMBERSHIP.first(user=member.user_id, org=org.pk)
        assert len(ctx.captured_queries) == 1  # organisation and region came with it
        assert found.pk == member.pk and found.role == member.role
        assert found.organisation.legal_name == org.legal_name == found.org_name
        assert found.organisation.region.code == org.region_id

    assert MEMBERSHIP.first(user=member_a.user_id, org=b.pk) is None


def test_string_parameters_and_several_rows():
    make_user("one@example.com")
    make_user("two@example.com")
    assert [u.email for u in USER_BY_EMAIL.all(email="two@example.com")] == ["two@example.com"]
    assert USER_BY_EMAIL.all(email="three@example.com") == []


def test_a_build_that_ignores_a_parameter_or_takes_another_type_is_refused():
    with pytest.raises(ValueError, match="not found"):
        Prepared(lambda user: User.objects.order_by("pk")[:1], user=int).first(user=1)
    with pytest.raises(TypeError):
        Prepared(lambda when: User.objects.filter(date_joined=when), when=float)
    with pytest.raises(TypeError, match="expected the parameters"):
        USER_BY_EMAIL.all(mail="one@example.com")


def test_decimal_parameters_compare_as_numbers():
    from decimal import Decimal

    from listings.models import Lot
    from tests.trading.conftest import published_lot

    seller = make_organisation(name="丙钢铁有限公司", role="generator")
    small = published_lot(seller, quantity="80.5", title="小批")
    published_lot(seller, quantity="500", title="大批")
    at_most = Prepared(
        lambda quantity, seller: Lot.objects.filter(seller_id=seller, quantity__lte=quantity).order_by("pk"),
        quantity=Decimal,
        seller=int,
    )
    assert [lot.pk for lot in at_most.all(quantity=Decimal("80.50"), seller=seller.pk)] == [small.pk]
    assert at_most.all(quantity=Decimal("80.49"), seller=seller.pk) == []
    assert len(at_most.all(quantity=Decimal("1000"), seller=seller.pk)) == 2


def test_the_sql_of_any_query_is_given_with_the_callers_values_for_use_within_another():
    """``sql()``: a ``values_list`` query (not runnable by ``all``) compiled once, its parameters the
    caller's, as Django would compile it for those values."""
    a, b = make_organisation(name="甲再生资源有限公司"), make_organisation(name="乙再生资源有限公司")
    member_a, member_b = make_member(a), make_member(b)
    user_ids = Prepared(
        lambda org: Membership.objects.filter(organisation_id=org).values_list("user_id", flat=True), org=int
    )
    for member, org in ((member_a, a), (member_b, b)):
        sql, params = user_ids.sql(org=org.pk)
        assert (sql, tuple(params)) == Membership.objects.filter(organisation_id=org.pk).values_list(
            "user_id", flat=True
        ).query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            assert cursor.fetchall() == [(member.user_id,)]
    with pytest.raises(TypeError, match="model instances"):
        user_ids.all(org=a.pk)
