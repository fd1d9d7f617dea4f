"""The catalogue of 再生资源, 大宗工业固体废物 and 危险废物 loaded by migration ``0002_catalogue``.

One category per line, parents before children. ``C(code, name, name_en, min_lot_tonnes, *spec_fields,
unit=..., ...)``; what a row leaves out is filled in by ``_resolve``:

- ``tonnes_per_unit``: 1 for ``t``, 0.001 for ``kg``, ``None`` for ``piece``, ``vehicle`` and ``m3``
  (a piece of WEEE, a vehicle or a cubic metre of spoil has no single weight, so such lots count
  pieces and stay out of the tonne-based price indices);
- ``min_lot_tonnes``: the parent's (0 where the unit cannot be converted to tonnes);
- ``hazardous`` and ``hw_code``: the parent's, so every node under ``hazardous.hwNN`` is hazardous.

Spec fields sit on the most general node they apply to; children inherit them (``specs.schema_merge``)
and a child's field with the same key replaces the parent's (e.g. the thickness floor of each
ferrous grade, the chemistries allowed under each lithium battery node).

Judgement calls, stated once here and in the categories' descriptions:

- 退役动力电池 (lithium traction batteries) are not a class of the 国家危险废物名录, so they are not
  flagged hazardous; they are a separate branch handled under the 新能源汽车动力蓄电池回收利用 rules
  (traceability code, 规范条件 whitelist recyclers), and their description says so.
- 废铅酸蓄电池 is hazardous HW31 (900-052-31); 铅渣 (lead dross and smelting slag) is flagged HW48.
- 医疗废物 (HW01) must go to the designated centralised disposal unit (《医疗废物管理条例》); the
  class is present for completeness and licences but inactive, so nobody can list it.
"""

from decimal import Decimal

from market.core.hazardous import HW_CLASSES

# --- spec field builders ---------------------------------------------------------------------------


def num(key, label, label_en, unit="", lo=None, hi=None, *, required=False, help=""):
    field = {"key": key, "label": label, "label_en": label_en, "type": "number"}
    if unit:
        field["unit"] = unit
    if lo is not None:
        field["min"] = lo
    if hi is not None:
        field["max"] = hi
    field["required"] = required
    if help:
        field["help"] = help
    return field


def integer(key, label, label_en, unit="", lo=None, hi=None, *, required=False, help=""):
    return {**num(key, label, label_en, unit, lo, hi, required=required, help=help), "type": "integer"}


def pct(key, label, label_en, *, required=False, help=""):
    return num(key, label, label_en, "%", 0, 100, required=required, help=help)


def choice(key, label, label_en, choices, *, required=False, help=""):
    field = {"key": key, "label": label, "label_en": label_en, "type": "choice"}
    field["choices"] = [list(c) for c in choices]
    field["required"] = required
    if help:
        field["help"] = help
    return field


def flag(key, label, label_en, *, required=False, help=""):
    field = {"key": key, "label": label, "label_en": label_en, "type": "bool", "required": required}
    if help:
        field["help"] = help
    return field


def text(key, label, label_en, max_length=200, *, required=False, help=""):
    field = {"key": key, "label": label, "label_en": label_en, "type": "text", "max_length": max_length}
    field["required"] = required
    if help:
        field["help"] = help
    return field


# --- shared fields ---------------------------------------------------------------------------------
# fmt: off
IMPURITY = pct("impurity_pct", "杂质率", "Impurity")
MOISTURE = pct("moisture_pct", "水分", "Moisture")
FE = pct("fe_pct", "铁含量", "Fe content")
LENGTH = num("max_length_mm", "最大长度", "Maximum length", "mm", 0, 20000)
WIDTH = num("max_width_mm", "最大宽度", "Maximum width", "mm", 0, 5000)
PARTICLE = num("particle_mm", "粒度上限", "Maximum particle size", "mm", 0, 1000)
BULK_DENSITY = num("bulk_density", "堆密度", "Bulk density", "t/m³", 0, 8)
OIL = pct("oil_pct", "含油率", "Oil content")
BALED = flag("baled", "是否打包", "Baled")
TFE = pct("tfe_pct", "全铁 TFe", "Total iron (TFe)")
FEO = pct("feo_pct", "氧化亚铁 FeO", "FeO")
FCAO = pct("fcao_pct", "游离氧化钙 f-CaO", "Free lime (f-CaO)")
LOI = pct("loi_pct", "烧失量", "Loss on ignition")
CU = pct("cu_pct", "铜含量", "Cu content")
AL = pct("al_pct", "铝含量", "Al content")
OIL_WATER = pct("oil_water_pct", "含油含水率", "Oil and water content")
PB = pct("pb_pct", "铅含量", "Pb content")
ZN = pct("zn_pct", "锌含量", "Zn content")
NI = pct("ni_pct", "镍含量", "Ni content")
CR = pct("cr_pct", "铬含量", "Cr content")
MO = pct("mo_pct", "钼含量", "Mo content")
SN = pct("sn_pct", "锡含量", "Sn content")
CU_YIELD = pct("cu_yield_pct", "出铜率", "Copper yield")
STEEL_GRADE = text("alloy_grade", "钢种", "Steel grade", 60)
AL_ALLOY = text("alloy", "牌号", "Alloy", 20)
PAINTED = flag("painted", "带漆或喷涂", "Painted or coated")


def thickness(lo=0, hi=500):
    return num("thickness_mm", "最小厚度", "Minimum thickness", "mm", lo, hi, help="料型中最薄部位的厚度。")


PAPER_GRADE = choice("grade", "等级", "Grade", [
    ("A", "一级", "Grade A"), ("B", "二级", "Grade B"), ("C", "三级", "Grade C"), ("MIX", "统货", "Ungraded"),
])
PLASTIC_COLOUR = choice("colour", "颜色", "Colour", [
    ("clear", "透明", "Clear"), ("white", "白色", "White"), ("natural", "本色", "Natural"), ("blue", "蓝色", "Blue"),
    ("green", "绿色", "Green"), ("black", "黑色", "Black"), ("mixed", "杂色", "Mixed colours"),
])
PLASTIC_FORM = choice("form", "形态", "Form", [
    ("flakes", "瓶片/破碎料", "Flakes / regrind"), ("pellets", "颗粒", "Pellets"), ("film", "膜", "Film"),
    ("lumps", "块料", "Lumps"), ("bales", "整瓶/整件打包", "Bales of whole items"),
])
MFI = num("mfi", "熔融指数", "Melt flow index", "g/10min", 0, 2000)
PET_IV = num("iv", "特性粘度", "Intrinsic viscosity", "dL/g", 0, 2)
TYRE_TYPE = choice("tyre_type", "轮胎类型", "Tyre type", [
    ("truck", "载重胎", "Truck"), ("car", "乘用车胎", "Passenger car"), ("otr", "工程胎", "Off-the-road"), ("mixed", "混合", "Mixed"),
])
STEEL_WIRE = flag("steel_wire", "含钢丝", "Contains steel wire")
MESH = integer("mesh", "目数", "Mesh", "目", 1, 400)
FIBRE = choice("fibre", "主要纤维", "Main fibre", [
    ("cotton", "棉", "Cotton"), ("polyester", "涤纶", "Polyester"), ("wool", "毛", "Wool"), ("blend", "混纺", "Blend"),
    ("mixed", "混杂", "Mixed"),
])
SORTED = flag("sorted", "已分拣", "Sorted")
COMPLETE_UNIT = flag("complete", "整机完整", "Complete unit")
TV_DISPLAY = choice("display", "显示类型", "Display type", [
    ("crt", "显像管（CRT）", "CRT"), ("lcd", "液晶（LCD/LED）", "LCD/LED"), ("pdp", "等离子", "Plasma"), ("other", "其他", "Other"),
])
AIRCON_TYPE = choice("type", "类型", "Type", [("split", "分体式", "Split"), ("cabinet", "柜式", "Cabinet"), ("window", "窗式", "Window")])
COMPUTER_TYPE = choice("form", "类型", "Type", [("desktop", "台式机", "Desktop"), ("laptop", "笔记本", "Laptop"), ("monitor", "显示器", "Monitor")])
CURB_WEIGHT = integer("curb_weight_kg", "整备质量", "Curb weight", "kg", 0, 100000)
VEHICLE_DOCUMENTS = flag("documents", "登记证书和号牌齐全", "Registration and plates present")
VEHICLE_COMPLETE = flag("complete", "五大总成齐全", "Five major assemblies present")
BATTERY_INCLUDED = flag("battery_included", "含动力电池", "Traction battery included")
ACID_DRAINED = flag("acid_drained", "已倒酸", "Acid drained", required=True)
CASING_INTACT = flag("casing_intact", "外壳完好", "Casing intact")
LI_CHEMISTRIES = [
    ("NCM", "三元（镍钴锰）", "NCM"), ("NCA", "三元（镍钴铝）", "NCA"), ("LFP", "磷酸铁锂", "LFP"),
    ("LCO", "钴酸锂", "LCO"), ("LMO", "锰酸锂", "LMO"), ("MIX", "混合", "Mixed"),
]


def chemistry(choices, required=False):
    return choice("chemistry", "电池类型", "Chemistry", choices, required=required, help="正极材料体系。")


SOH = pct("soh_pct", "健康度 SOH", "State of health")
LI_FORM = choice("form", "形态", "Form", [("pack", "电池包", "Pack"), ("module", "模组", "Module"), ("cell", "电芯", "Cell")])
TRACEABLE = flag("traceable", "已登记溯源编码", "Traceability code registered")
FLY_ASH_GRADE = choice("grade", "等级", "Grade", [("I", "Ⅰ级", "Grade I"), ("II", "Ⅱ级", "Grade II"), ("III", "Ⅲ级", "Grade III")],
                       required=True, help="GB/T 1596。")
FLY_ASH_CLASS = choice("ash_class", "类别", "Class", [("F", "F类", "Class F"), ("C", "C类", "Class C")])
FINENESS = pct("fineness_pct", "细度（45μm方孔筛筛余）", "Fineness (45 μm residue)")
CALORIFIC = num("calorific_mj_kg", "发热量", "Calorific value", "MJ/kg", 0, 30)
GYPSUM_PURITY = pct("purity_pct", "二水硫酸钙 CaSO4·2H2O", "CaSO4·2H2O purity")
CHLORIDE = num("chloride_mg_kg", "氯离子 Cl⁻", "Chloride (Cl⁻)", "mg/kg", 0, 100000)
P2O5 = pct("p2o5_pct", "五氧化二磷 P2O5", "P2O5")
NA2O = pct("na2o_pct", "氧化钠 Na2O", "Na2O")
CROP = choice("crop", "作物", "Crop", [
    ("corn", "玉米", "Corn"), ("wheat", "小麦", "Wheat"), ("rice", "水稻", "Rice"), ("cotton", "棉花", "Cotton"), ("other", "其他", "Other"),
])
TREATED = flag("treated", "含涂装或防腐处理", "Painted or preservative-treated")
WASTE_CODE = text("waste_code", "废物代码", "Waste code", 12, help="《国家危险废物名录》八位代码，如 900-214-08。")
HAZ_FORM = choice("physical_form", "物理形态", "Physical form", [
    ("solid", "固态", "Solid"), ("semi_solid", "半固态", "Semi-solid"), ("liquid", "液态", "Liquid"),
])
WATER = pct("water_pct", "含水率", "Water content")
ACID = pct("acid_pct", "酸浓度", "Acid concentration")
CU_G_L = num("cu_g_l", "铜含量", "Cu content", "g/L", 0, 300)
V2O5 = pct("v2o5_pct", "五氧化二钒", "V2O5")
PGM = num("pgm_g_t", "铂钯铑含量", "PGM content", "g/t", 0, 100000)

# --- descriptions of the judgement calls ----------------------------------------------------------

DESC_LEAD_DROSS = "铅冶炼与熔铸产生的铅渣、浮渣属《国家危险废物名录》HW48，买方须持相应经营许可证。"
DESC_ZINC_DROSS = "热镀锌锌渣（底渣、浮渣）；除尘灰和废助镀剂属 HW23，请在危险废物类别挂牌。"
DESC_WEEE = "按台计量；单台重量差异大（显像管与平板电视、台式机与笔记本），不折算为吨，不计入价格指数。"
DESC_VEHICLES = "按辆计量，不折算为吨；买方须为报废机动车回收拆解资质企业。"
DESC_LEAD_ACID = "危险废物 HW31（900-052-31），转移须办理危险废物转移联单。"
DESC_LITHIUM = (
    "不属《国家危险废物名录》所列类别，但须按新能源汽车动力蓄电池回收利用溯源管理办理，"
    "买方宜为符合综合利用行业规范条件的企业；破损、漏液电池按危险货物运输。"
)
DESC_NONFERROUS_SLAG = "铜渣、镍渣等一般工业固体废物；列入名录的有色冶炼废物请在危险废物 HW48 挂牌。"
DESC_SPOIL = "按立方米计量；密度随含水量变化大，不折算为吨。"
DESC_HAZARDOUS = "买方须持有相应类别的危险废物经营许可证；转移须办理危险废物电子转移联单。"
DESC_MEDICAL = "医疗废物须交由医疗废物集中处置单位处置（《医疗废物管理条例》），不在本平台交易。"

HW_NAMES_EN = {
    "HW01": "Medical waste",
    "HW02": "Pharmaceutical waste",
    "HW03": "Waste drugs and medicines",
    "HW04": "Pesticide waste",
    "HW05": "Wood preservative waste",
    "HW06": "Waste organic solvents and solvent-bearing waste",
    "HW07": "Cyanide-bearing heat-treatment waste",
    "HW08": "Waste mineral oil and oil-bearing waste",
    "HW09": "Oil/water and hydrocarbon/water mixtures or emulsions",
    "HW10": "PCB and PBB waste",
    "HW11": "Distillation residues",
    "HW12": "Dye and paint waste",
    "HW13": "Organic resin waste",
    "HW14": "New chemical substance waste",
    "HW15": "Explosive waste",
    "HW16": "Photosensitive material waste",
    "HW17": "Surface treatment waste",
    "HW18": "Incineration residues",
    "HW19": "Metal carbonyl waste",
    "HW20": "Beryllium-bearing waste",
    "HW21": "Chromium-bearing waste",
    "HW22": "Copper-bearing waste",
    "HW23": "Zinc-bearing waste",
    "HW24": "Arsenic-bearing waste",
    "HW25": "Selenium-bearing waste",
    "HW26": "Cadmium-bearing waste",
    "HW27": "Antimony-bearing waste",
    "HW28": "Tellurium-bearing waste",
    "HW29": "Mercury-bearing waste",
    "HW30": "Thallium-bearing waste",
    "HW31": "Lead-bearing waste",
    "HW32": "Inorganic fluoride waste",
    "HW33": "Inorganic cyanide waste",
    "HW34": "Waste acids",
    "HW35": "Waste alkalis",
    "HW36": "Asbestos waste",
    "HW37": "Organophosphorus waste",
    "HW38": "Organic cyanide waste",
    "HW39": "Phenolic waste",
    "HW40": "Ether-bearing waste",
    "HW45": "Organohalogen waste",
    "HW46": "Nickel-bearing waste",
    "HW47": "Barium-bearing waste",
    "HW48": "Non-ferrous mining and smelting waste",
    "HW49": "Other hazardous waste",
    "HW50": "Spent catalysts",
}
# fmt: on


def C(
    code, name, name_en, min_lot=None, *spec, unit="t", tpu="auto", haz=None, hw=None, active=True, desc=""
):
    """One catalogue row as written below; ``_resolve`` fills in what is inherited."""
    return {
        "code": code,
        "name": name,
        "name_en": name_en,
        "min_lot_tonnes": None if min_lot is None else Decimal(str(min_lot)),
        "spec_schema": list(spec),
        "unit": unit,
        "tonnes_per_unit": tpu,
        "hazardous": haz,
        "hw_code": hw,
        "is_active": active,
        "description": desc,
    }


# Concrete wastes listed under some HW classes (each such class also gets an "other" child so a
# waste of the class that is none of these can still be listed).
# fmt: off
HW_CONCRETE = {
    "HW08": [
        C("hazardous.hw08.mineral_oil", "废矿物油", "Waste mineral oil", None, WATER),
        C("hazardous.hw08.oily_sludge", "含油污泥", "Oily sludge", None, OIL, MOISTURE),
        C("hazardous.hw08.other", "其他含矿物油废物", "Other oil-bearing waste"),
    ],
    "HW17": [
        C("hazardous.hw17.plating_sludge", "电镀污泥", "Electroplating sludge", None, CU, NI, CR, MOISTURE),
        C("hazardous.hw17.other", "其他表面处理废物", "Other surface treatment waste"),
    ],
    "HW22": [
        C("hazardous.hw22.sludge", "含铜污泥", "Copper-bearing sludge", None, CU, MOISTURE),
        C("hazardous.hw22.etchant", "含铜蚀刻废液", "Spent copper etchant", None, CU_G_L),
        C("hazardous.hw22.other", "其他含铜废物", "Other copper-bearing waste"),
    ],
    "HW29": [
        C("hazardous.hw29.lamps", "废含汞荧光灯管", "Waste mercury fluorescent lamps"),
        C("hazardous.hw29.other", "其他含汞废物", "Other mercury-bearing waste"),
    ],
    "HW34": [
        C("hazardous.hw34.sulphuric", "废硫酸", "Spent sulphuric acid", None, ACID),
        C("hazardous.hw34.hydrochloric", "废盐酸", "Spent hydrochloric acid", None, ACID),
        C("hazardous.hw34.other", "其他废酸", "Other waste acids"),
    ],
    "HW49": [
        C("hazardous.hw49.circuit_boards", "废电路板", "Waste printed circuit boards"),
        C("hazardous.hw49.nicd", "废镉镍电池", "Waste nickel-cadmium batteries"),
        C("hazardous.hw49.other", "其他废物", "Other waste"),
    ],
    "HW50": [
        C("hazardous.hw50.scr", "废脱硝催化剂", "Spent SCR denitrification catalyst", None, V2O5),
        C("hazardous.hw50.auto", "废机动车尾气净化催化剂", "Spent automotive exhaust catalysts", 0.01, PGM, unit="kg"),
        C("hazardous.hw50.other", "其他废催化剂", "Other spent catalysts"),
    ],
}
# fmt: on


def _hazardous_rows():
    """One node per class of the national catalogue (HW01 inactive), concrete wastes under some."""
    rows = []
    for code, name in HW_CLASSES.items():
        node = f"hazardous.{code.lower()}"
        if code == "HW01":
            rows.append(C(node, name, HW_NAMES_EN[code], hw=code, active=False, desc=DESC_MEDICAL))
        else:
            rows.append(C(node, name, HW_NAMES_EN[code], hw=code))
        rows.extend(HW_CONCRETE.get(code, []))
    return rows


# --- the catalogue ---------------------------------------------------------------------------------
# fmt: off
ROWS = [
    # 废钢铁 (grades after GB/T 4223: the thickness floor of each grade is enforced)
    C("ferrous", "废钢铁", "Ferrous scrap", 5, FE, IMPURITY),
    C("ferrous.heavy", "重型废钢", "Heavy melting scrap", None, thickness(6), LENGTH, WIDTH),
    C("ferrous.medium", "中型废钢", "Medium scrap", None, thickness(4), LENGTH, WIDTH),
    C("ferrous.small", "小型废钢", "Small scrap", None, thickness(2), LENGTH, WIDTH),
    C("ferrous.light", "轻薄料废钢", "Light and thin scrap", None, thickness(0, 2), LENGTH, WIDTH),
    C("ferrous.shredded", "破碎废钢", "Shredded scrap", None, BULK_DENSITY, PARTICLE),
    C("ferrous.bales", "打包块", "Baled scrap", None, BULK_DENSITY, LENGTH),
    C("ferrous.turnings", "钢屑", "Steel turnings", None, OIL),
    C("ferrous.cast_iron", "废铸铁", "Cast iron scrap", None, LENGTH),
    C("ferrous.alloy", "合金废钢", "Alloy steel scrap", None, STEEL_GRADE, LENGTH),
    # 废有色金属
    C("nonferrous", "废有色金属", "Non-ferrous scrap", 1, IMPURITY),
    C("nonferrous.copper", "废铜", "Copper scrap", None, CU),
    C("nonferrous.copper.bright", "光亮铜", "Bright copper"),
    C("nonferrous.copper.red", "紫杂铜", "Mixed red copper"),
    C("nonferrous.copper.yellow", "黄杂铜", "Mixed brass"),
    C("nonferrous.copper.turnings", "铜屑", "Copper turnings", None, OIL),
    C("nonferrous.copper.wire", "废电线电缆", "Scrap insulated wire", None, CU_YIELD),
    C("nonferrous.aluminium", "废铝", "Aluminium scrap", None, AL, OIL_WATER),
    C("nonferrous.aluminium.cast", "生铝", "Cast aluminium"),
    C("nonferrous.aluminium.wrought", "熟铝", "Wrought aluminium"),
    C("nonferrous.aluminium.extrusion", "铝型材", "Aluminium extrusions", None, AL_ALLOY, PAINTED),
    C("nonferrous.aluminium.ubc", "易拉罐", "Used beverage cans (UBC)", None, BALED),
    C("nonferrous.aluminium.turnings", "铝屑", "Aluminium turnings"),
    C("nonferrous.lead", "废铅", "Lead scrap", None, PB),
    C("nonferrous.lead.scrap", "废铅（铅皮、铅管等）", "Lead sheet, pipe and other lead scrap"),
    C("nonferrous.lead.dross", "铅渣", "Lead dross and slag", haz=True, hw="HW48", desc=DESC_LEAD_DROSS),
    C("nonferrous.zinc", "废锌", "Zinc scrap", None, ZN),
    C("nonferrous.zinc.dross", "锌渣", "Zinc dross", desc=DESC_ZINC_DROSS),
    C("nonferrous.zinc.scrap", "废锌（锌板、压铸件等）", "Zinc sheet, die-castings and other zinc scrap"),
    C("nonferrous.stainless", "废不锈钢", "Stainless steel scrap", 2, NI, CR, MO),
    C("nonferrous.stainless.s200", "200系废不锈钢", "200-series stainless scrap"),
    C("nonferrous.stainless.s300", "300系废不锈钢", "300-series stainless scrap"),
    C("nonferrous.stainless.s400", "400系废不锈钢", "400-series stainless scrap"),
    C("nonferrous.nickel", "废镍", "Nickel scrap", 0.5, NI),
    C("nonferrous.tin", "废锡", "Tin scrap", 0.5, SN),
    # 废纸
    C("paper", "废纸", "Waste paper", 5, PAPER_GRADE, MOISTURE, IMPURITY, BALED),
    C("paper.occ", "黄板纸（废纸箱）", "Old corrugated containers (OCC)"),
    C("paper.onp", "废报纸", "Old newspapers (ONP)"),
    C("paper.sop", "办公废纸", "Sorted office paper (SOP)"),
    C("paper.mixed", "混合废纸", "Mixed waste paper"),
    # 废塑料
    C("plastics", "废塑料", "Waste plastics", 1, PLASTIC_COLOUR, PLASTIC_FORM, MFI, IMPURITY, MOISTURE),
    C("plastics.pet", "PET 瓶及瓶片", "PET bottles and flakes", None, PET_IV),
    C("plastics.hdpe", "HDPE 高密度聚乙烯", "HDPE"),
    C("plastics.ldpe", "LDPE 低密度聚乙烯（膜）", "LDPE (film)"),
    C("plastics.pp", "PP 聚丙烯", "PP"),
    C("plastics.pvc", "PVC 聚氯乙烯", "PVC"),
    C("plastics.ps", "PS 聚苯乙烯", "PS"),
    C("plastics.abs", "ABS", "ABS"),
    C("plastics.mixed", "混合塑料", "Mixed plastics"),
    # 废橡胶与废旧轮胎
    C("rubber", "废橡胶", "Waste rubber", 5, IMPURITY),
    C("rubber.tyres", "废旧轮胎", "End-of-life tyres", None, TYRE_TYPE, STEEL_WIRE),
    C("rubber.crumb", "橡胶粉", "Crumb rubber", 1, MESH),
    # 废玻璃
    C("glass", "废玻璃", "Waste glass", 10, IMPURITY, PARTICLE),
    C("glass.clear", "白色碎玻璃", "Clear glass cullet"),
    C("glass.amber", "棕色碎玻璃", "Amber glass cullet"),
    C("glass.green", "绿色碎玻璃", "Green glass cullet"),
    C("glass.mixed", "混色碎玻璃", "Mixed-colour glass cullet"),
    C("glass.flat", "平板碎玻璃", "Flat glass cullet"),
    # 废旧纺织品
    C("textiles", "废旧纺织品", "Waste textiles", 1, FIBRE, SORTED, MOISTURE, BALED),
    C("textiles.garments", "旧衣物", "Used clothing"),
    C("textiles.offcuts", "纺织边角料", "Textile offcuts"),
    C("textiles.other", "其他废旧纺织品", "Other waste textiles"),
    # 废弃电器电子产品 (the five products of the treatment fund, counted by the piece)
    C("weee", "废弃电器电子产品", "Waste electrical and electronic equipment", None, COMPLETE_UNIT, unit="piece", desc=DESC_WEEE),
    C("weee.tv", "废电视机", "Waste television sets", None, TV_DISPLAY, unit="piece"),
    C("weee.fridge", "废电冰箱", "Waste refrigerators", unit="piece"),
    C("weee.washer", "废洗衣机", "Waste washing machines", unit="piece"),
    C("weee.aircon", "废房间空调器", "Waste room air conditioners", None, AIRCON_TYPE, unit="piece"),
    C("weee.computer", "废微型计算机", "Waste computers", None, COMPUTER_TYPE, unit="piece"),
    # 报废机动车 (counted by the vehicle)
    C("vehicles", "报废机动车", "End-of-life vehicles", None, CURB_WEIGHT, VEHICLE_DOCUMENTS, VEHICLE_COMPLETE, unit="vehicle", desc=DESC_VEHICLES),
    C("vehicles.passenger", "报废乘用车", "End-of-life passenger cars", unit="vehicle"),
    C("vehicles.commercial", "报废商用车", "End-of-life commercial vehicles", unit="vehicle"),
    C("vehicles.nev", "报废新能源汽车", "End-of-life new-energy vehicles", None, BATTERY_INCLUDED, unit="vehicle"),
    C("vehicles.motorcycle", "报废摩托车", "End-of-life motorcycles", unit="vehicle"),
    # 废旧电池
    C("batteries", "废旧电池", "Used batteries", 1),
    C("batteries.lead_acid", "废铅酸蓄电池", "Waste lead-acid batteries", None, PB, ACID_DRAINED, CASING_INTACT, haz=True, hw="HW31", desc=DESC_LEAD_ACID),
    C("batteries.lithium", "退役动力电池", "Retired lithium traction batteries", 0.5, chemistry(LI_CHEMISTRIES), SOH, LI_FORM, TRACEABLE, desc=DESC_LITHIUM),
    C("batteries.lithium.ncm", "三元锂电池", "NCM/NCA lithium batteries", None, chemistry(LI_CHEMISTRIES[:2])),
    C("batteries.lithium.lfp", "磷酸铁锂电池", "LFP lithium batteries", None, chemistry(LI_CHEMISTRIES[2:3])),
    C("batteries.lithium.other", "其他锂电池", "Other lithium batteries", None, chemistry(LI_CHEMISTRIES[3:], required=True)),
    # 大宗工业固体废物 (大宗固废)
    C("bulk", "大宗工业固体废物", "Bulk industrial solid waste", 10, MOISTURE),
    C("bulk.slag", "冶炼渣", "Smelting slag", None, TFE, FEO, PARTICLE),
    C("bulk.slag.steel", "钢渣", "Steel slag", None, FCAO),
    C("bulk.slag.steel.bof", "转炉渣", "BOF slag"),
    C("bulk.slag.steel.eaf", "电炉渣", "EAF slag"),
    C("bulk.slag.blast_furnace", "高炉矿渣", "Blast-furnace slag"),
    C("bulk.slag.ferroalloy", "铁合金渣", "Ferroalloy slag"),
    C("bulk.slag.nonferrous", "有色冶炼渣", "Non-ferrous smelting slag", desc=DESC_NONFERROUS_SLAG),
    C("bulk.slag.manganese", "电解锰渣", "Electrolytic manganese residue"),
    C("bulk.fly_ash", "粉煤灰", "Fly ash", None, FLY_ASH_GRADE, FLY_ASH_CLASS, LOI, FINENESS),
    C("bulk.bottom_ash", "炉渣", "Boiler slag and bottom ash", None, LOI, PARTICLE),
    C("bulk.coal_gangue", "煤矸石", "Coal gangue", None, CALORIFIC, PARTICLE),
    C("bulk.gypsum", "工业副产石膏", "Industrial by-product gypsum", None, GYPSUM_PURITY, CHLORIDE),
    C("bulk.gypsum.fgd", "脱硫石膏", "FGD gypsum"),
    C("bulk.gypsum.phospho", "磷石膏", "Phosphogypsum", None, P2O5),
    C("bulk.gypsum.other", "其他副产石膏", "Other by-product gypsum"),
    C("bulk.red_mud", "赤泥", "Red mud", None, NA2O),
    C("bulk.tailings", "尾矿", "Tailings", None, PARTICLE),
    C("bulk.tailings.iron", "铁尾矿", "Iron ore tailings", None, TFE),
    C("bulk.tailings.nonferrous", "有色金属尾矿", "Non-ferrous tailings"),
    C("bulk.tailings.nonmetal", "非金属矿尾矿", "Non-metallic tailings"),
    C("bulk.carbide_slag", "电石渣", "Carbide slag"),
    C("bulk.construction", "建筑垃圾", "Construction and demolition waste", None, IMPURITY),
    C("bulk.construction.concrete", "废混凝土", "Waste concrete", None, PARTICLE),
    C("bulk.construction.bricks", "废砖瓦", "Waste bricks and tiles", None, PARTICLE),
    C("bulk.construction.asphalt", "废沥青混合料", "Reclaimed asphalt", None, PARTICLE),
    C("bulk.construction.decoration", "装修垃圾", "Renovation waste"),
    C("bulk.construction.spoil", "工程渣土", "Excavated spoil", unit="m3", desc=DESC_SPOIL),
    # 农林废弃物
    C("biomass", "农林废弃物", "Agricultural and forestry residues", 10, MOISTURE),
    C("biomass.straw", "农作物秸秆", "Crop straw", None, CROP, BALED),
    C("biomass.forestry", "林业剩余物", "Forestry residues"),
    C("biomass.wood", "废旧木材", "Waste wood", None, TREATED),
    # 危险废物 (one node per HW class of the national catalogue)
    C("hazardous", "危险废物", "Hazardous waste", 0.5, WASTE_CODE, HAZ_FORM, haz=True, desc=DESC_HAZARDOUS),
    *_hazardous_rows(),
]
# fmt: on

_TONNES_PER_UNIT = {"t": Decimal("1"), "kg": Decimal("0.001")}


def _resolve(rows) -> list[dict]:
    by_code: dict[str, dict] = {}
    siblings: dict[str | None, int] = {}
    resolved = []
    for row in rows:
        row = dict(row)
        code = row["code"]
        parent_code = code.rpartition(".")[0] or None
        parent = by_code.get(parent_code) if parent_code else None
        if parent_code and parent is None:
            raise ValueError(f"{code}: parent {parent_code} must come first")
        if code in by_code:
            raise ValueError(f"{code}: duplicate code")
        row["parent"] = parent_code
        row["depth"] = code.count(".")
        siblings[parent_code] = siblings.get(parent_code, 0) + 1
        row["sort_order"] = siblings[parent_code] * 10
        if row["tonnes_per_unit"] == "auto":
            row["tonnes_per_unit"] = _TONNES_PER_UNIT.get(row["unit"])
        if row["tonnes_per_unit"] is None:
            row["min_lot_tonnes"] = Decimal("0")
        elif row["min_lot_tonnes"] is None:
            row["min_lot_tonnes"] = (
                parent["min_lot_tonnes"] if parent and parent["tonnes_per_unit"] else Decimal("0")
            )
        if row["hazardous"] is None:
            row["hazardous"] = bool(parent and parent["hazardous"])
        if row["hw_code"] is None:
            row["hw_code"] = parent["hw_code"] if parent else ""
        by_code[code] = row
        resolved.append(row)
    return resolved


CATEGORIES: list[dict] = _resolve(ROWS)
