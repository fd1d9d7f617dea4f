"""The statistics as plain tables, written out as CSV (one file, a section per table) or Excel (a
sheet per table, headings in the page's language, number formats set on every column).

CSV is UTF-8 with a byte-order mark so that Excel on Chinese Windows opens it without mojibake;
figures are plain numbers (no separators), changes are percentages with two decimals.
"""

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import get_language, pgettext
from django.utils.translation import gettext as _

from frontend.forms_listings import category_name
from frontend.statistics_data import Dashboard, index_status_label

# kind -> Excel number format
FORMATS = {
    "yuan": "#,##0.00",
    "tonnes": "#,##0.000",
    "int": "#,##0",
    "ratio": "+0.0%;-0.0%;0.0%",
    "share": "0.0%",
    "level": "#,##0.00",
}


@dataclass(frozen=True)
class Column:
    header: str
    kind: str = "text"  # text, yuan, tonnes, int, ratio, share, level


@dataclass
class Table:
    sheet: str
    title: str
    columns: list[Column]
    rows: list[list] = field(default_factory=list)
    total: list | None = None


# --- the dashboard's tables ----------------------------------------------------------------------


def _compare_columns() -> list[Column]:
    return [
        Column(_("近12个月成交额（元）"), "yuan"),
        Column(_("上年同期成交额（元）"), "yuan"),
        Column(_("成交额同比"), "ratio"),
        Column(_("成交额占比"), "share"),
        Column(_("近12个月成交量（吨）"), "tonnes"),
        Column(_("上年同期成交量（吨）"), "tonnes"),
        Column(_("成交量同比"), "ratio"),
        Column(_("近12个月成交笔数"), "int"),
        Column(_("上年同期成交笔数"), "int"),
        Column(_("笔数同比"), "ratio"),
    ]


def _compare_cells(row: dict) -> list:
    recent, prior, yoy = row["recent"], row["prior"], row["yoy"]
    return [
        recent[2], prior[2], yoy["value"], row.get("share"),
        recent[1], prior[1], yoy["tonnes"],
        recent[0], prior[0], yoy["trades"],
    ]  # fmt: skip


def _compare_total(total: dict | None, label: list) -> list | None:
    return [*label, *_compare_cells(total)] if total else None


def _manifest_table(sheet: str, title: str, detail: list[dict], side: str) -> Table:
    rows = [
        [
            f"{r['month']:%Y-%m}",
            r["hw_code"],
            r["name"],
            r[f"{side}_n"],
            r[f"{side}_t"],
            r["within_n"],
            r["within_t"],
        ]
        for r in detail
        if r[f"{side}_n"]
    ]
    total = None
    if rows:
        total = [
            _("合计"),
            "",
            "",
            sum(r[3] for r in rows),
            sum((r[4] for r in rows), Decimal(0)),
            sum(r[5] for r in rows),
            sum((r[6] for r in rows), Decimal(0)),
        ]
    return Table(
        sheet=sheet,
        title=title,
        columns=[
            Column(pgettext("statistics", "月份")),
            Column(_("废物代码")),
            Column(_("废物类别")),
            Column(_("联单数"), "int"),
            Column(_("转移量（吨）"), "tonnes"),
            Column(_("其中区域内部联单数"), "int"),
            Column(_("其中区域内部转移量（吨）"), "tonnes"),
        ],
        rows=rows,
        total=total,
    )


def dashboard_tables(d: Dashboard, *, office: str) -> list[Table]:
    category = category_name(d.category) if d.category else _("全部品类")
    info = Table(
        sheet=_("说明"),
        title=_("说明"),
        columns=[Column(_("项目")), Column(_("内容说明"))],
        rows=[
            [_("机构"), office],
            [_("管辖区域"), d.jurisdiction.name],
            [_("统计区域"), " › ".join(r.name for r in d.path)],
            [_("品类"), category],
            [_("统计期"), d.window.label],
            [_("近12个月"), d.recent.label],
            [_("上年同期"), d.prior.label],
            [_("导出时间"), date_format(timezone.localtime(), "Y-m-d H:i")],
            [_("成交额"), _("平台上已结算、未撤销的成交金额（网上交易额），按结算日期统计。")],
            [pgettext("statistics", "区域"), _("成交按标的所在地（提货地区县）归属。")],
            [
                _("危险废物转移联单"),
                _(
                    "转出：产生单位（提货地）在本区域；转入：接收单位（买方注册地）在本区域；区域内转移两边都计。"
                ),
            ],
        ],
    )
    monthly = Table(
        sheet=_("月度成交"),
        title=_("月度成交"),
        columns=[
            Column(pgettext("statistics", "月份")),
            Column(pgettext("statistics", "成交额（元）"), "yuan"),
            Column(_("成交额环比"), "ratio"),
            Column(_("成交额同比"), "ratio"),
            Column(pgettext("statistics", "成交量（吨）"), "tonnes"),
            Column(_("成交量环比"), "ratio"),
            Column(_("成交量同比"), "ratio"),
            Column(pgettext("statistics", "成交笔数"), "int"),
            Column(_("笔数环比"), "ratio"),
            Column(_("笔数同比"), "ratio"),
        ],
        rows=[
            [
                p.label,
                p.value,
                p.pop["value"],
                p.yoy["value"],
                p.tonnes,
                p.pop["tonnes"],
                p.yoy["tonnes"],
                p.trades,
                p.pop["trades"],
                p.yoy["trades"],
            ]  # fmt: skip
            for p in d.points
        ],
        total=[_("合计"), d.totals[2], None, None, d.totals[1], None, None, d.totals[0], None, None],
    )
    categories = Table(
        sheet=_("按品类"),
        title=_("按品类"),
        columns=[Column(_("品类代码")), Column(_("品类")), *_compare_columns()],
        rows=[[r["code"], r["name"], *_compare_cells(r)] for r in d.categories],
        total=_compare_total(d.categories_total, [_("合计"), ""]),
    )
    regions = Table(
        sheet=_("按下级区域"),
        title=_("按下级区域"),
        columns=[Column(_("区划代码")), Column(_("名称")), *_compare_columns()],
        rows=[[r["code"], r["name"], *_compare_cells(r)] for r in d.regions],
        total=_compare_total(d.regions_total, [_("合计"), ""]),
    )
    indices = Table(
        sheet=pgettext("statistics", "价格指数"),
        title=pgettext("statistics", "价格指数"),
        columns=[
            Column(pgettext("statistics", "指数代码")),
            Column(_("名称")),
            Column(_("日期")),
            Column(pgettext("statistics", "指数"), "level"),
            Column(pgettext("statistics", "涨跌幅"), "ratio"),
            Column(pgettext("statistics", "价格（元/吨）"), "yuan"),
            Column(_("状态")),
        ],
        rows=[
            [
                row.series.code,
                row.series.name_en if _english() and row.series.name_en else row.series.name,
                row.value.day.isoformat() if row.value else "",
                row.value.level if row.value else None,
                (row.change / 100) if row.change is not None else None,
                row.value.price.quantize(Decimal("0.01")) if row.value else None,
                index_status_label(row.value.status) if row.value else "",
            ]
            for row in d.indices
        ],
    )
    detail = d.manifests["detail"]
    return [
        info,
        monthly,
        categories,
        regions,
        indices,
        _manifest_table(_("危废转出"), _("危险废物转出（按月份和废物代码）"), detail, "out"),
        _manifest_table(_("危废转入"), _("危险废物转入（按月份和废物代码）"), detail, "in"),
    ]


def _english() -> bool:
    return (get_language() or "").lower().startswith("en")


# --- writers -----------------------------------------------------------------------------------


def _csv_value(value, kind: str) -> str:
    if value is None:
        return ""
    if kind in ("ratio", "share"):
        return f"{(Decimal(value) * 100).quantize(Decimal('0.01'))}%"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def csv_bytes(tables: list[Table], *, titles: bool = True) -> bytes:
    """The tables one after another, each under its title in 【】 and separated by an empty row;
    without ``titles`` (a single table for machines) the first row is the heading."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for number, table in enumerate(tables):
        if number:
            writer.writerow([])
        if titles:
            writer.writerow([f"【{table.title}】"])
        writer.writerow([c.header for c in table.columns])
        for row in [*table.rows, *([table.total] if table.total else [])]:
            writer.writerow([_csv_value(v, c.kind) for v, c in zip(row, table.columns, strict=True)])
        if not table.rows and titles:
            writer.writerow([_("（无数据）")])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _width(value) -> int:
    text = str(value if value is not None else "")
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


SHEET_FORBIDDEN = str.maketrans(dict.fromkeys("[]:*?/\\", "_"))


def xlsx_bytes(tables: list[Table]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    workbook.remove(workbook.active)
    heading = Font(bold=True)
    fill = PatternFill("solid", fgColor="E6F2EC")
    for table in tables:
        sheet = workbook.create_sheet(title=table.sheet.translate(SHEET_FORBIDDEN)[:31])
        sheet.append([c.header for c in table.columns])
        for cell in sheet[1]:
            cell.font = heading
            cell.fill = fill
            cell.alignment = Alignment(vertical="center", wrap_text=True)
        for row in table.rows:
            sheet.append([_xlsx_value(v) for v in row])
        if table.total:
            sheet.append([_xlsx_value(v) for v in table.total])
            for cell in sheet[sheet.max_row]:
                cell.font = heading
        widths = [_width(c.header) for c in table.columns]
        for index, column in enumerate(table.columns, start=1):
            number_format = FORMATS.get(column.kind)
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                if number_format and cell.value is not None and not isinstance(cell.value, str):
                    cell.number_format = number_format
                widths[index - 1] = max(widths[index - 1], _width(cell.value) + (4 if number_format else 0))
        for index, width in enumerate(widths, start=1):
            sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, 8), 60)
        sheet.freeze_panes = "A2"
        sheet.print_title_rows = "1:1"
        sheet.page_setup.orientation = "landscape"
        sheet.page_setup.fitToWidth = 1
        sheet.page_setup.fitToHeight = 0
        sheet.sheet_properties.pageSetUpPr.fitToPage = True
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _xlsx_value(value):
    if isinstance(value, Decimal):
        return float(value)
    return value
