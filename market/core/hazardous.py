"""Classes of the National Catalogue of Hazardous Wastes (国家危险废物名录, 2021 edition).

Used by licences (which classes a processor may accept) and by the catalogue (which lots are hazardous).
"""

HW_CLASSES: dict[str, str] = {
    "HW01": "医疗废物",
    "HW02": "医药废物",
    "HW03": "废药物、药品",
    "HW04": "农药废物",
    "HW05": "木材防腐剂废物",
    "HW06": "废有机溶剂与含有机溶剂废物",
    "HW07": "热处理含氰废物",
    "HW08": "废矿物油与含矿物油废物",
    "HW09": "油/水、烃/水混合物或乳化液",
    "HW10": "多氯（溴）联苯类废物",
    "HW11": "精（蒸）馏残渣",
    "HW12": "染料、涂料废物",
    "HW13": "有机树脂类废物",
    "HW14": "新化学物质废物",
    "HW15": "爆炸性废物",
    "HW16": "感光材料废物",
    "HW17": "表面处理废物",
    "HW18": "焚烧处置残渣",
    "HW19": "含金属羰基化合物废物",
    "HW20": "含铍废物",
    "HW21": "含铬废物",
    "HW22": "含铜废物",
    "HW23": "含锌废物",
    "HW24": "含砷废物",
    "HW25": "含硒废物",
    "HW26": "含镉废物",
    "HW27": "含锑废物",
    "HW28": "含碲废物",
    "HW29": "含汞废物",
    "HW30": "含铊废物",
    "HW31": "含铅废物",
    "HW32": "无机氟化物废物",
    "HW33": "无机氰化物废物",
    "HW34": "废酸",
    "HW35": "废碱",
    "HW36": "石棉废物",
    "HW37": "有机磷化合物废物",
    "HW38": "有机氰化物废物",
    "HW39": "含酚废物",
    "HW40": "含醚废物",
    "HW45": "含有机卤化物废物",
    "HW46": "含镍废物",
    "HW47": "含钡废物",
    "HW48": "有色金属采选和冶炼废物",
    "HW49": "其他废物",
    "HW50": "废催化剂",
}


def hw_normalise(codes) -> list[str]:
    """Upper-case, de-duplicate and sort HW class codes; raise ValueError naming unknown ones."""
    if isinstance(codes, str):
        codes = codes.replace("，", ",").replace(" ", ",").split(",")
    cleaned = sorted({c.strip().upper() for c in codes if c and c.strip()})
    unknown = [c for c in cleaned if c not in HW_CLASSES]
    if unknown:
        raise ValueError(", ".join(unknown))
    return cleaned
