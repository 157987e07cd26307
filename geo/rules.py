"""Risk and facility rules, read from ``rules.toml`` (defaults) and a user's overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wangge.geo._config import load_layered

#: The four risk levels from the highest, with their Chinese names and map colours
#: (the red/orange/yellow/blue of 风险四色图).
LEVELS = ("red", "orange", "yellow", "blue")
LEVEL_ZH = {"red": "重大风险", "orange": "较大风险", "yellow": "一般风险", "blue": "低风险"}
LEVEL_COLOURS = {"red": "#e60000", "orange": "#ff8c00", "yellow": "#ffd500", "blue": "#1f6fd1"}


@dataclass(frozen=True)
class FacilityType:
    """One facility type and its service rule."""

    key: str
    zh: str
    en: str
    reach_m: float
    source: str
    mode: str = "walk"
    m2_per_person: float | None = None
    capacity_share: float | None = None
    usable_share: float = 1.0
    households_per_facility: float | None = None
    m2_per_100_households: float | None = None
    osm: tuple[str, ...] = ()
    name_osm: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def is_shelter(self) -> bool:
        return self.m2_per_person is not None

    @property
    def label(self) -> str:
        return f"{self.zh} {self.en}"


@dataclass(frozen=True)
class Rules:
    """Everything ``rules.toml`` sets, checked."""

    categories: dict[str, dict[str, Any]]
    matrix: dict[str, Any]
    lec: dict[str, Any]
    weights: dict[str, float]
    grid_levels: dict[str, float]
    hotspot_z: float
    max_snap_m: float
    detour: float
    facilities: dict[str, FacilityType]
    required: dict[str, tuple[str, ...]]
    raw: dict[str, Any]

    def category(self, text: Any) -> str | None:
        """The category key for a register's entry (Chinese, English key or alias)."""
        if text is None or (isinstance(text, float) and np.isnan(text)):
            return None
        t = str(text).strip().lower()
        for key, c in self.categories.items():
            names = {key, c["zh"].lower(), c["en"].lower(), *(a.lower() for a in c["aliases"])}
            if t in names:
                return key
        return None

    def category_names(self) -> str:
        return ", ".join(f"{c['zh']} ({k})" for k, c in self.categories.items())

    def facility_type(self, text: Any) -> str | None:
        """The facility type key for a user's entry (key, Chinese or English name)."""
        if text is None or (isinstance(text, float) and np.isnan(text)):
            return None
        t = str(text).strip().lower()
        for key, f in self.facilities.items():
            if t in {key, f.zh.lower(), f.en.lower()}:
                return key
        return None


def load_rules(path: str | Path | None = None) -> Rules:
    """The bundled rules with a user's TOML merged on top; InputError names bad keys."""
    raw = load_layered("rules.toml", path)
    return rules_from_raw(raw, str(path) if path is not None else "rules.toml")


def rules_from_raw(raw: dict[str, Any], source: str) -> Rules:
    from wangge.errors import InputError

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise InputError(what, source)

    risk = raw["risk"]
    m = risk["matrix"]
    need(m["red"] > m["orange"] > m["yellow"] >= 1, "[risk.matrix] needs red > orange > yellow ≥ 1")
    lec = risk["lec"]
    need(lec["red"] > lec["orange"] > lec["yellow"] > 0, "[risk.lec] needs red > orange > yellow")
    facilities = {}
    known = set(FacilityType.__dataclass_fields__) - {"key"}
    for key, t in raw["facilities"].items():
        unknown = set(t) - known
        need(not unknown, f"[facilities.{key}] has unknown keys {sorted(unknown)}")
        need(float(t.get("reach_m", 0)) > 0, f"[facilities.{key}] needs reach_m > 0")
        for k in ("m2_per_person", "capacity_share", "usable_share"):
            need(t.get(k) is None or float(t[k]) > 0, f"[facilities.{key}] needs {k} > 0")
        facilities[key] = FacilityType(
            key=key,
            **{k: v for k, v in t.items() if k not in ("osm", "name_osm")},
            osm=tuple(t.get("osm", ())),
            name_osm={k: tuple(v) for k, v in t.get("name_osm", {}).items()},
        )
    required = {lvl: tuple(raw["required"].get(lvl, ())) for lvl in ("grid", "community")}
    for lvl, types in required.items():
        bad = [t for t in types if t not in facilities]
        need(not bad, f"[required] {lvl} names unknown facility types {bad}")
    return Rules(
        categories=dict(risk["categories"]),
        matrix=dict(m),
        lec=dict(lec),
        weights={k: float(risk["weights"][k]) for k in LEVELS},
        grid_levels={k: float(v) for k, v in risk["grid_levels"].items()},
        hotspot_z=float(risk["hotspots"]["z"]),
        max_snap_m=float(raw["network"]["max_snap_m"]),
        detour=float(raw["network"]["detour"]),
        facilities=facilities,
        required=required,
        raw=raw,
    )


def _tag_match(frame: pd.DataFrame, tag: str) -> np.ndarray:
    key, _, value = tag.partition("=")
    if key not in frame:
        return np.zeros(len(frame), dtype=bool)
    col = frame[key].astype(object)
    has = col.notna().to_numpy()
    return has if value == "*" else (col == value).to_numpy()


def osm_facility_types(facilities: pd.DataFrame, rules: Rules) -> pd.Series:
    """The facility type of each OSM POI by the rules' tag table (None where none applies).

    ``facilities`` has one column per OSM key (``amenity``, ``emergency``, …) and ``name``.
    The first type in the rules whose tags (and name fragments, where given) match wins.
    """
    out = pd.Series([None] * len(facilities), index=facilities.index, dtype=object)
    names = facilities.get("name", pd.Series([""] * len(facilities), index=facilities.index))
    names = names.fillna("").astype(str)
    for key, ftype in rules.facilities.items():
        hit = np.zeros(len(facilities), dtype=bool)
        for tag in ftype.osm:
            hit |= _tag_match(facilities, tag)
        for tag, fragments in ftype.name_osm.items():
            named = names.str.contains("|".join(fragments), case=False, regex=True).to_numpy()
            hit |= _tag_match(facilities, tag) & named
        out[hit & out.isna().to_numpy()] = key
    return out
