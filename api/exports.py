"""File downloads of a layer in the CRS and encoding a city GIS team asks for."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from wangge.api.auth import READ
from wangge.api.deps import StoreDep, VersionDep
from wangge.api.errors import ERRORS
from wangge.data.exports import export_layer

router = APIRouter(tags=["exports"], dependencies=[READ])


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
    store: StoreDep,
    v: VersionDep,
    layer: Annotated[str, Path(max_length=64)],
    format: Annotated[Literal["geojson", "gpkg", "shp"], Query()] = "geojson",
    crs: Annotated[
        str,
        Query(
            description="EPSG:4326, EPSG:4490, EPSG:4547 (or another CGCS2000 3° zone), GCJ02",
            max_length=40,
        ),
    ] = "EPSG:4326",
    encoding: Annotated[Literal["UTF-8", "GBK"], Query(description="Shapefile only")] = "UTF-8",
) -> Response:
    """Download one layer of the plan version as GeoJSON, GeoPackage or zipped Shapefile."""
    frame = store.query(v.plan_id, v.version, layer).frame
    out = export_layer(frame, layer, format, crs, encoding)
    name = f"{v.plan_id}-v{v.version}-{out.filename}"
    return Response(
        out.content,
        media_type=out.media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
