"""Search tokens: Chinese segmented by jieba, English lower-cased, the same for lots and for queries.

Both backends match on these tokens (the database in ``Lot.search_tokens``, Elasticsearch in a
whitespace-analysed field), so a word is found the same way whichever backend runs.

* :func:`tokenise` cuts text with jieba's search mode (``cut_for_search``: every dictionary word,
  plus the two- and three-character dictionary words inside longer ones, so 粉煤灰 gives 粉煤, 煤灰
  and 粉煤灰), after NFKC normalisation (full-width letters and digits become ASCII), lower-cases,
  and keeps only runs of letters and digits (whitespace and punctuation go; ``98.5%`` gives ``98``
  and ``5``). A run of letters and digits is exactly one lexeme for PostgreSQL's text-search parser
  too, so ``to_tsvector('simple', ...)`` sees the very tokens computed here.
* HMM new-word discovery is off: a word jieba does not know is cut into single characters, the same
  way in a lot and in a query, whatever the context. With HMM on, an unknown name can be joined in
  one text and split in another, and then a lot is not found by its own words.
* The dictionary is jieba's, plus the trade terms below, plus the names of the administrative
  divisions (GB/T 2260) and their short forms (江苏省 -> 江苏, 唐山市 -> 唐山, 浦东新区 -> 浦东), so
  "唐山" or "江苏" in a query meets the lot's region. Changing the dictionary changes the tokens:
  run ``manage.py search_rebuild`` afterwards.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import threading
import unicodedata
from pathlib import Path

logger = logging.getLogger(__name__)

# Words of the trade that jieba's general dictionary cuts apart or does not know. Kept whole, so
# 重废 is one token and "重废" does not match every lot that mentions 重 and 废 separately.
TRADE_TERMS = (
    # ferrous
    "重废", "中废", "轻废", "重型废钢", "中型废钢", "小型废钢", "轻薄料", "废钢", "废铁", "废钢铁",
    "破碎料", "破碎废钢", "剪切料", "打包块", "钢屑", "铁屑", "废铸铁", "合金废钢", "渣钢", "氧化铁皮",
    # non-ferrous
    "光亮铜", "紫杂铜", "黄杂铜", "废铜", "铜米", "铜屑", "废电线电缆", "废铝", "生铝", "熟铝", "铝屑",
    "铝型材", "易拉罐", "废铅", "铅渣", "废锌", "锌渣", "废不锈钢", "废镍", "废锡",
    # paper, plastics, rubber, glass, textiles
    "废纸", "废纸箱", "黄板纸", "废报纸", "办公废纸", "混合废纸", "废塑料", "瓶片", "废橡胶", "废轮胎",
    "胶粉", "碎玻璃", "废玻璃", "废旧纺织品",
    # electronics, vehicles, batteries
    "废线路板", "废家电", "报废汽车", "废电瓶", "铅酸", "废铅酸蓄电池", "铅酸蓄电池", "废锂电池",
    "锂电池", "黑粉", "极片",
    # bulk industrial solid waste
    "粉煤灰", "脱硫石膏", "磷石膏", "钛石膏", "钢渣", "水渣", "高炉渣", "矿渣", "赤泥", "煤矸石",
    "尾矿", "炉渣", "除尘灰", "电石渣", "污泥",
    # hazardous waste
    "危废", "危险废物", "废矿物油", "废机油", "废乳化液", "废催化剂", "废活性炭", "废酸", "废碱",
    "飞灰",
)  # fmt: skip

_WORD = re.compile(r"[^\W_]+")
MAX_TOKENS = 20000  # per lot: keeps a tsvector far below PostgreSQL's 1 MB limit
MAX_TOKEN_LENGTH = 64

# Suffixes of division names, longest first; what is left is the short name people write.
_REGION_SUFFIXES = (
    "特别行政区", "自治区", "自治州", "自治县", "自治旗", "地区", "林区", "新区", "矿区",
    "省", "市", "区", "县", "盟", "旗",
)  # fmt: skip
_ETHNIC = re.compile(
    r"(蒙古族|蒙古|朝鲜族|土家族|苗族|藏族|羌族|彝族|侗族|布依族|傣族|景颇族|傈僳族|白族|哈尼族|壮族|回族|"
    r"维吾尔|哈萨克|柯尔克孜|满族|瑶族|畲族|黎族|仫佬族|毛南族|仡佬族|水族|纳西族|拉祜族|佤族|布朗族|"
    r"普米族|怒族|独龙族|土族|撒拉族|东乡族|保安族|裕固族|锡伯族|达斡尔族|鄂温克族|鄂伦春族|各族|塔吉克)$"
)
_REGION_DATA = Path(__file__).resolve().parents[2] / "market" / "core" / "data" / "gbt2260.json"

_lock = threading.Lock()
_tokenizer = None


def region_short_name(name: str) -> str:
    """江苏省 -> 江苏, 广西壮族自治区 -> 广西, 延边朝鲜族自治州 -> 延边, 浦东新区 -> 浦东; a name of two
    characters or fewer is its own short name (丰县 stays 丰县)."""
    short = name
    for suffix in _REGION_SUFFIXES:
        if short.endswith(suffix) and len(short) - len(suffix) >= 2:
            short = short[: -len(suffix)]
            break
    while True:
        stripped = _ETHNIC.sub("", short)
        if stripped == short or len(stripped) < 2:
            return short
        short = stripped


def _cache_dir() -> str:
    try:
        from django.conf import settings

        path = Path(settings.VAR_DIR) / "cache"
        path.mkdir(parents=True, exist_ok=True)
        return str(path)
    except Exception:  # no settings, or not writable: jieba's default, the system's temp dir
        return tempfile.gettempdir()


def _region_names() -> list[str]:
    try:
        with _REGION_DATA.open(encoding="utf-8") as fh:
            rows = json.load(fh)["regions"]
    except (OSError, ValueError, KeyError):
        logger.warning("region names for the search dictionary not found at %s", _REGION_DATA)
        return []
    names: list[str] = []
    for row in rows:
        name = row[1]
        names.append(name)
        names.append(region_short_name(name))
    return names


def _build():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.tmp_dir = _cache_dir()
    tokenizer.initialize()
    for term in TRADE_TERMS:
        tokenizer.add_word(term)  # frequency suggested by jieba: high enough to stay whole
    for name in _region_names():
        # Only words jieba lacks (唐山 is only a prefix of 唐山市 in its dictionary); a modest
        # frequency, so common words that happen to be place names keep their usual cut.
        if len(name) >= 2 and not tokenizer.FREQ.get(name):
            tokenizer.add_word(name, freq=50)
    return tokenizer


def get_tokenizer():
    """The jieba tokenizer with the market's dictionary, loaded once per process (about 1 s)."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                _tokenizer = _build()
    return _tokenizer


def tokenise(text: str | None) -> list[str]:
    """Search tokens of ``text``, in order, duplicates kept (they count for relevance)."""
    if not text:
        return []
    text = unicodedata.normalize("NFKC", str(text))
    tokens: list[str] = []
    for piece in get_tokenizer().cut_for_search(text, HMM=False):
        for word in _WORD.findall(piece.lower()):
            if len(word) <= MAX_TOKEN_LENGTH:
                tokens.append(word)
    return tokens


def query_tokens(text: str | None) -> list[str]:
    """The distinct tokens of a query, in order of first appearance; a lot must have all of them."""
    return list(dict.fromkeys(tokenise(text)))
