"""Distances on the Earth for the geo filters of a Query (`near`, `within`), where a backend
computes them itself (SQLite; OpenSearch has geo_distance and geo_bounding_box): the great-circle
distance, and the latitude/longitude box around a circle that an index can narrow a search to
before the exact check."""

from __future__ import annotations

import math

EARTH_RADIUS_KM = 6371.0087714  # the mean radius OpenSearch's geo_distance uses: both backends agree
MARGIN = 1e-9  # degrees added around a circle's box (about 0.1 mm): rounding never drops a point on its edge


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle (haversine) distance between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def circle_box(lat: float, lon: float, radius_km: float) -> tuple[float, float, float, float]:
    """(south, west, north, east) in degrees around every point within `radius_km` of (lat, lon):
    west > east where it crosses the antimeridian; the whole circle of longitudes (-180, 180) where
    it reaches over a pole."""
    angle = radius_km / EARTH_RADIUS_KM  # radians of arc
    south, north = lat - math.degrees(angle) - MARGIN, lat + math.degrees(angle) + MARGIN
    if south <= -90 or north >= 90 or angle >= math.pi / 2:
        return max(south, -90.0), -180.0, min(north, 90.0), 180.0
    # the meridians the circle touches (tangent points), not the box's corners
    reach = math.degrees(math.asin(min(1.0, math.sin(angle) / math.cos(math.radians(lat))))) + MARGIN
    west, east = lon - reach, lon + reach
    if reach >= 180:
        return south, -180.0, north, 180.0
    if west < -180:
        west += 360
    if east > 180:
        east -= 360
    return south, west, north, east
