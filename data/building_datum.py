"""Whether a building file's coordinates fit the OSM data's datum (WGS84, GCJ-02, BD-09)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd

from wangge.data.buildings import FINDING_COLUMNS, BuildingFile
from wangge.errors import InputError
from wangge.geo.crs import CHINA_BBOX, datum_fit

#: How each datum is written in messages.
DATUM_LABELS = {"wgs84": "WGS84", "gcj02": "GCJ-02", "bd09": "BD-09"}
#: How each datum is named to a planner, and where such coordinates come from.
DATUM_NAMES = {
    "wgs84": "WGS84 (or CGCS2000: GPS, OSM, survey data)",
    "gcj02": "GCJ-02 (AMap, Tencent)",
    "bd09": "BD-09 (Baidu)",
}


def check_datum(
    buildings: BuildingFile,
    osm_buildings: gpd.GeoDataFrame | None,
    osm_roads: gpd.GeoDataFrame | None,
) -> BuildingFile:
    """Check the datum a file's longitude/latitude were read in against OSM of the place.

    A file in GCJ-02 or BD-09 read as WGS84 (or the reverse) lands a few hundred metres
    off, and its households are estimated on the wrong land without a word. With the OSM
    buildings or roads of the same place, :func:`wangge.geo.crs.datum_fit` tells which
    datum the footprints sit in. Where nothing can tell (no OSM data, or too little of it
    under the buildings), a file read as WGS84 gets a ``datum unchecked`` finding.

    Parameters
    ----------
    buildings
        As read by :func:`read_buildings`; a file in a projected CRS is not checked.
    osm_buildings, osm_roads
        OSM buildings and the roads that cut blocks, in any CRS; None or empty when there
        is no OSM file.

    Returns
    -------
    BuildingFile
        ``buildings``, with a note saying what was checked, or a finding saying nothing was.

    Raises
    ------
    InputError
        The footprints sit on the OSM data in another datum than they were read in; the
        message names the ``--buildings-coords`` value that fits.
    """
    if buildings.coords is None or buildings.frame.empty:
        return buildings
    given = buildings.coords
    layers = [
        np.empty(0, dtype=object) if f is None or f.empty else f.to_crs(4326).geometry.to_numpy()
        for f in (osm_buildings, osm_roads)
    ]
    fit = datum_fit(buildings.frame.geometry.to_numpy(), given, *layers)
    notes = Counter(buildings.notes)
    if fit.misfit:
        if fit.basis == "buildings":
            how = (
                f"{fit.inside[given]:.0%} of them fall inside an OSM building, against "
                f"{fit.inside[fit.best]:.0%} read as {DATUM_LABELS[fit.best]}"
            )
        else:
            how = (
                f"an OSM road crosses {fit.crossed[given]:.0%} of them, against "
                f"{fit.crossed[fit.best]:.0%} read as {DATUM_LABELS[fit.best]}"
            )
        raise InputError(
            f"the buildings do not sit on the OSM data of the same place when read as "
            f"{DATUM_LABELS[given]}: {how}, about {fit.offset_m[fit.best]:.0f} m away. The file "
            f"is in {DATUM_NAMES[fit.best]}: pass --buildings-coords {fit.best}",
            buildings.source,
        )
    if fit.basis:
        notes[f"coordinates checked against the OSM {fit.basis}: {DATUM_LABELS[given]} fits"] += 1
        return replace(buildings, notes=notes)
    c = buildings.frame.geometry.union_all().centroid
    x0, y0, x1, y1 = CHINA_BBOX
    if given != "wgs84" or not (x0 <= c.x <= x1 and y0 <= c.y <= y1):
        return buildings  # said by the user, or outside China, where there is no shift
    if not any(len(g) for g in layers):
        why = "there is no OSM data to compare them with"
    else:
        best = max(fit.inside.values(), default=0.0)
        why = (
            f"too few of them meet the OSM buildings or roads to tell (at best {best:.0%} "
            "inside an OSM building)"
        )
    detail = (
        f"the coordinates were taken as WGS84 unchecked: {why}. A file from AMap or "
        "Tencent (GCJ-02) or Baidu (BD-09) lands a few hundred metres off: pass "
        "--buildings-coords gcj02 or bd09 for those"
    )
    findings = pd.concat(
        [
            buildings.findings,
            pd.DataFrame([{"kind": "datum unchecked", "detail": detail}], columns=FINDING_COLUMNS),
        ],
        ignore_index=True,
    )
    notes["coordinates taken as WGS84 unchecked"] += 1
    return replace(buildings, notes=notes, findings=findings)
