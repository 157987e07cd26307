"""File downloads of a layer in the CRS and encoding a city GIS team asks for."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from wangge.api.auth import READ
from wangge.api.deps import StoreDep, VersionDep
from wangge.api.errors import ERRORS
from wangge.data.exports import export_layer
from wangge.geo.crs import GAUSS_KRUGER_EPSG

router = APIRouter(tags=["exports"], dependencies=[READ])
#: The CRSs offered: WGS84, CGCS2000, its 3-degree Gauss-Kruger zones and GCJ-02.
OFFERED_CRS = [
    "EPSG:4326",
    "EPSG:4490",
    *(f"EPSG:{code}" for code in GAUSS_KRUGER_EPSG),
    "GCJ02",
]


@router.get(
    "/export/{layer}",
    responses={
        **ERRORS,
        200: {
            "content": {
                "application/geo+json": {},
                "application/geopackage+sqlite3": {},
                "application/zip": {},
            },
            "description": "The layer as a file",
        },
    },
)
def export(
    request: Request,
    store: StoreDep,
    v: VersionDep,
    layer: Annotated[str, Path(max_length=64)],
    format: Annotated[Literal["geojson", "gpkg", "shp"], Query()] = "geojson",
    crs: Annotated[
        str,
        Query(
            description="EPSG:4326, EPSG:4490, EPSG:4547 (or another CGCS2000 3° zone), GCJ02; "
            "another 2D EPSG code is accepted too (so this lists examples, not an enum)",
            max_length=40,
            examples=OFFERED_CRS,
        ),
    ] = "EPSG:4326",
    encoding: Annotated[
        Literal["UTF-8", "GBK"],
        Query(description="Shapefile only; GeoJSON and GeoPackage are always UTF-8"),
    ] = "UTF-8",
) -> Response:
    """Download one layer of the plan version as GeoJSON, GeoPackage or zipped Shapefile;
    a layer that mixes geometry dimensions also by its OGC collections (``gaps-points``,
    ``gaps-areas``), one geometry type each, as a Shapefile needs."""
    from wangge.api.collections import offered

    part = offered(request, store, v).get(layer)
    name, dimension = (part.info.name, part.dimension) if part else (layer, None)
    frame = store.query(v.plan_id, v.version, name, dimension=dimension).frame
    out = export_layer(frame, layer, format, crs, encoding if format == "shp" else "UTF-8")
    name = f"{v.plan_id}-v{v.version}-{out.filename}"
    return Response(
        out.content,
        media_type=out.media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
