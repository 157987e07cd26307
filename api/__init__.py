"""The HTTP API (FastAPI): collections, coverage, plans, exports and tiles. Lands with issue 4."""
