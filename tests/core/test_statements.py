"""``insert_with_updates``: rows inserted and other rows updated by one statement on PostgreSQL."""

import pytest
from django.db import connection
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.test.utils import CaptureQueriesContext

from market.accounts.models import User
from market.core.models import Notification
from market.core.statements import insert_with_updates
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_rows_are_inserted_and_other_rows_updated_by_one_statement():
    a, b = make_user(full_name="甲"), make_user(full_name="乙")
    notices = [
        Notification(user=a, title="出价已被超过", kind="outbid"),
        Notification(user=b, title="领先", kind="proxy"),
    ]
    with CaptureQueriesContext(connection) as ctx:
        counts = insert_with_updates(
            notices,
            [
                (
                    User.objects.filter(pk__in=[a.pk, b.pk]),
                    {"full_name": Concat(F("full_name"), Value("（已通知）"))},
                )
            ],
        )
    statements = [q["sql"] for q in ctx.captured_queries]
    assert len(statements) == 1 and statements[0].startswith("WITH u0 AS (UPDATE"), statements
    assert counts == [2]  # the rows each update changed
    assert all(n.pk is not None and not n._state.adding for n in notices)
    assert all(n.created_at is not None for n in notices)  # auto_now_add, as bulk_create sets it
    stored = {
        n.pk: (n.user_id, n.title, n.kind)
        for n in Notification.objects.filter(pk__in=[n.pk for n in notices])
    }
    assert stored == {n.pk: (n.user_id, n.title, n.kind) for n in notices}
    assert User.objects.get(pk=a.pk).full_name == "甲（已通知）"
    assert User.objects.get(pk=b.pk).full_name == "乙（已通知）"


def test_an_update_that_matches_no_row_is_counted_as_such():
    a = make_user(full_name="丁")
    notice = Notification(user=a, title="赢得竞价", kind="won")
    counts = insert_with_updates([notice], [(User.objects.filter(pk=a.pk + 1000), {"full_name": "无此人"})])
    assert counts == [0] and Notification.objects.filter(pk=notice.pk).exists()


def test_with_nothing_to_insert_the_updates_still_run():
    a = make_user(full_name="丙")
    assert insert_with_updates([], [(User.objects.filter(pk=a.pk), {"full_name": "丙公司"})]) == [1]
    assert User.objects.get(pk=a.pk).full_name == "丙公司"


def test_one_table_written_twice_or_an_empty_update_is_refused_before_anything_runs():
    a = make_user(full_name="戊")
    same_table = [
        (User.objects.filter(pk=a.pk), {"full_name": "一"}),
        (User.objects.filter(pk=a.pk), {"full_name": "二"}),
    ]
    with pytest.raises(ValueError, match="twice"):
        insert_with_updates([Notification(user=a, title="x")], same_table)
    with pytest.raises(ValueError, match="without values"):
        insert_with_updates([Notification(user=a, title="x")], [(User.objects.filter(pk=a.pk), {})])
    assert User.objects.get(pk=a.pk).full_name == "戊" and not Notification.objects.filter(user=a).exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_statements_sent_together_are_one_transaction_in_one_round_trip():
    """``execute_many_async`` in autocommit: one query string; each statement's result (rows, or
    the rows changed) handed to its ``then``; a failing statement rolls back the ones before it."""
    from market.core.commit import execute_many_async
    from market.core.notify import notify_users_statement
    from market.core.statements import Statement, update_statement

    a = make_user(full_name="甲")
    seen = {}
    statements = [
        update_statement(
            User.objects.filter(pk=a.pk), {"full_name": "甲（已改）"}, seen.setdefault("update", []).append
        ),
        notify_users_statement(
            User.objects.filter(pk=a.pk).values_list("pk", flat=True), title="成交", kind="won"
        ),
    ]
    with CaptureQueriesContext(connection) as ctx:
        results = execute_many_async(statements)
    assert len(ctx.captured_queries) == 1
    assert results[0] == 1 and results[1] == [(a.pk, 1)]  # rows changed; the notice's user and unread count
    assert seen["update"] == [1]
    assert User.objects.get(pk=a.pk).full_name == "甲（已改）"
    assert Notification.objects.filter(user=a, kind="won").count() == 1

    refused = Statement('INSERT INTO "core_notification" ("user_id") VALUES (%s)', [a.pk])  # no title
    with pytest.raises(Exception, match="null value"):
        execute_many_async([update_statement(User.objects.filter(pk=a.pk), {"full_name": "乙"}), refused])
    assert User.objects.get(pk=a.pk).full_name == "甲（已改）"  # the update went with the failure


def test_a_row_update_written_once_sets_values_raises_to_at_least_and_keeps_a_newer_row():
    """``row_update_statement``: plain values, a field raised to at least a value (from nothing
    too, never lowered), and a guard on another field, as the ORM's update of the same would do."""
    from decimal import Decimal

    from market.core.statements import execute_many, row_update_statement
    from market.trading.models import Bidder
    from tests.trading.conftest import Floor, make_party, published_lot

    seller, buyer = (
        make_party(role="generator", name="甲钢铁集团有限公司"),
        make_party(name="乙回收利用有限公司"),
    )
    floor = Floor(seller=seller, buyers=[buyer], lot=published_lot(seller.org))
    sale = floor.sale()
    bidder = Bidder.objects.create(sale=sale, organisation=buyer.org, label_index=0)

    def raise_to(amount):
        statement = row_update_statement(Bidder, bidder.pk, {}, at_least={"maximum": Decimal(amount)})
        (changed,) = execute_many([statement])
        bidder.refresh_from_db()
        return changed, bidder.maximum

    assert raise_to("2000.00") == (1, Decimal("2000.00"))  # from nothing
    assert raise_to("1990.00") == (1, Decimal("2000.00"))  # never lowered
    assert raise_to("2100.50") == (1, Decimal("2100.50"))

    newer = row_update_statement(Bidder, bidder.pk, {"label_index": 3}, below={"label_index": 2})
    assert execute_many([newer]) == [1]
    older = row_update_statement(Bidder, bidder.pk, {"label_index": 1}, below={"label_index": 2})
    assert execute_many([older]) == [0]  # the row holds 3: left as it is
    bidder.refresh_from_db()
    assert bidder.label_index == 3
    with pytest.raises(ValueError):
        row_update_statement(Bidder, bidder.pk, {})


def test_rows_with_an_expression_are_inserted_by_djangos_own_compile():
    a = make_user(full_name="甲")
    notice = Notification(user=a, title=Concat(Value("出价"), Value("已被超过")), kind="outbid")
    insert_with_updates([notice], [(User.objects.filter(pk=a.pk), {"full_name": "甲（已通知）"})])
    assert Notification.objects.get(pk=notice.pk).title == "出价已被超过"
    assert User.objects.get(pk=a.pk).full_name == "甲（已通知）"


def test_a_failing_statement_marks_the_callers_transaction_and_a_failing_then_stops_no_other(caplog):
    """As the ORM's writes: a statement that fails inside a caller's transaction marks it for
    rollback (PostgreSQL has aborted it). After the writes, a ``then`` that fails is logged and the
    others still run."""
    from django.db import DatabaseError, transaction

    from market.core.statements import Statement, execute_many

    with transaction.atomic():
        with pytest.raises(DatabaseError):
            execute_many([Statement('INSERT INTO "core_notification" ("user_id") VALUES (%s)', [1])])
        assert transaction.get_rollback()  # the savepoint is rolled back on the way out
    a = make_user(full_name="甲")
    seen = []

    def failing(result):
        raise RuntimeError("a live message that could not be sent")

    results = execute_many(
        [
            Statement('UPDATE "accounts_user" SET "full_name" = %s WHERE "id" = %s', ["甲一", a.pk], failing),
            Statement(
                'UPDATE "accounts_user" SET "full_name" = %s WHERE "id" = %s', ["甲二", a.pk], seen.append
            ),
        ]
    )
    assert results == [1, 1] and seen == [1]
    assert "a live message that could not be sent" in caplog.text
    assert User.objects.get(pk=a.pk).full_name == "甲二"
