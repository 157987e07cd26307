"""Codes: format, prefix and reading order."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from wangge.geo.codes import check_code, child_codes, reading_order


def test_child_codes_and_widths():
    assert child_codes("320102", 3, "street") == ["320102001", "320102002", "320102003"]
    assert child_codes("320102001001001", 2, "microgrid")[-1] == "320102001001001002"
    with pytest.raises(ValueError, match="do not fit"):
        child_codes("320102", 1000, "street")


@pytest.mark.parametrize(
    ("code", "level", "parent", "problem"),
    [
        ("320102001001001", "grid", "320102001001", None),
        ("32010200100100", "grid", None, "14 digits"),
        ("3201020010010a1", "grid", None, "not all digits"),
        ("320102001001000", "grid", None, "numbering starts at 1"),
        ("320102001002001", "grid", "320102001001", "does not start with"),
    ],
)
def test_check_code(code, level, parent, problem):
    got = check_code(code, level, parent)
    assert got is None if problem is None else problem in got


def test_reading_order_rows_north_to_south_then_west_to_east():
    boxes = [shapely.box(x, y, x + 90, y + 90) for y in (100, 0) for x in (100, 0)]
    # positions: 0 = NE, 1 = NW, 2 = SE, 3 = SW
    assert reading_order(gpd.GeoSeries(boxes)).tolist() == [1, 0, 3, 2]
