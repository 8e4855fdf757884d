"""nearby: which profiles of a category lie within a distance of a point.

PostgreSQL+PostGIS holds the profiles; one Redis GEO index per category,
refreshed from it, answers the queries. See README.md for the architecture.
"""
