"""Who may read which column of which layer: every column classed once, applied in one place.

Three classes (docs/ARCHITECTURE.md, "Personal data"):

- ``public``: geometry, codes, names of places, counts per grid and above, and what a
  plan estimates of a building from its shape (households, population, distances);
- ``restricted``: anything about one building or person (an address, a responsible party,
  a building's elderly, disabled and lone residents) and what is derived from it (a gap's
  ``people`` and ``reason``), shown only to a reader whose territory covers the feature;
- ``staff``: the roster's names and phones, shown only to the accounts that may see the
  roster of the grid.

A layer's columns are listed in :data:`LAYERS`. A column a layer does not list, and
every column of a layer not listed but ``code`` and ``parent_code``, is restricted: a
new column is withheld until someone classes it (deny by default).

:func:`apply` is the one place the classes are enforced: the API's store view
(``api/deps.py``) passes every frame of every route through it, tiles carry only public
columns (:func:`public_columns`), and the roster is cut by :meth:`Reader.sees_staff`.
A withheld value is dropped with its column for an anonymous reader and is empty (null)
for an account outside the feature's territory; a column with a public form
(:data:`PUBLIC_FORMS`, a gap's reason) shows that form instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from wangge.data.accounts import Account

PUBLIC = "public"
RESTRICTED = "restricted"
STAFF = "staff"
CLASSES = (PUBLIC, RESTRICTED, STAFF)

#: Columns public in every layer, listed or not: the unit codes that place a feature.
ALWAYS_PUBLIC = frozenset({"code", "parent_code", "geometry"})
#: Where an unlisted layer's features lie: the first of these columns that it has.
DEFAULT_SCOPE = ("microgrid_code", "grid_code", "community_code", "code", "parent_code")

_UNIT = "parent_code households population area_km2 flag note name deviation_pct polsby_popper"
_UNIT += " road_share"
_RISK = "risk_id name category category_zh L S E C kind sample row method score level level_zh"
_RISK += " colour"


@dataclass(frozen=True)
class LayerClasses:
    """The classes of one layer's columns, and where its features lie.

    Attributes
    ----------
    public
        Columns every reader sees.
    restricted
        Columns shown only inside the reader's territory (any column not listed in
        ``public`` or ``staff`` is restricted too; these are the ones known to hold
        personal data, which the privacy test seeds).
    staff
        Columns shown only to accounts that may see the roster of the feature's grid.
    scope
        Columns holding the code of the unit a feature lies in, the first one not empty
        wins (a gap of a building names its grid, a gap of a community only its code in
        ``ref``).
    scope_list
        A column holding a comma-separated list of grid codes (a risk zone's): the
        feature lies in each, and a reader covering any one sees it.
    prefixes
        Prefixes of public columns named after a facility type of the plan's rules
        (``d_aed``), which a plan's own rules may add to.
    """

    public: frozenset[str]
    restricted: frozenset[str] = frozenset()
    staff: frozenset[str] = frozenset()
    scope: tuple[str, ...] = ("code",)
    scope_list: str | None = None
    prefixes: tuple[str, ...] = ()

    def class_of(self, column: str) -> str:
        """The class of ``column``: restricted unless listed (or a public prefix's)."""
        if column in self.staff or column in self.restricted:
            return STAFF if column in self.staff else RESTRICTED
        if column in self.public or column in ALWAYS_PUBLIC:
            return PUBLIC
        if self.prefixes and column.startswith(self.prefixes):
            return PUBLIC
        return RESTRICTED


def _classes(public: str, prefixes: str = "", **kwargs) -> LayerClasses:
    """A layer's classes from its public columns (and column prefixes) as words."""
    return LayerClasses(frozenset(public.split()), prefixes=tuple(prefixes.split()), **kwargs)


_BUILDING = ("microgrid_code", "grid_code")
#: Every layer a plan holds, derived layers included, and the classes of its columns.
LAYERS: dict[str, LayerClasses] = {
    "streets": _classes(_UNIT),
    "communities": _classes(_UNIT),
    "grids": _classes(f"{_UNIT} grid_type"),
    "microgrids": _classes(f"{_UNIT} record_codes"),
    "study_area": _classes("area_km2 attribution"),
    "units": _classes(
        "grid_code community_code building_id block_id compound_id households population",
        scope=("parent_code", "grid_code"),
    ),
    "unit_edges": _classes("a b length_m along compound", scope=()),
    "vertical_microgrids": _classes(
        "polygon_code building_id floors households population tower_households also"
    ),
    "violations": _classes("level check severity reason"),
    "feasibility": _classes("unit kind households finding action", scope=()),
    # what reading the given streets and communities found, and their calibration
    "findings": _classes("source kind level name area_m2 x y detail"),
    "city_findings": _classes("source kind level name area_m2 x y detail"),
    "calibration": _classes(
        "level name known coverage target imported estimated_before estimated_after factor finding"
    ),
    "buildings": _classes(
        "building_id building name households population estimated levels block_id "
        "compound_id microgrid_code grid_code",
        restricted=frozenset({"elderly", "disabled", "alone", "vulnerable_sample"}),
        scope=_BUILDING,
    ),
    "risk_points": _classes(
        f"{_RISK} grid_code community_code",
        restricted=frozenset({"address", "responsible"}),
        scope=("grid_code", "community_code"),
    ),
    "risk_zones": _classes(
        f"{_RISK} grid_codes",
        restricted=frozenset({"address", "responsible"}),
        scope=(),
        scope_list="grid_codes",
    ),
    "grid_risk": _classes(
        "name households n_red n_orange n_yellow n_blue score score_per_100hh level level_zh "
        "colour exposed_households exposed_population exposed_elderly exposed_disabled "
        "exposed_alone exposed_vulnerable gi_z gi_p hotspot sample"
    ),
    "facilities": _classes(
        "facility_id name type type_zh capacity area_m2 source sample grid_code "
        "community_code assigned_households assigned_population capacity_persons needed "
        "load over_capacity",
        scope=("grid_code", "community_code"),
    ),
    "access": _classes(
        "building_id grid_code microgrid_code households population snap_m straight uncovered",
        prefixes="d_",  # the walk to each facility type of the plan's rules
        scope=_BUILDING,
    ),
    "grid_coverage": _classes(
        "name households missing uncovered_households", prefixes="cov_ unc_ n_"
    ),
    "gaps": _classes(
        "gap_id kind type type_zh level ref grid_code households distance_m reach_m straight "
        "sample",
        # people: a building's vulnerable residents (exposed_vulnerable), or its
        # population; reason: names them (PUBLIC_FORMS gives it without)
        restricted=frozenset({"people", "reason"}),
        scope=("grid_code", "ref"),
    ),
    "suggestions": _classes(
        "type type_zh rank candidate_id grid_code gain_households cumulative_households sample",
        scope=("grid_code",),
    ),
    "siting": _classes(
        "type type_zh k uncovered_households coverable_households covered_households "
        "exact_households bound_households gap exact_status method swaps seconds",
        scope=(),
    ),
    "candidates": _classes(
        "candidate_id source grid_code community_code", scope=("grid_code", "community_code")
    ),
    "network_nodes": _classes("node_id", scope=()),
    "network_edges": _classes("u v length_m highway road_id", scope=()),
    # the basemap (data/basemap.py): roads, water, green, rail and the names of places
    "basemap_areas": _classes("kind name osm_id feature_id", scope=()),
    "basemap_lines": _classes("class kind name osm_id feature_id", scope=()),
    "basemap_roads": _classes("class highway name bridge tunnel osm_id feature_id", scope=()),
    "basemap_places": _classes("kind name rank osm_id feature_id", scope=()),
    # not a plan layer: the people of each grid and micro-grid (data/roster.py)
    "roster": _classes(
        "level role role_zh position updated_at",
        staff=frozenset({"name", "phone", "updated_by"}),
    ),
}


def layer_classes(layer: str) -> LayerClasses:
    """The classes of ``layer``'s columns; an unknown layer's are all restricted but its
    codes."""
    return LAYERS.get(layer) or LayerClasses(frozenset(), scope=DEFAULT_SCOPE)


def class_of(layer: str, column: str) -> str:
    """``public``, ``restricted`` or ``staff``: restricted unless the layer lists it."""
    return layer_classes(layer).class_of(column)


def public_columns(layer: str, columns: Iterable[str]) -> list[str]:
    """Those of ``columns`` that every reader may see, in their order."""
    rules = layer_classes(layer)
    return [c for c in columns if rules.class_of(c) == PUBLIC]


# public forms of restricted columns ------------------------------------------------------


def _gap_reasons(frame: pd.DataFrame) -> pd.Series:
    """A gap's reason from its public columns only: a building's households and distance,
    a grid's missing type, a facility's households assigned, and for vulnerable residents
    that there are some, not how many (:func:`wangge.geo.coverage.vulnerable_reason`)."""
    from wangge.geo.coverage import missing_reason, reach_reason, vulnerable_reason
    from wangge.geo.rules import load_rules

    english = {k: t.en for k, t in load_rules().facilities.items()}

    def one(row: Mapping) -> str:
        kind, key = row.get("kind"), str(row.get("type") or "")
        zh, en = str(row.get("type_zh") or key), english.get(key, key.replace("_", " "))
        households = _number(row.get("households"))
        if kind == "beyond_reach":
            distance, reach = _number(row.get("distance_m"), np.nan), _number(row.get("reach_m"))
            return reach_reason(households, distance, reach, zh, en, bool(row.get("straight")))
        if kind == "missing_required":
            return missing_reason(str(row.get("level")), str(row.get("ref")), zh, en)
        if kind == "over_capacity":
            return (
                f"{zh}「{row.get('ref')}」容量不足，分配 {households:,.0f} 户 / {en} "
                f"{row.get('ref')} is short of capacity for the {households:,.0f} households "
                "assigned to it"
            )
        if kind == "exposed_vulnerable":
            return vulnerable_reason(None)
        return ""  # a kind this code does not know: nothing of what it said

    columns = [c for c in frame.columns if c in LAYERS["gaps"].public]
    records = frame[columns].to_dict("records")
    return pd.Series([one(r) for r in records], index=frame.index, dtype=object)


def _number(value, missing: float = 0.0) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return missing
    return missing if np.isnan(out) else out


#: Restricted columns shown in a public form where their value is withheld: built from
#: the feature's public columns only.
PUBLIC_FORMS: dict[tuple[str, str], Callable[[pd.DataFrame], pd.Series]] = {
    ("gaps", "reason"): _gap_reasons,
}


# readers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reader:
    """Who reads: nobody (an anonymous caller with public reads on), an account, or
    everyone's data (``everything``: an admin, or the holder of the store on the command
    line)."""

    account: Account | None = None
    everything: bool = False
    _scopes: tuple[str, ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        if self.account is not None:
            object.__setattr__(self, "_scopes", tuple(str(s) for s in self.account.scopes))
            if self.account.role == "admin":
                object.__setattr__(self, "everything", True)

    @classmethod
    def of(cls, account: Account | None) -> Reader:
        """The reader an API caller is (None: anonymous)."""
        return cls(account)

    @property
    def anonymous(self) -> bool:
        return self.account is None and not self.everything

    @property
    def key(self) -> str:
        """What the columns this reader is shown depend on: ``public`` for an anonymous
        reader, ``full`` for the rest (whose withheld values are empty instead)."""
        return "public" if self.anonymous else "full"

    def sees(self, code: str | None) -> bool:
        """Whether restricted values of a feature in unit ``code`` are shown."""
        if self.everything:
            return True
        if self.account is None or not code:
            return False
        return str(code).startswith(self._scopes) if self._scopes else False

    def sees_staff(self, code: str | None) -> bool:
        """Whether the roster of grid or micro-grid ``code`` is shown: to an account whose
        territory holds it (an admin's is every grid), never to an anonymous caller."""
        return self.sees(code)

    def covers(self, codes: pd.Series) -> np.ndarray:
        """:meth:`sees` of each code, as a boolean array."""
        if self.everything:
            return np.ones(len(codes), dtype=bool)
        if self.account is None or not self._scopes:
            return np.zeros(len(codes), dtype=bool)
        text = codes.astype(object).where(codes.notna(), "").astype(str)
        return text.str.startswith(self._scopes).to_numpy(dtype=bool)


ANONYMOUS = Reader()
EVERYTHING = Reader(everything=True)


def _scope_mask(layer: str, frame: pd.DataFrame, reader: Reader) -> np.ndarray:
    """Rows whose restricted values ``reader`` sees."""
    rules = layer_classes(layer)
    n = len(frame)
    if reader.anonymous:
        return np.zeros(n, dtype=bool)
    if rules.scope_list and rules.scope_list in frame:  # a zone lies in every grid it touches
        lists = [v.split(",") if isinstance(v, str) else [] for v in frame[rules.scope_list]]
        return np.array([any(reader.sees(c.strip()) for c in codes) for codes in lists], bool)
    code = pd.Series([""] * n, index=frame.index, dtype=object)
    for col in reversed([c for c in rules.scope if c in frame]):  # the first not empty wins
        values = frame[col].astype(object)
        present = values.notna() & (values.astype(str) != "")
        code = values.where(present, code)
    return reader.covers(code)


def in_territory(layer: str, frame: pd.DataFrame, reader: Reader) -> np.ndarray:
    """Which rows of ``layer`` lie in ``reader``'s territory: those whose restricted values
    it sees (every row for ``everything``, none for an anonymous reader or an account
    without a scope). An offline tile package made with a key holds these rows only
    (:mod:`wangge.data.tile_packages`): the same rule :func:`apply` reads, not a second."""
    return _scope_mask(layer, frame, reader)


def _withheld(values: pd.Series, keep: np.ndarray) -> pd.Series:
    """``values`` with the rows not kept empty: integers and booleans as pandas' nullable
    types (an int stays an int where shown), NaN in floats, None elsewhere."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype("boolean").where(keep, pd.NA)
    if pd.api.types.is_integer_dtype(values):
        return values.astype("Int64").where(keep, pd.NA)
    if pd.api.types.is_float_dtype(values):
        return values.where(keep)
    return values.astype(object).where(keep, None)


def apply(layer: str, frame: pd.DataFrame, reader: Reader) -> pd.DataFrame:
    """``frame`` (rows of ``layer``) as ``reader`` may see it.

    Parameters
    ----------
    layer
        The layer's name (a collection of one dimension is its layer's, ``gaps``).
    frame
        Its rows, any columns; the geometry is public.
    reader
        Who reads.

    Returns
    -------
    pandas.DataFrame
        For an anonymous reader, without the restricted and staff columns (those with a
        public form keep it); for an account, the same columns with the values of the
        features outside its territory empty (or in public form); for ``everything``,
        ``frame`` itself.
    """
    if reader.everything or not len(frame.columns):
        return frame
    rules = layer_classes(layer)
    geometry = getattr(frame, "_geometry_column_name", None)
    private = [c for c in frame.columns if c != geometry and rules.class_of(c) != PUBLIC]
    if not private:
        return frame
    out = frame.copy()
    keep = _scope_mask(layer, out, reader)
    dropped = []
    for col in private:
        form = PUBLIC_FORMS.get((layer, col))
        if form is not None:
            if not keep.all():
                public = form(out)
                out[col] = out[col].astype(object).where(keep, public)
            continue
        if reader.anonymous:
            dropped.append(col)
            continue
        if not keep.all():  # staff follow the territory too (Reader.sees_staff)
            out[col] = _withheld(out[col], keep)
    return out.drop(columns=dropped) if dropped else out


def listed(layer: str, columns: Iterable[str], reader: Reader) -> tuple[str, ...]:
    """The columns ``reader`` is told ``layer`` has: all but the restricted and staff ones
    (without a public form) for an anonymous reader, all for an account."""
    columns = tuple(columns)
    if not reader.anonymous:
        return columns
    rules = layer_classes(layer)
    return tuple(c for c in columns if rules.class_of(c) == PUBLIC or (layer, c) in PUBLIC_FORMS)
