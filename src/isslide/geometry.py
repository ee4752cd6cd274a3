"""Side-looking SAR geometry shared by the simulator and the embedded InSAR backend.

A zero-Doppler, locally flat-earth model of a Sentinel-1 IW acquisition, good to well under a
pixel over scenes of tens of kilometres:

* ground points are (lon, lat, height) in EPSG:4326 and are mapped to a local east/north/up
  frame (metres) around the scene's reference point ``(lon0, lat0)``;
* the satellite flies a straight track at ``altitude`` with heading ``heading_deg`` (clockwise
  from north: about 190 for a descending pass, about 350 for an ascending one) and looks right;
* along-track position ``s = p . a`` gives the azimuth line, slant range to the satellite gives the
  range sample. The reference track sits at cross-track ``x_sat = -altitude * tan(incidence_deg)``
  so the scene centre is seen at ``incidence_deg`` (Sentinel-1 IW: 30 to 46 degrees);
* an :class:`Orbit` displaces the satellite from the reference track by a cross-track / vertical
  offset that may drift linearly along track: the interferometric baseline. The annotated orbit
  of a product differs from its precise orbit by a small offset (orbit error, a phase ramp).

Phase convention (as SNAP): an SLC pixel has phase ``-4 pi R / wavelength``; the interferogram
``reference * conj(secondary)`` therefore has phase ``4 pi (R_secondary - R_reference) / wavelength``,
and a line-of-sight range increase ``dR`` between the two dates adds ``4 pi dR / wavelength``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from affine import Affine
from scipy import ndimage

EARTH_RADIUS = 6_371_008.8  # mean Earth radius, m
C_BAND_WAVELENGTH = 0.055465763  # Sentinel-1, m


@dataclass(frozen=True)
class Orbit:
    """Satellite offset from the reference track (metres), drifting linearly along track.

    ``cross`` is positive towards the look direction, ``vertical`` upwards; ``*_rate`` are metres
    per metre of along-track distance from the scene reference point.
    """

    cross: float = 0.0
    vertical: float = 0.0
    cross_rate: float = 0.0
    vertical_rate: float = 0.0

    def offsets(self, s):
        return self.cross + self.cross_rate * s, self.vertical + self.vertical_rate * s

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Orbit:
        return cls(**d)


@dataclass(frozen=True)
class SarGeometry:
    """Radar grid and imaging geometry of a stack (all acquisitions share it)."""

    lon0: float
    lat0: float
    heading_deg: float = 190.0
    incidence_deg: float = 38.0
    altitude: float = 693_000.0
    wavelength: float = C_BAND_WAVELENGTH
    azimuth_spacing: float = 13.9  # m per line
    range_spacing: float = 2.33  # m per sample, slant range
    first_line_s: float = 0.0  # along-track position of line 0 (m, from the reference point)
    near_range: float = 0.0  # slant range of sample 0 (m)
    lines: int = 0
    samples: int = 0
    extra: dict = field(default_factory=dict)

    # -- frames ---------------------------------------------------------------------------
    @property
    def along(self) -> np.ndarray:
        h = math.radians(self.heading_deg)
        return np.array([math.sin(h), math.cos(h)])

    @property
    def right(self) -> np.ndarray:
        h = math.radians(self.heading_deg)
        return np.array([math.cos(h), -math.sin(h)])

    @property
    def x_sat(self) -> float:
        return -self.altitude * math.tan(math.radians(self.incidence_deg))

    def to_enu(self, lon, lat):
        """Local east/north (m) of lon/lat (degrees) around the reference point."""
        k = math.pi / 180.0 * EARTH_RADIUS
        east = (np.asarray(lon) - self.lon0) * k * math.cos(math.radians(self.lat0))
        north = (np.asarray(lat) - self.lat0) * k
        return east, north

    def from_enu(self, east, north):
        k = math.pi / 180.0 * EARTH_RADIUS
        lon = self.lon0 + np.asarray(east) / (k * math.cos(math.radians(self.lat0)))
        lat = self.lat0 + np.asarray(north) / k
        return lon, lat

    def along_cross(self, lon, lat):
        e, n = self.to_enu(lon, lat)
        a, r = self.along, self.right
        return e * a[0] + n * a[1], e * r[0] + n * r[1]

    # -- ranges and radar coordinates ------------------------------------------------------
    def slant_range(self, lon, lat, height, orbit: Orbit | None = None):
        s, x = self.along_cross(lon, lat)
        dx, dz = (0.0, 0.0) if orbit is None else orbit.offsets(s)
        return np.hypot(x - (self.x_sat + dx), (self.altitude + dz) - np.asarray(height))

    def ground_to_radar(self, lon, lat, height, orbit: Orbit | None = None):
        """(line, sample) on this geometry's radar grid, as float arrays."""
        s, _ = self.along_cross(lon, lat)
        rng = self.slant_range(lon, lat, height, orbit)
        return (s - self.first_line_s) / self.azimuth_spacing, (
            rng - self.near_range
        ) / self.range_spacing

    def look_vector(self, lon, lat, height):
        """Unit vector ground -> satellite in (east, north, up), arrays of shape (..., 3)."""
        _, x = self.along_cross(lon, lat)
        dx = self.x_sat - x
        dz = self.altitude - np.asarray(height)
        norm = np.hypot(dx, dz)
        horiz = dx / norm
        r = self.right
        return np.stack([horiz * r[0], horiz * r[1], dz / norm], axis=-1)

    def incidence(self, lon, lat, height):
        """Incidence angle (radians) on the flat ellipsoid at each point."""
        _, x = self.along_cross(lon, lat)
        return np.arctan2(x - self.x_sat, self.altitude - np.asarray(height))

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SarGeometry:
        return cls(**d)

    def fit_grid(self, lon, lat, height, margin: int = 4) -> SarGeometry:
        """A copy whose radar grid just covers the given ground points (plus a margin)."""
        s, _ = self.along_cross(lon, lat)
        rng = self.slant_range(lon, lat, height)
        first = float(np.min(s)) - margin * self.azimuth_spacing
        near = float(np.min(rng)) - margin * self.range_spacing
        lines = int(math.ceil((float(np.max(s)) - first) / self.azimuth_spacing)) + margin + 1
        samples = int(math.ceil((float(np.max(rng)) - near) / self.range_spacing)) + margin + 1
        d = self.to_dict()
        d.update(first_line_s=first, near_range=near, lines=lines, samples=samples)
        return SarGeometry.from_dict(d)


LAYOVER_TOLERANCE_SAMPLES = 1.0  # range overlap (slant-range samples) that counts as layover


def passive_layover(line, sample, cross, tolerance: float = LAYOVER_TOLERANCE_SAMPLES):
    """True where a ground point shares its slant range with another point of its azimuth line.

    ``line``, ``sample``: radar coordinates of ground points (any shape); ``cross``: their
    cross-track position (m, growing away from the sensor). Along each azimuth line (points
    binned by ``floor(line)``, sorted by ``cross``) the slant range should grow; a point whose
    range is below the largest range of the points nearer the sensor, or above the smallest
    range of the points beyond it (by more than ``tolerance`` samples), is imaged together with
    them: the slope in layover and the ground before and after it that its echoes overlay.
    """
    line = np.asarray(line, np.float64)
    shape = line.shape
    b = np.floor(line).ravel().astype(np.int64)
    s = np.asarray(sample, np.float64).ravel()
    x = np.asarray(cross, np.float64).ravel()
    out = np.zeros(s.size, bool)
    if s.size < 2:
        return out.reshape(shape)
    order = np.lexsort((x, b))
    bo = b[order] - b.min()
    big = float(s.max() - s.min()) + 10.0 * tolerance + 10.0
    key = s[order] + bo * big  # later bins always above earlier ones: one pass for all bins
    same_prev = np.r_[False, bo[1:] == bo[:-1]]
    same_next = np.r_[bo[1:] == bo[:-1], False]
    run_max = np.maximum.accumulate(key)
    prev_max = np.where(same_prev, np.r_[-np.inf, run_max[:-1]], -np.inf)
    rev_min = np.minimum.accumulate(key[::-1])[::-1]
    next_min = np.where(same_next, np.r_[rev_min[1:], np.inf], np.inf)
    flag = (key < prev_max - tolerance) | (key > next_min + tolerance)
    out[order] = flag
    return out.reshape(shape)


def layover_shadow(dem: np.ndarray, transform: Affine, geometry: SarGeometry) -> np.ndarray:
    """Layover (1) / shadow (2) / neither (0) mask of a DEM on a lon/lat grid.

    Layover where the terrain slope facing the sensor exceeds the incidence angle (the slope
    is steeper than the radar wavefront) and on the ground its echoes overlay, before its foot
    and beyond its top (:func:`passive_layover`, as a range-Doppler terrain correction maps
    several ground points to one radar position there); shadow where the slope facing away
    exceeds 90 degrees minus the incidence angle.
    """
    rows, cols = np.indices(dem.shape)
    lon, lat = transform @ (cols + 0.5, rows + 0.5)
    east_m = abs(transform.a) * math.pi / 180 * EARTH_RADIUS * math.cos(math.radians(geometry.lat0))
    north_m = abs(transform.e) * math.pi / 180 * EARTH_RADIUS
    dz_dn, dz_de = np.gradient(dem.astype(np.float64), north_m, east_m)
    if transform.e < 0:  # rows go south
        dz_dn = -dz_dn
    # Ground look direction is +right (away from the sensor). A slope FACING the sensor rises
    # away from it: positive height gradient along +right.
    r = geometry.right
    slope_facing_sensor = dz_de * r[0] + dz_dn * r[1]
    angle = np.arctan(slope_facing_sensor)
    inc = geometry.incidence(lon, lat, dem)
    out = np.zeros(dem.shape, np.uint8)
    active = angle > inc
    if active.any():
        line, sample = geometry.ground_to_radar(lon, lat, dem)
        _, cross = geometry.along_cross(lon, lat)
        overlap = passive_layover(line, sample, cross) | active
        # ground overlaid by a layover slope touches it: drop isolated slivers of range overlap
        labels, _ = ndimage.label(overlap, structure=np.ones((3, 3)))
        keep = np.unique(labels[active])
        out[np.isin(labels, keep[keep > 0])] = 1
    out[active] = 1
    out[-angle > (math.pi / 2 - inc)] = 2
    return out


def output_grid(west: float, south: float, east: float, north: float, spacing: float):
    """WGS84 output grid (transform, width, height) covering a box, on SNAP's standard grid.

    SNAP's Terrain-Correction with ``alignToStandardGrid`` (microwave-toolbox
    ``CRSGeoCodingHandler``, identical at tags 10.0.0 to 14.0.0) puts the *centre* of the first
    output pixel on a multiple of the spacing: ``x0 = floor(west / spacing) * spacing``,
    ``y0 = ceil(north / spacing) * spacing``, ``width = ceil((east - x0) / spacing)``,
    ``height = ceil((y0 - south) / spacing)`` (its ``CrsGeoCoding`` takes the easting/northing
    of pixel (0, 0) at reference pixel 0.5). This function follows that convention, so a SNAP
    product on the standard grid and this grid share pixel centres exactly. The returned affine
    transform is GDAL's (upper-left *corner* of pixel (0, 0)), half a pixel up-left of ``x0, y0``.

    The simulator's truth, the embedded backend's terrain correction and the SNAP export all use
    this function, so truth rasters and interferograms share one grid pixel for pixel. A bound
    within 1e-9 pixel of a lattice point counts as on it (floating-point noise of bounds that
    were themselves computed from a grid).
    """
    eps = 1e-9
    x0 = math.floor(west / spacing + eps) * spacing
    y0 = math.ceil(north / spacing - eps) * spacing
    width = max(1, int(math.ceil((east - x0) / spacing - eps)))
    height = max(1, int(math.ceil((y0 - south) / spacing - eps)))
    half = 0.5 * spacing
    return Affine(spacing, 0.0, x0 - half, 0.0, -spacing, y0 + half), width, height
