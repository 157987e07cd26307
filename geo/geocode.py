"""Chinese addresses and place names to the plan's buildings: normalise, index, match.

The method, and its bounds. Every text (an index entry's and a query's alike) goes through
one :func:`normalise`: NFKC (full-width digits and letters to half-width), a few
traditional characters of addresses to simplified (號→号, 棟→栋), Chinese numerals before
号/栋/单元/层/室 to digits, building designators in one form (3号楼, 3#, 3幢, 3座 → 3栋),
punctuation and spaces out, and the administrative names in front (province, city,
district, street office, community: the names :func:`admin_names` gives) stripped. The
tail below a building (2单元, 5层, 501室, or ``3-2-501``) is split off by :func:`split`:
it never changes which building answers. An index (:class:`AddressIndex`) holds each
entry's normalised text with the one building of the plan version it names (found by the
caller: ``wangge/geocoding.py``).
A query is looked up exactly first: its whole text, without the part below the building,
without the building designator, and split after a house number (中山路169号金陵中学);
then fuzzily (rapidfuzz ``fuzz.ratio``) over the keys that carry the same numbers, so that
中山路178号 is never taken for 中山路169号. The best key at or above ``min_score``
(:data:`MIN_SCORE` by default) answers; below it, or where the best key names buildings
in different micro-grids, the answer is no match, never a guess. A batch is matched in one
``rapidfuzz.process.cdist`` per block of equal numbers, so its cost is the size of the
blocks, not of the batch times the index.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

#: The lowest fuzzy score (0–100, ``rapidfuzz.fuzz.ratio`` of the normalised texts) that
#: answers. A name of five characters with one wrong scores 80, one of four 75: below this,
#: 金陵中学 and 金陵小学 would be taken for each other. Settings ``WANGGE_ADDRESS_MIN_SCORE``.
MIN_SCORE = 80.0
#: Answer statuses.
MATCHED, NO_MATCH, AMBIGUOUS = "matched", "no_match", "ambiguous"
#: Entry kinds, most specific first: where one key has several, the first kind wins.
KINDS = ("address", "building", "compound", "place")

#: Traditional characters common in addresses, to their simplified forms.
_TRADITIONAL = str.maketrans(
    "號棟樓單區縣門園廣場東華國學館際鎮鄉莊灣橋巷藝術醫",
    "号栋楼单区县门园广场东华国学馆际镇乡庄湾桥巷艺术医",
)
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_CN_DIGITS |= {"六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百]+(?=号|栋|幢|座|单元|层|室|楼)")
_DESIGNATOR = re.compile(r"(\d+|[a-z])(?:号楼|号栋|#楼|#|幢|座|栋|号座)")
_DROP = re.compile(r"[\s,，.。、·:：;；()（）\[\]【】<>《》\"'“”‘’_/\\|]+")
_DASHES = re.compile(r"[-－—–~～]")
#: What lies below a building: unit, floor, room; or the ``3-2-501`` form.
_TAIL = re.compile(
    r"(?P<bldg>(?:\d+|[a-z])栋)?(?P<unit>\d+单元)?(?P<floor>\d+[层楼])?(?P<room>\d+(?:室|房|户)?)?$"
)
_DASHED = re.compile(r"(?P<bldg>\d+)-(?P<unit>\d+)-(?P<room>\d+)$")
_HOUSE = re.compile(r"^(.+?[路街巷道弄里村园])(\d+(?:-\d+)?号)(.+)$")
_NUMBERS = re.compile(r"\d+")
_STREET_OFFICE = re.compile(r"^[\u4e00-\u9fff]{2,6}街道(?!口)")
_ADMIN_SUFFIX = re.compile(r"(省|市|自治区|特别行政区|区|县|自治县|旗|街道|镇|乡|社区|村)$")


def _cn_number(text: str) -> str:
    """A Chinese numeral below 10,000 (三, 十二, 二十六, 一〇一, 一百零五) as digits."""
    if "十" not in text and "百" not in text:
        return "".join(str(_CN_DIGITS[c]) for c in text if c in _CN_DIGITS)
    total, digit = 0, 0
    for c in text:
        if c in _CN_DIGITS:
            digit = _CN_DIGITS[c]
        elif c == "十":
            total += (digit or 1) * 10
            digit = 0
        elif c == "百":
            total += (digit or 1) * 100
            digit = 0
    return str(total + digit)


def admin_names(names: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """The names :func:`normalise` strips from the front of a text.

    Parameters
    ----------
    names
        Administrative names as written (江苏省, 南京市, 玄武区, 新街口街道, 某某社区).

    Returns
    -------
    tuple of frozenset
        The full forms, always stripped, and the short forms of provinces and cities
        (江苏, 南京), stripped only when another administrative name follows them (so
        南京图书馆 keeps its 南京).
    """
    full, short = set(), set()
    for raw in names:
        name = unicodedata.normalize("NFKC", str(raw or "")).translate(_TRADITIONAL).strip()
        name = _DROP.sub("", name)
        if len(name) < 2:
            continue
        m = _ADMIN_SUFFIX.search(name)
        if m is None:  # 南京 as an addr:city value: a short form
            short.add(name)
            continue
        full.add(name)
        if m[1] in ("省", "市", "自治区", "特别行政区") and len(name) - len(m[1]) >= 2:
            short.add(name[: m.start()])
    return frozenset(full), frozenset(short - full)


def _strip_admin(text: str, full: frozenset[str], short: frozenset[str]) -> str:
    changed = True
    while changed and text:
        changed = False
        for name in sorted(full, key=len, reverse=True):
            if text.startswith(name) and len(text) > len(name):
                text, changed = text[len(name) :], True
                break
        if changed:
            continue
        for name in sorted(short, key=len, reverse=True):
            rest = text[len(name) :]
            if text.startswith(name) and any(rest.startswith(f) for f in full | short):
                text, changed = rest, True
                break
        if not changed:
            office = _STREET_OFFICE.match(text)
            if office and len(text) > office.end():
                text, changed = text[office.end() :], True
    return text


def normalise(
    text: str, full: frozenset[str] = frozenset(), short: frozenset[str] = frozenset()
) -> str:
    """One written form of an address or place name, for comparing (see the module's
    opening): half-width, simplified, digits, one building designator, no punctuation,
    administrative names in front stripped (``full``, ``short``: :func:`admin_names`)."""
    t = unicodedata.normalize("NFKC", str(text or "")).lower().translate(_TRADITIONAL)
    t = _DROP.sub("", _DASHES.sub("-", t))
    t = _CN_NUMBER.sub(lambda m: _cn_number(m.group(0)), t)
    t = _DESIGNATOR.sub(r"\1栋", t)
    return _strip_admin(t, full, short)


def split(key: str) -> tuple[str, str, str]:
    """A normalised text as (base, building, below): ``中山路169号3栋2单元501室`` →
    (``中山路169号``, ``3栋``, ``2单元501室``). A bare number ends a text only below a
    building or unit (``新街口#1`` keeps its 1)."""
    dashed = _DASHED.search(key)
    if dashed and dashed.start() > 0:
        return key[: dashed.start()], f"{dashed['bldg']}栋", f"{dashed['unit']}单元{dashed['room']}"
    m = _TAIL.search(key)
    bldg, unit, floor, room = m["bldg"] or "", m["unit"] or "", m["floor"] or "", m["room"] or ""
    if room and room.isdigit() and not (bldg or unit or floor):
        return key, "", ""
    if floor and not (bldg or unit or room):  # 3楼 alone may be a building: keep it whole
        return key, "", ""
    base = key[: m.start()]
    if not base:
        return key, "", ""
    return base, bldg, unit + floor + room


def _numbers(key: str) -> str:
    return ",".join(_NUMBERS.findall(key))


@dataclass
class AddressIndex:
    """The normalised keys of a plan version's addresses and names, each with its
    building(s). Build it with :meth:`build`; ask it with :meth:`match`."""

    #: Per key: the key text, the entry shown for it, its kind and source, whether its text
    #: is public, the building position (-1 where the key names buildings in several
    #: micro-grids), and its number block.
    keys: pd.DataFrame
    full: frozenset[str] = frozenset()
    short: frozenset[str] = frozenset()
    unresolved: int = 0
    _exact: dict[str, int] = field(default_factory=dict, repr=False)
    _blocks: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls, entries: pd.DataFrame, micro: np.ndarray, admin: Iterable[str] = ()
    ) -> AddressIndex:
        """Index ``entries`` of one plan version.

        Parameters
        ----------
        entries
            ``text``, ``kind`` (one of :data:`KINDS`), ``source``, ``public`` (bool), and
            ``building``: the position of the entry's building in the version's buildings
            layer (-1 where it names none, and is left out).
        micro
            The micro-grid code of each building of the version, by position.
        admin
            Administrative names stripped from the front of every text (:func:`admin_names`).
        """
        full, short = admin_names(admin)
        at = entries["building"].to_numpy(dtype=np.int64)
        frame = entries[at >= 0].copy()
        frame["key"] = [normalise(t, full, short) for t in frame["text"]]
        frame = frame[frame["key"].str.len() >= 2]
        frame["rank"] = frame["kind"].map({k: i for i, k in enumerate(KINDS)}).fillna(len(KINDS))
        frame["micro"] = np.asarray(micro, dtype=object)[frame["building"].to_numpy(np.int64)]
        frame = frame.sort_values(["key", "rank"], kind="stable")
        spread = frame.groupby("key")["micro"].nunique()
        keys = frame.drop_duplicates("key").set_index("key")
        keys.loc[spread[spread > 1].index, "building"] = -1
        keys = keys.reset_index()[["key", "text", "kind", "source", "public", "building"]]
        keys["block"] = [_numbers(k) for k in keys["key"]]
        index = cls(keys, full, short, int((at < 0).sum()))
        index._exact = dict(zip(keys["key"], range(len(keys)), strict=True))
        for block, rows in keys.groupby("block").groups.items():
            pos = np.asarray(list(rows), dtype=np.int64)
            index._blocks[str(block)] = (keys["key"].to_numpy()[pos].tolist(), pos)
        return index

    def _variants(self, key: str) -> list[tuple[str, str]]:
        """The texts a query is looked up as, with the part each leaves unmatched."""
        base, bldg, below = split(key)
        out = [(key, ""), (base + bldg, below), (base, bldg + below)]
        house = _HOUSE.match(base + bldg)
        if house:
            out += [(house[3], below), (house[1] + house[2], house[3] + below)]
        seen, kept = set(), []
        for text, rest in out:
            if text and text not in seen:
                seen.add(text)
                kept.append((text, rest))
        return kept

    def match(self, queries: Iterable[str], min_score: float = MIN_SCORE) -> pd.DataFrame:
        """Match each query (a batch at once).

        Returns
        -------
        pandas.DataFrame
            One row per query, in order: ``status`` (:data:`MATCHED`, :data:`NO_MATCH`,
            :data:`AMBIGUOUS`), ``score`` (100 exact, else the fuzzy ratio; NaN without a
            match), ``key`` (position in :attr:`keys`, -1 without), ``building`` (position
            in the version's buildings, -1 without) and ``rest`` (the part of the query below the
            matched key, such as 2单元501室).
        """
        queries = [str(q) for q in queries]
        n = len(queries)
        key_at = np.full(n, -1, dtype=np.int64)
        score = np.full(n, np.nan)
        rest = np.array([""] * n, dtype=object)
        variants = [self._variants(normalise(q, self.full, self.short)) for q in queries]
        fuzzy: dict[str, list[tuple[int, str, str]]] = {}
        for i, found in enumerate(variants):
            for text, left in found:
                hit = self._exact.get(text)
                if hit is not None:
                    key_at[i], score[i], rest[i] = hit, 100.0, left
                    break
            else:
                base, bldg, below = split(found[0][0])
                for text, left in dict.fromkeys([(base + bldg, below), (base, bldg + below)]):
                    if text:
                        fuzzy.setdefault(_numbers(text), []).append((i, text, left))
        self._fuzzy(fuzzy, min_score, key_at, score, rest)
        building = np.where(key_at >= 0, self.keys["building"].to_numpy()[key_at.clip(0)], -1)
        status = np.where(key_at < 0, NO_MATCH, np.where(building < 0, AMBIGUOUS, MATCHED))
        score = np.where(key_at < 0, np.nan, score)
        return pd.DataFrame(
            {"status": status, "score": score, "key": key_at, "building": building, "rest": rest}
        )

    def _fuzzy(self, asks: dict, min_score: float, key_at, score, rest) -> None:
        """The best fuzzy key of each query in ``asks`` (by number block), in place."""
        for block, rows in asks.items():
            choices = self._blocks.get(block)
            if choices is None:
                continue
            texts, pos = choices
            found = process.cdist(
                [t for _, t, _ in rows],
                texts,
                scorer=fuzz.ratio,
                score_cutoff=min_score,
                dtype=np.float32,
                workers=-1,
            )
            best = found.argmax(axis=1)
            top = found[np.arange(len(rows)), best]
            for (i, _, left), j, s in zip(rows, best, top, strict=True):
                if s >= min_score and (np.isnan(score[i]) or s > score[i]):
                    key_at[i], score[i], rest[i] = pos[j], round(float(s), 1), left
