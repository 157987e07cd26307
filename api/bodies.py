"""Bodies the routes read themselves (uploads, batches), as models: their JSON schema
documents the request in /openapi.json, and the route checks the body against the same
model before any reader sees it, so the description is the check. An uploaded file is
checked for size and expansion (data/untrusted.py) before any parser opens it."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pyproj import CRS
from pyproj.exceptions import CRSError

from wangge.data import untrusted
from wangge.data.plan import LEVEL_LAYERS
from wangge.errors import InputError
from wangge.geo.limits import limits_from_raw

#: A longitude and a latitude in degrees: JSON numbers only (strict, so ``false`` or
#: ``"32"`` is refused as the schema's ``type: number`` says, never read as 0 or 32).
Lon = Annotated[float, Field(ge=-180, le=180, strict=True)]
Lat = Annotated[float, Field(ge=-90, le=90, strict=True)]
Height = Annotated[float, Field(strict=True)]


def _whole_number(value: Any) -> Any:
    """A JSON integer as JSON Schema has it: any number with no fraction (``3`` or
    ``3.0``), never a boolean or a string (pydantic's lax mode reads ``true`` as 1 and
    ``"3"`` as 3; its strict mode refuses ``3.0``, which the schema's ``integer`` allows)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


#: A whole number in a request body (:func:`_whole_number`).
WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
#: A version number in a request body: a JSON integer only (a ``true`` is no version 1).
VersionNumber = Annotated[int, Field(ge=1, le=2**31 - 1), BeforeValidator(_whole_number)]
#: A yes or no in a request body: a JSON boolean only (``1`` or ``"yes"`` is refused).
Flag = Annotated[bool, Field(strict=True)]
#: A position in WGS84, as RFC 7946 has it: longitude, latitude (and a height, ignored).
Position = tuple[Lon, Lat] | tuple[Lon, Lat, Height]
#: A closed ring: at least four positions.
Ring = Annotated[list[Position], Field(min_length=4)]


class Point(BaseModel):
    type: Literal["Point"]
    coordinates: Position


class MultiPoint(BaseModel):
    type: Literal["MultiPoint"]
    coordinates: Annotated[list[Position], Field(min_length=1)]


class Polygon(BaseModel):
    type: Literal["Polygon"]
    coordinates: Annotated[list[Ring], Field(min_length=1)]


class MultiPolygon(BaseModel):
    type: Literal["MultiPolygon"]
    coordinates: Annotated[list[Annotated[list[Ring], Field(min_length=1)]], Field(min_length=1)]


class PlanProperties(BaseModel):
    """A plan feature's attributes: its level and code, and whatever else the plan keeps."""

    model_config = ConfigDict(extra="allow")
    # any text passes here, so that the reader names an unknown level and the levels known
    level: str = Field(json_schema_extra={"enum": list(LEVEL_LAYERS)})
    code: str | int | None = Field(default=None, description="The unit's code")


class PlanFeature(BaseModel):
    type: Literal["Feature"]
    # null passes here, so that the reader names the feature without a geometry
    geometry: Point | MultiPoint | Polygon | MultiPolygon | None
    properties: PlanProperties


class PlanCollection(BaseModel):
    """A plan as GeoJSON: every level in one FeatureCollection, told apart by ``level``,
    and the plan's meta beside the features (wangge/importing.py reads it)."""

    model_config = ConfigDict(extra="allow")
    type: Literal["FeatureCollection"]
    features: Annotated[list[PlanFeature], Field(min_length=1)]
    district_code: str | None = None
    metric_crs: str | None = Field(default=None, description="A projected CRS, e.g. EPSG:4549")
    limits_json: str | None = Field(
        default=None, description="The plan's limits as JSON, as `wangge delineate` writes them"
    )

    @field_validator("metric_crs")
    @classmethod
    def _known_crs(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CRS.from_user_input(value)
            except CRSError as exc:
                raise ValueError(f"not a CRS pyproj knows: {value[:40]!r}") from exc
        return value

    @field_validator("limits_json")
    @classmethod
    def _readable_limits(cls, value: str | None) -> str | None:
        # the readers downstream expect well-formed limits (wangge/geo/limits.py)
        if value is not None:
            try:
                limits_from_raw(json.loads(value), "limits_json")
            except InputError:
                raise
            except Exception as exc:
                raise ValueError(f"not limits as wangge writes them ({exc!r})"[:200]) from exc
        return value


class GridFeature(BaseModel):
    type: Literal["Feature"]
    # GDAL reads the layer, so the geometry is described, not spelled out
    geometry: dict[str, Any] | None = Field(description="A GeoJSON Polygon or MultiPolygon")
    properties: dict[str, Any] | None


class GridCollection(BaseModel):
    """A city's grid layer as GeoJSON: one polygon per grid, its code and name among the
    properties."""

    model_config = ConfigDict(extra="allow")
    type: Literal["FeatureCollection"]
    features: Annotated[list[GridFeature], Field(min_length=1)]


def inline_schema(model: type[BaseModel]) -> dict:
    """A model's JSON schema with its ``$defs`` written in place: a schema put into
    ``openapi_extra`` is not merged into the components, so a ``#/$defs/…`` reference
    would dangle and break client generators."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def expand(node):
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return expand(defs[ref.removeprefix("#/$defs/")])
            return {k: expand(v) for k, v in node.items()}
        if isinstance(node, list):
            return [expand(v) for v in node]
        return node

    return expand(schema)


def check_json(model: type[BaseModel], data: bytes, source: str) -> None:
    """Refuse (422) a JSON body that ``model`` does not describe, naming the first place
    at fault (``features.3.geometry``); a body that is not JSON is left to the reader."""
    try:
        model.model_validate_json(data.removeprefix(b"\xef\xbb\xbf"))
    except ValidationError as exc:
        problems = exc.errors(include_url=False)
        if problems and problems[0]["type"] == "json_invalid":
            return
        where = ".".join(str(x) for x in problems[0]["loc"]) if problems else None
        msg = problems[0]["msg"].removeprefix("Value error, ") if problems else "invalid"
        raise InputError(f"{msg} (see the body's schema in /openapi.json)", source, where) from exc


def upload_limits(request: Request) -> untrusted.Limits:
    """What an upload may hold before a parser opens it (data/untrusted.py): its size the
    upload cap (``WANGGE_MAX_UPLOAD_MB``), its expansion twenty times that, its features
    and a sheet's rows ``WANGGE_MAX_UPLOAD_FEATURES``; the rest the module's defaults."""
    settings = request.app.state.settings
    most = int(settings.max_upload_mb * untrusted.MB)
    features = settings.max_upload_features
    return untrusted.Limits(
        file_bytes=most,
        expanded_bytes=max(20 * most, untrusted.RATIO_FLOOR),
        features=features,
        rows=min(untrusted.XLSX_ROWS, features + 1),  # a header row besides the data
        setting="WANGGE_MAX_UPLOAD_FEATURES",
    )


async def check_upload(
    request: Request, data: bytes, source: str, xlsx: bool | None = None
) -> None:
    """Refuse (413, naming the file and the limit) an upload beyond :func:`upload_limits`,
    or (422) one damaged in a way that shows before parsing; run before any reader."""
    await run_in_threadpool(untrusted.check_bytes, data, source, upload_limits(request), xlsx)
