"""File downloads of a layer in the CRS and encoding a city GIS team asks for."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from wangge.api.auth import READ
from wangge.api.deps import StoreDep, VersionDep
from wangge.api.errors import ERRORS
from wangge.data.exports import accepted_crs, export_layer

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
    request: Request,
    store: StoreDep,
    v: VersionDep,
    layer: Annotated[str, Path(max_length=64)],
    format: Annotated[Literal["geojson", "gpkg", "shp"], Query()] = "geojson",
    crs: Annotated[
        str,
        Query(
            description="EPSG:4326 (WGS84), EPSG:4490 (CGCS2000), a CGCS2000 Gauss-Kruger "
            "zone (EPSG:4491–4554, e.g. EPSG:4547), EPSG:3857, a WGS84 UTM zone, a Xi'an 1980 "
            "or Beijing 1954 Gauss-Kruger zone, or GCJ02",
            max_length=40,
            # exactly what data/exports.accepted_crs takes, so the schema promises what
            # the server does (its check gives the message: the enum is long)
            json_schema_extra={"enum": list(accepted_crs())},
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
