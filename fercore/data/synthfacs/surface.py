"""The face as a surface: a height field sampled on a grid over the head, its normals and its light.

The grid covers the head's box in the frame at half the frame's resolution (``STEP`` pixels per
sample: the crops the networks see are about a third of the frame's resolution, so nothing they
can see is lost) and knows the face coordinates (u, v) of every sample, so relief is written in
face units: ``bump`` (a Gaussian hill or dip) and ``crease`` (a furrow along a polyline, with the
skin bunched on both sides, as a fold is). ``shade`` lights the surface from a direction with
ambient light, cavity occlusion and a soft skin highlight.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

STEP = 2  # frame pixels per grid sample
_SS = 4  # supersampling of drawn masks, per grid sample
_WRAP = 0.3  # how far diffuse light wraps past the terminator (skin scatters light under its surface)
_SLACK = 0.08  # face units: how far the affine window estimate may be off (depth under head turns)


def depth(p: np.ndarray) -> np.ndarray:
    """Rough height of face points (..., 2) (a rounded head with a nose), for small head turns."""
    x, y = p[..., 0], p[..., 1]
    z = 0.45 * np.sqrt(np.clip(1 - (x / 1.05) ** 2, 0, 1))
    return z + 0.25 * np.exp(-((x / 0.12) ** 2 + ((y - 0.4) / 0.25) ** 2))


def project(p: np.ndarray, pose) -> np.ndarray:
    """Face units (..., 2) -> frame pixels (..., 2)."""
    z = depth(p)
    x = p[..., 0] * np.cos(pose.yaw) + z * np.sin(pose.yaw)
    y = p[..., 1] * np.cos(pose.pitch) + z * np.sin(pose.pitch)
    c, s = np.cos(np.radians(pose.roll)), np.sin(np.radians(pose.roll))
    return np.stack([pose.cx + pose.scale * (c * x - s * y), pose.cy + pose.scale * (s * x + c * y)], axis=-1)


class Grid:
    """Samples every ``STEP`` pixels over the frame box (x0, y0, w, h) and their face coordinates.

    Attributes:
        u, v: float32 (ny, nx) face coordinates of each sample (inverse of ``project``, one
            fixed-point step for the depth).
        shape: (ny, nx).
    """

    def __init__(self, box: tuple[int, int, int, int], pose):
        self.x0, self.y0, self.w, self.h = box
        self.pose = pose
        self.shape = (self.h // STEP, self.w // STEP)
        yy, xx = np.mgrid[0:self.shape[0], 0:self.shape[1]].astype(np.float32)
        xx, yy = self.x0 + STEP * xx + 0.5 * (STEP - 1), self.y0 + STEP * yy + 0.5 * (STEP - 1)
        c, s = np.cos(np.radians(pose.roll)), np.sin(np.radians(pose.roll))
        dx, dy = (xx - pose.cx) / pose.scale, (yy - pose.cy) / pose.scale
        rx, ry = c * dx + s * dy, -s * dx + c * dy
        u, v = rx / np.cos(pose.yaw), ry / np.cos(pose.pitch)
        z = depth(np.stack([u, v], axis=-1))
        self.u = ((rx - z * np.sin(pose.yaw)) / np.cos(pose.yaw)).astype(np.float32)
        self.v = ((ry - z * np.sin(pose.pitch)) / np.cos(pose.pitch)).astype(np.float32)
        self.per_unit = pose.scale / STEP  # grid samples per face unit
        # Affine face units -> grid (col, row), depth taken as the face's front (for windows, not drawing).
        z0 = 0.45
        self._affine = np.array([[c * np.cos(pose.yaw), -s * np.cos(pose.pitch)],
                                 [s * np.cos(pose.yaw), c * np.cos(pose.pitch)]]) * self.per_unit
        shift = np.array([z0 * np.sin(pose.yaw), z0 * np.sin(pose.pitch)])
        self._offset = (np.array([c * shift[0] - s * shift[1], s * shift[0] + c * shift[1]]) * pose.scale
                        + (pose.cx - self.x0, pose.cy - self.y0)) / STEP

    def to_grid(self, points: np.ndarray) -> np.ndarray:
        """Approximate grid (col, row) of face points (..., 2), within ``_SLACK`` face units."""
        return np.asarray(points) @ self._affine.T + self._offset

    def window(self, cu: float, cv: float, ru: float, rv: float) -> tuple[slice, slice]:
        """Grid slices that cover the face-unit box centre (cu, cv) +- (ru, rv) (with margin)."""
        ru, rv = ru + _SLACK, rv + _SLACK
        corners = self.to_grid(np.array([[cu - ru, cv - rv], [cu + ru, cv - rv], [cu + ru, cv + rv],
                                         [cu - ru, cv + rv]]))
        (c0, r0), (c1, r1) = np.floor(corners.min(axis=0)).astype(int), np.ceil(corners.max(axis=0)).astype(int) + 1
        return slice(max(r0, 0), max(min(r1, self.shape[0]), 0)), slice(max(c0, 0), max(min(c1, self.shape[1]), 0))

    def mask(self, polygons, blur: float = 0.0) -> np.ndarray:
        """float32 (ny, nx) coverage in [0, 1] of polygons given in face units (anti-aliased, ``blur`` face units).

        Only the polygons' bounding box is drawn (supersampled), the rest stays 0.
        """
        out = np.zeros(self.shape, np.float32)
        projected = [(project(np.asarray(p, dtype=np.float64), self.pose) - (self.x0, self.y0)) / STEP
                     for p in polygons]
        if not projected:
            return out
        pad = 2 + int(3 * blur * self.per_unit)
        lo = np.floor(np.min([q.min(axis=0) for q in projected], axis=0)).astype(int) - pad
        hi = np.ceil(np.max([q.max(axis=0) for q in projected], axis=0)).astype(int) + pad
        lo = np.maximum(lo, 0)
        hi = np.minimum(hi, (self.shape[1], self.shape[0]))
        if (hi <= lo).any():
            return out
        image = Image.new("L", tuple((hi - lo) * _SS), 0)
        draw = ImageDraw.Draw(image)
        for q in projected:
            draw.polygon([tuple(r) for r in (q - lo) * _SS], fill=255)
        box = np.asarray(image.reduce(_SS), dtype=np.float32) * (1 / 255)
        if blur > 0:
            box = gaussian_filter(box, blur * self.per_unit)
        out[lo[1]:hi[1], lo[0]:hi[0]] = box
        return out

    def upsample(self, field: np.ndarray) -> np.ndarray:
        """A grid field at frame resolution, float32 (h, w) (bilinear)."""
        image = Image.fromarray(np.ascontiguousarray(field, dtype=np.float32), mode="F")
        return np.asarray(image.resize((self.w, self.h), Image.BILINEAR))


def bump(field: np.ndarray, grid: Grid, cu: float, cv: float, su: float, sv: float, amount: float,
         angle: float = 0.0) -> None:
    """Add ``amount`` * a Gaussian centred at (cu, cv) with widths (su, sv) face units, rotated by ``angle``."""
    if abs(amount) < 1e-4:
        return
    reach = 2.5 * max(su, sv)
    sl = grid.window(cu, cv, reach, reach)
    du, dv = grid.u[sl] - cu, grid.v[sl] - cv
    if angle:
        c, s = np.cos(angle), np.sin(angle)
        du, dv = c * du + s * dv, -s * du + c * dv
    field[sl] += amount * np.exp(-((du / su) ** 2 + (dv / sv) ** 2))


def _distance2(grid: Grid, points: np.ndarray, reach: float):
    """(grid slices, squared distance in face units of each sample in them to the polyline (k, 2)).

    Samples farther than ``reach`` from every segment may keep a larger (not the exact) distance.
    """
    points = np.asarray(points, dtype=np.float32)
    at = grid.to_grid(points)  # (k, 2) grid (col, row)
    pad = (reach + _SLACK) * grid.per_unit + 1
    lo = np.maximum(np.floor(at.min(axis=0) - pad).astype(int), 0)
    hi = np.minimum(np.ceil(at.max(axis=0) + pad).astype(int), (grid.shape[1], grid.shape[0]))
    sl = (slice(lo[1], max(hi[1], lo[1])), slice(lo[0], max(hi[0], lo[0])))
    d2 = np.full((sl[0].stop - sl[0].start, sl[1].stop - sl[1].start), np.inf, dtype=np.float32)
    for k in range(len(points) - 1):
        a, ab = points[k], points[k + 1] - points[k]
        s_lo = np.maximum(np.floor(np.minimum(at[k], at[k + 1]) - pad).astype(int), lo)
        s_hi = np.minimum(np.ceil(np.maximum(at[k], at[k + 1]) + pad).astype(int), hi)
        if (s_hi <= s_lo).any():
            continue
        local = (slice(s_lo[1] - lo[1], s_hi[1] - lo[1]), slice(s_lo[0] - lo[0], s_hi[0] - lo[0]))
        u, v = grid.u[s_lo[1]:s_hi[1], s_lo[0]:s_hi[0]], grid.v[s_lo[1]:s_hi[1], s_lo[0]:s_hi[0]]
        t = np.clip(((u - a[0]) * ab[0] + (v - a[1]) * ab[1]) / max(float(ab @ ab), 1e-9), 0, 1)
        np.minimum(d2[local], (u - a[0] - t * ab[0]) ** 2 + (v - a[1] - t * ab[1]) ** 2, out=d2[local])
    return sl, d2


def crease(field: np.ndarray, grid: Grid, points: np.ndarray, width: float, amount: float,
           bunch: float = 0.6) -> None:
    """A furrow ``amount`` deep and ``width`` wide along a polyline (k, 2), with bunched skin beside it.

    The profile across the line is ``-amount * g(d / width) + bunch * amount * g(d / (3 * width))``
    (g a Gaussian): a narrow groove in a broader ridge, so light catches one wall and not the other.
    """
    if amount < 1e-4:
        return
    sl, d2 = _distance2(grid, points, 3.5 * width)
    w2 = width * width
    field[sl] += amount * (bunch * np.exp(-d2 / (9 * w2)) - np.exp(-d2 / w2))


def line(field: np.ndarray, grid: Grid, points: np.ndarray, width: float, amount: float) -> None:
    """Add ``amount`` * a Gaussian profile ``width`` wide along a polyline (k, 2) (lashes, lip line)."""
    if amount < 1e-4:
        return
    sl, d2 = _distance2(grid, points, 2.5 * width)
    field[sl] += amount * np.exp(-d2 / (width * width))


@functools.cache
def texture_bank(kind: str, size: int = 256) -> np.ndarray:
    """A fixed, tileable random texture (size, size), float32 with zero mean and unit std.

    ``"blotch"``: soft skin tone variation; ``"pores"``: fine grain; ``"strands"``: hair along y.
    """
    rng = np.random.default_rng({"blotch": 1, "pores": 2, "strands": 3}[kind])
    noise = rng.standard_normal((size, size)).astype(np.float32)
    sigma = {"blotch": (10, 10), "pores": (0.8, 0.8), "strands": (9, 0.7)}[kind]
    out = gaussian_filter(noise, sigma, mode="wrap")
    return (out - out.mean()) / out.std()


def sample_texture(kind: str, u: np.ndarray, v: np.ndarray, per_unit: float, offset: float) -> np.ndarray:
    """The texture ``kind`` read at face coordinates (``per_unit`` texels per face unit), moving with the face."""
    bank = texture_bank(kind)
    n = bank.shape[0]
    shift = int(offset * n)
    i = (v * per_unit).astype(np.int32) % n
    j = (u * per_unit + shift).astype(np.int32) % n
    return bank[i, j]


def normals(height: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit normals (nx, ny, nz) of a height field in face units (x right, y down, z to the camera)."""
    gy, gx = np.gradient(height)
    gx *= grid.per_unit
    gy *= grid.per_unit
    norm = 1 / np.sqrt(gx * gx + gy * gy + 1)
    return -gx * norm, -gy * norm, norm


def shade(height: np.ndarray, grid: Grid, light: np.ndarray, ambient: float, sheen: np.ndarray | float = 0.0,
          occlusion: float = 1.0, shadows: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Diffuse light (ambient + Lambert, darkened in cavities) and a specular highlight.

    Args:
        height: float32 (ny, nx) in face units.
        light: (3,) unit vector towards the light (x right, y down, z to the camera).
        ambient: share of light that comes from everywhere.
        sheen: strength of the specular highlight (scalar or per sample).
        shadows: whether the relief casts shadows (``cast_shadow``).

    Returns:
        (diffuse, specular), float32 (ny, nx).
    """
    nx, ny, nz = normals(height, grid)
    # Light wraps a little around the terminator, as through skin (subsurface scattering) from a broad lamp.
    lambert = np.maximum((nx * light[0] + ny * light[1] + nz * light[2] + _WRAP) * (1 / (1 + _WRAP)), 0)
    if shadows:
        lambert *= cast_shadow(height, grid, light)
    diffuse = ambient + (1 - ambient) * lambert
    if occlusion:
        diffuse *= np.exp(-occlusion * 18 * np.clip(gaussian_filter(height, 0.04 * grid.per_unit) - height, 0, None))
    half = light + np.array([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    specular = np.maximum(nx * half[0] + ny * half[1] + nz * half[2], 0) ** 24 * sheen
    return diffuse.astype(np.float32), specular.astype(np.float32)


def cast_shadow(height: np.ndarray, grid: Grid, light: np.ndarray, reach: float = 0.3,
                penumbra: float = 0.012) -> np.ndarray:
    """How much of the light reaches each sample (float32 (ny, nx), 0-1): relief between a sample and the
    light (brow ridge, nose, lower lip, chin) shades it, as a real studio light leaves shadows under them.

    Marches towards the light over ``reach`` face units: a sample is shadowed by as much as any sample
    on the way rises above the ray to the light; ``penumbra`` (face units) softens the edge.
    """
    horizontal = float(np.hypot(light[0], light[1]))
    if horizontal < 1e-3:
        return np.ones(height.shape, np.float32)
    rise = light[2] / horizontal  # face units the ray climbs per face unit towards the light
    direction = np.array([light[0], light[1]]) / horizontal  # in the frame; the grid is frame-aligned
    step = 1.5  # grid samples per step
    blocked = np.zeros(height.shape, np.float32)
    ny, nx = height.shape
    for k in range(1, int(reach * grid.per_unit / step) + 1):
        dc, dr = np.round(k * step * direction).astype(int)
        if abs(dc) >= nx or abs(dr) >= ny:
            break
        above = height[max(dr, 0):ny + min(dr, 0), max(dc, 0):nx + min(dc, 0)]  # the sample k steps on
        here = blocked[max(-dr, 0):ny + min(-dr, 0), max(-dc, 0):nx + min(-dc, 0)]
        own = height[max(-dr, 0):ny + min(-dr, 0), max(-dc, 0):nx + min(-dc, 0)]
        np.maximum(here, above - own - rise * np.hypot(dc, dr) / grid.per_unit, out=here)
    return np.exp(-np.maximum(blocked, 0) / penumbra).astype(np.float32)


def curve_y(curve: np.ndarray, u: np.ndarray) -> np.ndarray:
    """y of a left-to-right curve (k, 2) at each u (clamped at its ends), float32."""
    order = np.argsort(curve[:, 0])
    return np.interp(u, curve[order, 0], curve[order, 1]).astype(np.float32)


def smooth_curve(p: np.ndarray, closed: bool = False, n: int = 3) -> np.ndarray:
    """Catmull-Rom curve through the points (k, 2), ``n`` samples per segment."""
    p = np.asarray(p, dtype=np.float64)
    return _catmull_rom_matrix(len(p), closed, n) @ p


@functools.cache
def _catmull_rom_matrix(k: int, closed: bool, n: int) -> np.ndarray:
    """(samples, k) weights that turn k control points into a Catmull-Rom curve."""
    index = np.r_[k - 1, 0:k, 0, 1] if closed else np.r_[0, 0:k, k - 1]
    t = np.linspace(0, 1, n, endpoint=False)[:, None]
    basis = 0.5 * np.concatenate([-t + 2 * t**2 - t**3, 2 - 5 * t**2 + 3 * t**3,
                                  t + 4 * t**2 - 3 * t**3, -(t**2) + t**3], axis=1)  # (n, 4)
    rows = []
    for i in range(k if closed else k - 1):
        block = np.zeros((n, k))
        for j in range(4):
            block[:, index[i + j]] += basis[:, j]
        rows.append(block)
    if not closed:
        rows.append(np.eye(k)[-1:])
    return np.concatenate(rows)


def ellipse(centre, rx: float, ry: float, n: int = 24, a0: float = 0.0, a1: float = 2 * np.pi) -> np.ndarray:
    """(n, 2) points on an ellipse arc."""
    a = np.linspace(a0, a1, n)
    return np.stack([centre[0] + rx * np.cos(a), centre[1] + ry * np.sin(a)], axis=1)
