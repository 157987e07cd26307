"""The spatial core: pure functions on GeoDataFrames and graphs, with no web or database code."""
