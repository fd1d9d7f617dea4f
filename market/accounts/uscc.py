"""Unified social credit code (统一社会信用代码), GB 32100-2015.

18 characters from a 31-character alphabet (digits and capitals without I, O, S, V, Z):
1 registration authority, 2 organisation category, 3-8 the registering division's code,
9-17 the organisation code, 18 a check character over the first 17.
"""

from django.utils.translation import gettext as _

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALUES = {ch: i for i, ch in enumerate(ALPHABET)}
WEIGHTS = [pow(3, i, 31) for i in range(17)]  # 1, 3, 9, 27, 19, 26, ...

# Registration authorities and the organisation categories each may issue (GB 32100-2015 table 1).
CATEGORIES = {
    "1": "129",  # 机构编制
    "2": "19",  # 外交
    "3": "123459",  # 司法行政
    "4": "19",  # 文化
    "5": "1239",  # 民政
    "6": "129",  # 旅游
    "7": "129",  # 宗教
    "8": "19",  # 工会
    "9": "123",  # 工商 / 市场监管
    "A": "19",  # 中央军委改革和编制办公室
    "N": "1239",  # 农业
    "Y": "1",  # 其他
}


class USCCError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def check_char(first17: str) -> str:
    total = sum(VALUES[ch] * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def uscc_normalise(value: str) -> str:
    return (value or "").strip().upper().replace(" ", "")


def uscc_validate(value: str) -> str:
    """Return the normalised code or raise :class:`USCCError` saying what is wrong."""
    code = uscc_normalise(value)
    if len(code) != 18:
        raise USCCError("uscc_length", _("统一社会信用代码应为18位。"))
    bad = [ch for ch in code if ch not in VALUES]
    if bad:
        raise USCCError(
            "uscc_characters",
            _("统一社会信用代码含有不允许的字符：%(chars)s。") % {"chars": "".join(dict.fromkeys(bad))},
        )
    if code[0] not in CATEGORIES or code[1] not in CATEGORIES[code[0]]:
        raise USCCError("uscc_category", _("统一社会信用代码的登记管理部门或机构类别代码无效。"))
    if not code[2:8].isdigit():
        raise USCCError("uscc_division", _("统一社会信用代码第3至8位应为行政区划代码。"))
    if check_char(code[:17]) != code[17]:
        raise USCCError("uscc_checksum", _("统一社会信用代码校验位不正确，请核对后重新输入。"))
    return code


def uscc_make(division: str, organisation_code: str, *, authority: str = "9", category: str = "1") -> str:
    """Build a valid code from its parts (used by the demo market and tests)."""
    first17 = f"{authority}{category}{division}{organisation_code}"
    if len(first17) != 17 or any(ch not in VALUES for ch in first17):
        raise ValueError(f"bad USCC parts: {first17!r}")
    return first17 + check_char(first17)
