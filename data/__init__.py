"""Where data comes from and goes to: OSM and user-file readers, the demo data, the store."""
