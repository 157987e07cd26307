"""Given streets and communities: read and settle the files, label blocks, list straddlers,
calibrate households to known totals."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.data import boundaries
from wangge.errors import InputError
from wangge.geo import boundaries as geo_boundaries
from wangge.geo import calibration
from wangge.geo.blocks import zone_of
from wangge.geo.codes import reading_order

#: Columns of the findings table of units.gpkg (boundary files, building files, straddlers).
FINDING_COLUMNS = ["source", *geo_boundaries.FINDING_COLUMNS]
#: A building keeping less than this share of its footprint in its unit is listed.
STRADDLE_SHARE = 0.99


def findings_frame(frame: pd.DataFrame | None, source: str) -> pd.DataFrame:
    """``frame`` (any findings table) with the common columns, tagged with ``source``."""
    if frame is None or frame.empty:
        return pd.DataFrame(columns=FINDING_COLUMNS)
    out = frame.copy()
    out["source"] = source
    for col in FINDING_COLUMNS:
        if col not in out:
            out[col] = None
    return out[FINDING_COLUMNS]


@dataclass
class Given:
    """The district's given units in a metric CRS.

    ``streets`` and ``communities`` (None when not given) carry ``code``, ``name``,
    ``households`` and ``population``; communities also ``street_row``, the row of the
    street holding them. ``zones`` is the finest given level: no block crosses its units.
    """

    streets: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame | None
    findings: pd.DataFrame
    unassigned: gpd.GeoDataFrame
    streets_derived: bool = False

    @property
    def zones(self) -> gpd.GeoDataFrame:
        return self.communities if self.communities is not None else self.streets

    @property
    def level(self) -> str:
        return "community" if self.communities is not None else "street"

    @property
    def area(self) -> shapely.Geometry:
        """The study area: the land of the given units (unassigned gaps left out)."""
        return shapely.union_all(self.zones.geometry.to_numpy())

    def street_of_zone(self) -> np.ndarray:
        if self.communities is None:
            return np.arange(len(self.streets))
        return self.communities["street_row"].to_numpy()

    def label_blocks(self, blocks: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Blocks with ``zone`` (row of the finest given unit), ``street_row`` and
        ``community_row`` (-1 without given communities)."""
        out = blocks.copy()
        if "zone" not in out:
            out["zone"] = zone_of(out.geometry.to_numpy(), self.zones.geometry.to_numpy())
        zone = out["zone"].to_numpy()
        if (zone < 0).any():  # a block outside every unit cannot happen: the area is theirs
            raise InputError(f"{(zone < 0).sum()} block(s) lie outside every given unit")
        out["street_row"] = self.street_of_zone()[zone]
        out["community_row"] = zone if self.communities is not None else -1
        return out

    def straddling(self, buildings: gpd.GeoDataFrame, zone: np.ndarray) -> pd.DataFrame:
        """One finding per building whose footprint crosses a given boundary: it goes to
        the unit holding most of it (its block's), and is listed with that share."""
        zones = self.zones.geometry.to_numpy()
        geoms = buildings.geometry.to_numpy()
        share = shapely.area(shapely.intersection(geoms, zones[zone])) / np.maximum(
            shapely.area(geoms), 1e-9
        )
        rows = []
        pts = gpd.GeoSeries(geoms, crs=buildings.crs).representative_point().to_crs(4326)
        for i in np.flatnonzero(share < STRADDLE_SHARE):
            z = int(zone[i])
            rows.append(
                {
                    "kind": "building_straddles",
                    "level": self.level,
                    "code": self.zones["code"].iat[z],
                    "name": self.zones["name"].iat[z],
                    "area_m2": float(shapely.area(geoms[i])),
                    "x": pts.x.iat[i],
                    "y": pts.y.iat[i],
                    "detail": (
                        f"building {buildings['building_id'].iat[i]} crosses a given boundary; "
                        f"it goes to the unit holding {share[i]:.0%} of its footprint"
                    ),
                }
            )
        return findings_frame(pd.DataFrame(rows), "buildings")

    def calibrate(
        self,
        buildings: gpd.GeoDataFrame,
        zone: np.ndarray,
        extent: shapely.Geometry,
        persons: float,
        outliers: bool = False,
    ) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
        """Scale estimated households to the known totals of the finest given level that
        carries any (communities, else streets); see :mod:`wangge.geo.calibration`.
        Factors outside its plausible range are applied only with ``outliers``."""
        report = pd.DataFrame(columns=calibration.COLUMNS)
        levels = [("community", self.communities, zone)] if self.communities is not None else []
        levels.append(("street", self.streets, self.street_of_zone()[zone]))
        for level, units, unit_of in levels:
            known = units[["households", "population"]].notna().any(axis=1)
            if not known.any():
                continue
            cover = calibration.coverage_share(units.geometry.to_numpy(), extent)
            buildings, report = calibration.calibrate(
                buildings, unit_of, units, cover, level, persons, outliers
            )
            break
        return buildings, report


def _street_land_left(
    streets: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, source: str, min_m2: float = 50.0
) -> pd.DataFrame:
    """A finding per given street whose land no given community covers (more than
    ``min_m2``): the study area is the communities' land, so that land is left out."""
    covered = shapely.union_all(communities.geometry.to_numpy())
    rows = []
    for code, name, geom in zip(
        streets["code"], streets["name"], streets.geometry.to_numpy(), strict=True
    ):
        left = shapely.difference(geom, covered)
        if left.is_empty or left.area <= min_m2:
            continue
        pt = gpd.GeoSeries([left.representative_point()], crs=streets.crs).to_crs(4326)
        rows.append(
            {
                "kind": "street_land_uncovered",
                "level": "street",
                "code": code,
                "name": name,
                "area_m2": float(left.area),
                "x": pt.x.iat[0],
                "y": pt.y.iat[0],
                "detail": (
                    f"{left.area:,.0f} m² of the street lie in no given community; that land "
                    "is left out of the plan"
                ),
            }
        )
    return findings_frame(pd.DataFrame(rows), source)


def _metric(frame: gpd.GeoDataFrame, crs) -> gpd.GeoDataFrame:
    return frame.to_crs(crs).reset_index(drop=True)


def _rows_lon_lat(frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    pts = gpd.GeoSeries(frame.geometry.representative_point(), crs=frame.crs).to_crs(4326)
    return pts.x.to_numpy(), pts.y.to_numpy()


def _leave_out_outside(
    layers: dict[str, gpd.GeoDataFrame],
    points: np.ndarray,
    extent: shapely.Geometry | None,
    sources: dict[str, str],
) -> list[pd.DataFrame]:
    """Drop from ``layers`` the given units the data does not reach
    (:func:`wangge.geo.boundaries.in_data`), communities first; a street holding a kept
    community is kept. One ``outside_data`` finding per unit left out."""
    found = []
    kept_land = None
    for level in ("community", "street"):
        frame = layers.get(level)
        if frame is None:
            continue
        geoms = frame.geometry.to_numpy()
        inside, share = geo_boundaries.in_data(geoms, points, extent)
        if kept_land is not None:
            inside |= shapely.area(shapely.intersection(geoms, kept_land)) > 0
        if inside.all():
            kept_land = shapely.union_all(geoms)
            continue
        if not inside.any():
            raise InputError(
                f"none of the {len(frame)} given {level} units holds a building or lies where "
                "the data reaches (the OSM file's bounds, the buildings); are they this "
                "district's, and in the CRS declared?",
                sources[level],
            )
        lon, lat = _rows_lon_lat(frame)
        out = np.flatnonzero(~inside)
        rows = [
            {
                "kind": "outside_data",
                "level": level,
                "code": frame["code"].iat[i],
                "name": frame["name"].iat[i],
                "area_m2": float(shapely.area(geoms[i])),
                "x": lon[i],
                "y": lat[i],
                "detail": (
                    f"holds no building, and {share[i]:.0%} of its "
                    f"{shapely.area(geoms[i]) / 1e6:,.2f} km² lies where the data reaches; "
                    "left out of the plan"
                ),
            }
            for i in out
        ]
        found.append(findings_frame(pd.DataFrame(rows), sources[level]))
        layers[level] = frame[inside].reset_index(drop=True)
        kept_land = shapely.union_all(layers[level].geometry.to_numpy())
    return found


def _number_by_district(streets: gpd.GeoDataFrame, source: str) -> pd.DataFrame:
    """Give each street that has no code but a district (its district column) the code
    district + 001 up, in reading order within the district, skipping codes taken: the
    district is the file's, only the township number is wangge's. One ``code_assigned``
    finding each."""
    if "district_code" not in streets:
        return findings_frame(None, source)
    todo = [
        i
        for i, (c, d) in enumerate(zip(streets["code"], streets["district_code"], strict=True))
        if not isinstance(c, str) and isinstance(d, str)
    ]
    taken = {c for c in streets["code"] if isinstance(c, str)}
    lon, lat = _rows_lon_lat(streets)
    rows = []
    codes = streets["code"].astype(object).to_numpy().copy()
    by_district: dict[str, list[int]] = {}
    for i in todo:
        by_district.setdefault(streets["district_code"].iat[i], []).append(i)
    for code, rows_of in sorted(by_district.items()):
        idx = np.array(rows_of)
        order = idx[reading_order(streets.geometry.iloc[idx])]
        number = 1
        for i in order:
            while f"{code}{number:03d}" in taken:
                number += 1
            codes[i] = f"{code}{number:03d}"
            taken.add(codes[i])
            rows.append(
                {
                    "kind": "code_assigned",
                    "level": "street",
                    "code": codes[i],
                    "name": streets["name"].iat[i],
                    "area_m2": float(streets.geometry.iloc[i].area),
                    "x": lon[i],
                    "y": lat[i],
                    "detail": (
                        f"the street carries no code; numbered {codes[i]} under its district "
                        f"{code} (from its district column)"
                    ),
                }
            )
    streets["code"] = pd.Series(codes, index=streets.index, dtype=object)
    return findings_frame(pd.DataFrame(rows), source)


def read_given(
    streets: str | Path | None,
    communities: str | Path | None,
    crs,
    coords: str = "wgs84",
    encoding: str = "utf-8",
    file_crs: str | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    extent: shapely.Geometry | None = None,
) -> Given:
    """Read, clean and nest the given streets and communities (metric ``crs``).

    With communities but no streets, streets come from the communities' 12-digit codes
    (geo/boundaries.streets_from_communities). With ``buildings`` (metric) and the
    ``extent`` the data reaches, given units the data does not reach are left out
    (:func:`_leave_out_outside`). A street without a code but with a district column is
    numbered within its district (:func:`_number_by_district`). Every finding (repairs,
    overlaps settled, gaps snapped or left unassigned, units left out, communities
    straddling streets) is kept, tagged with its file.
    """
    found: list[pd.DataFrame] = []
    layers: dict[str, gpd.GeoDataFrame] = {}
    unassigned = []
    for level, path in (("street", streets), ("community", communities)):
        if path is None:
            continue
        read = boundaries.read_units(path, level, coords=coords, encoding=encoding, crs=file_crs)
        found.append(findings_frame(read.findings, Path(path).name))
        frame, cleaned, gaps = geo_boundaries.clean_units(_metric(read.frame, crs), level)
        layers[level] = frame
        found.append(findings_frame(cleaned, Path(path).name))
        if len(gaps):
            unassigned.append(gaps.assign(level=level, source=Path(path).name))
    sources = {"street": streets, "community": communities}
    if buildings is not None:
        points = shapely.point_on_surface(buildings.to_crs(crs).geometry.to_numpy())
        found.extend(_leave_out_outside(layers, points, extent, sources))
        land = shapely.union_all([f.geometry.union_all() for f in layers.values()])
        unassigned = [g[g.intersects(land.buffer(1.0))] for g in unassigned]
        unassigned = [g for g in unassigned if len(g)]
    if "street" in layers:
        found.append(_number_by_district(layers["street"], Path(streets).name))
    derived = False
    if "street" not in layers:
        layers["street"] = geo_boundaries.streets_from_communities(layers["community"])
        derived = True
    street_frame = layers["street"]
    com = layers.get("community")
    if com is not None:
        if not derived:
            nested, nest_found = geo_boundaries.nest_communities(street_frame, com)
            found.append(findings_frame(nest_found, Path(communities).name))
            com = nested
        com = com.copy()
        row = zone_of(com.geometry.to_numpy(), street_frame.geometry.to_numpy())
        if (row < 0).any():
            names = ", ".join(str(c) for c in com.loc[row < 0, "code"][:5])
            raise InputError(
                f"communities outside every given street: {names}", communities, where="streets"
            )
        com["street_row"] = row
        if not derived:
            found.append(_street_land_left(street_frame, com, Path(streets).name))
    for frame in (street_frame, com):
        if frame is None:
            continue
        for col in ("households", "population"):
            if col not in frame:
                frame[col] = np.nan
    gaps = (
        pd.concat(unassigned, ignore_index=True)
        if unassigned
        else gpd.GeoDataFrame({"area_m2": []}, geometry=[], crs=crs)
    )
    return Given(
        streets=street_frame,
        communities=com,
        findings=pd.concat([f for f in found if len(f)] or [findings_frame(None, "")]),
        unassigned=gpd.GeoDataFrame(gaps, geometry="geometry", crs=crs),
        streets_derived=derived,
    )
