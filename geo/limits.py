"""Delineation limits per level, read from ``limits.toml`` (defaults) and a user's overrides."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from wangge.geo._config import load_default, merge, read_toml
from wangge.geo.partition import Band, SolverParams


@dataclass(frozen=True)
class Limits:
    """Bands for every level, the district code and the solver's bounds.

    ``district_code`` is None until something names the district (``--district-code``, a
    limits file, the given codes or the OSM file: :mod:`wangge.geo.district`); no default
    is made up.
    """

    district_code: str | None
    street_max_km2: float
    community: Band
    community_max_population: float
    grid: Band
    microgrid: Band
    solver: SolverParams
    raw: dict[str, Any]

    def require_district(self) -> str:
        """The district code; :class:`wangge.errors.InputError` when nothing named one."""
        from wangge.errors import InputError

        if self.district_code is None:
            raise InputError(
                "no district code: pass --district-code with the 6-digit GB/T 2260 code of "
                "the district, or give coded streets or communities"
            )
        return self.district_code

    @property
    def street(self) -> Band:
        """Streets are cut by area (m²), aiming at 80 % of the ceiling."""
        hi = self.street_max_km2 * 1e6
        return Band("street", 0.25 * hi, hi, 0.8 * hi)


def presets() -> dict[str, dict[str, Any]]:
    """The rule sets of ``[presets.*]`` in the bundled limits.toml, by name."""
    return load_default("limits.toml").get("presets", {})


def load_limits(
    path: str | Path | None = None, preset: str | None = None, **overrides: Any
) -> Limits:
    """Load the limits: bundled defaults, a preset (``--preset`` or ``preset = "…"`` in the
    user's file), the user's TOML on top, then keyword overrides.

    Keyword overrides are ``seed`` and ``district_code``. Raises
    :class:`wangge.errors.InputError` naming the file and key for bad values, and naming
    the presets for an unknown one.
    """
    from wangge.errors import InputError

    raw = load_default("limits.toml")
    known = raw.pop("presets", {})
    user = read_toml(path) if path is not None else {}
    name = preset or user.get("preset")
    if name is not None:
        if name not in known:
            raise InputError(
                f"unknown preset {name!r}; known: {', '.join(sorted(known))}",
                path or "limits.toml",
            )
        chosen = {k: v for k, v in known[name].items() if isinstance(v, dict)}
        raw = merge(raw, chosen)
        raw["preset"] = name
    raw = merge(raw, {k: v for k, v in user.items() if k != "preset"})
    return limits_from_raw(raw, str(path) if path is not None else "limits.toml", **overrides)


def limits_from_raw(raw: dict[str, Any], source: str, **overrides: Any) -> Limits:
    """Build :class:`Limits` from merged settings (as stored in a plan), checking values.

    ``source`` names where the settings came from in error messages.
    """
    from wangge.errors import InputError

    if not isinstance(raw, dict):
        raise InputError(f"limits must be a table of tables, got {type(raw).__name__}", source)
    try:
        return _limits(raw, source, overrides)
    except KeyError as exc:
        raise InputError(f"the limits lack the key {exc.args[0]!r}", source) from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"unreadable limits: {exc}", source) from exc


def _limits(raw: dict[str, Any], source: str, overrides: dict[str, Any]) -> Limits:
    from wangge.errors import InputError

    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    if overrides.get("seed") is not None:
        raw["solver"]["seed"] = int(overrides["seed"])
    raw["district"] = dict(raw.get("district") or {})
    if overrides.get("district_code") is not None:
        raw["district"]["code"] = str(overrides["district_code"])
    code = raw["district"].get("code")
    if code is not None:
        code = str(code)
        if not (len(code) == 6 and code.isdigit()):
            raise InputError(f"district code must be 6 digits (GB/T 2260), got {code!r}", source)

    def band(name: str) -> Band:
        t = raw[name]
        lo, hi, target = (
            float(t[k]) for k in ("min_households", "max_households", "target_households")
        )
        if not 0 < lo <= target <= hi:
            raise InputError(
                f"[{name}] needs 0 < min_households ≤ target_households ≤ max_households, "
                f"got {lo:g} ≤ {target:g} ≤ {hi:g}",
                source,
            )
        return Band(name, lo, hi, target, divisible=name == "microgrid")

    known = {f.name for f in fields(SolverParams)}
    unknown = set(raw["solver"]) - known
    if unknown:
        raise InputError(f"unknown [solver] keys: {', '.join(sorted(unknown))}", source)
    return Limits(
        district_code=code,
        street_max_km2=float(raw["street"]["max_area_km2"]),
        community=band("community"),
        community_max_population=float(raw["community"]["max_population"]),
        grid=band("grid"),
        microgrid=band("microgrid"),
        solver=SolverParams(**raw["solver"]),
        raw=raw,
    )
