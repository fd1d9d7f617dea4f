"""Generated trade facts for the pricing benchmarks (``test_stats_bench.py``,
``test_index_rebuild_bench.py``): settled trades over 2024-2025 (1 % voided), uniform over the real
counties and the catalogue's tonne-priced leaves, between 2,000 sellers and 2,000 buyers, inserted
by PostgreSQL itself (``INSERT … SELECT … generate_series``, no Python per row) in batches, with the
facts' secondary indexes dropped during the load and built again after with the same definitions."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection

from listings.models import Category
from market.core.models import Region

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_DAY = date(2024, 1, 1)
LAST_DAY = date(2025, 12, 31)
BATCH = 1_000_000

GENERATE_SQL = """
    INSERT INTO pricing_tradefact (
        trade_id, source, awarded_at, settled_at, category_id, region_id, seller_uscc, buyer_uscc,
        quantity_t, unit_price, amount, currency, voided_at, void_reason, created_at
    )
    SELECT 'bench:' || g, 'import', t.settled - interval '3 hours', t.settled,
           (%(categories)s::text[])[1 + floor(random() * %(n_categories)s)::int],
           (%(counties)s::text[])[1 + floor(random() * %(n_counties)s)::int],
           'S' || lpad(floor(random() * 2000)::int::text, 17, '0'),
           'B' || lpad(floor(random() * 2000)::int::text, 17, '0'),
           q.qty, q.price, round(q.qty * q.price, 2), 'CNY',
           CASE WHEN random() < 0.01 THEN t.settled + interval '2 days' END, '', now()
    FROM generate_series(%(first)s::int, %(last)s::int) AS g
    CROSS JOIN LATERAL (
        SELECT %(start)s::timestamptz + random() * (%(end)s::timestamptz - %(start)s::timestamptz) AS settled,
               g AS keep_lateral
    ) t
    CROSS JOIN LATERAL (
        SELECT round((1 + random() * 999)::numeric, 3) AS qty,
               round((200 + random() * 4800)::numeric, 2) AS price,
               g AS keep_lateral
    ) q
"""


def moment(day: date) -> datetime:
    """Midnight of ``day`` in Asia/Shanghai."""
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)


def span() -> tuple[datetime, datetime]:
    """The generated trades' settlement times: [first day, the day after the last)."""
    return moment(FIRST_DAY), moment(LAST_DAY + timedelta(days=1))


def leaf_categories() -> list[str]:
    return list(
        Category.objects.filter(is_active=True, unit="t", children__isnull=True).values_list(
            "code", flat=True
        )
    )


def facts_generate(n: int) -> None:
    """``n`` facts, the same ones for the same ``n`` (a fixed seed), then analysed."""
    categories = leaf_categories()
    counties = list(Region.objects.filter(level="county").values_list("code", flat=True))
    start, end = span()
    with connection.cursor() as cursor:
        # A bulk load: sorting once to build an index is far faster than millions of insertions into it.
        cursor.execute(
            """
            SELECT indexname, indexdef FROM pg_indexes
            WHERE tablename = 'pricing_tradefact' AND indexname NOT IN (
                SELECT conname FROM pg_constraint WHERE conrelid = 'pricing_tradefact'::regclass
            )
            """
        )
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SELECT setseed(0.42)")
        for first in range(1, n + 1, BATCH):
            cursor.execute(
                GENERATE_SQL,
                {
                    "categories": categories, "n_categories": len(categories),
                    "counties": counties, "n_counties": len(counties),
                    "first": first, "last": min(n, first + BATCH - 1), "start": start, "end": end,
                },
            )  # fmt: skip
        # Inside a test's transaction the foreign keys' deferred checks must run before an index
        # can be built on the table.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _name, definition in indexes:
            cursor.execute(definition)
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("ANALYZE pricing_tradefact")
