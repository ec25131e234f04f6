"""Rasterise a SynthFACS face into a 640x490 gray camera frame.

Shapes (face outline, eyes, brows, lips, wrinkles) are drawn with PIL at twice the
resolution and averaged down, so edges are anti-aliased; smooth fields (shading, lighting,
cheek bulges) are computed per pixel from each pixel's face coordinates. Every AU changes
the geometry (through the landmarks) and the appearance (lines, folds, bulges, teeth) where
FACS says it does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy.ndimage import gaussian_filter

from fercore.data.synthfacs.face import Identity, amount, deform, parse_aus

FRAME_W, FRAME_H = 640, 490
_SS = 2  # supersampling factor for drawn shapes


@dataclass(frozen=True)
class Pose:
    """Where the head is in the frame and how it is turned (small angles, as in CK+)."""

    cx: float = 320.0  # frame x of the face origin (between the eyes), pixels
    cy: float = 200.0  # frame y of the face origin
    scale: float = 120.0  # pixels per face unit (the face is ~2 units wide)
    roll: float = 0.0  # in-plane rotation, degrees
    yaw: float = 0.0  # turn left/right, radians
    pitch: float = 0.0  # nod, radians
    gaze: tuple[float, float] = (0.0, 0.0)  # iris offset, in fractions of the eye size


@dataclass(frozen=True)
class Scene:
    """Lighting and camera of one recording session."""

    light_angle: float = 0.0  # direction the light comes from, radians (0 = from image right)
    light: float = 0.15  # strength of the directional shading
    exposure: float = 1.0  # global gain
    blur: float = 0.8  # camera blur sigma, pixels
    noise: float = 2.0  # sensor noise sigma, gray levels
    background: np.ndarray | None = None  # (490, 640) float wall image; None: flat gray


def sample_pose(rng: np.random.Generator) -> Pose:
    return Pose(cx=rng.uniform(280, 360), cy=rng.uniform(165, 215), scale=rng.uniform(105, 135),
                roll=float(np.clip(rng.normal(0, 2.5), -6, 6)), yaw=float(np.clip(rng.normal(0, 0.07), -0.15, 0.15)),
                pitch=float(np.clip(rng.normal(0, 0.05), -0.1, 0.1)),
                gaze=(rng.normal(0, 0.15), rng.normal(0, 0.1)))


def sample_scene(rng: np.random.Generator, identity: Identity) -> Scene:
    return Scene(light_angle=rng.uniform(0, 2 * np.pi), light=rng.uniform(0.0, 0.35),
                 exposure=rng.uniform(0.85, 1.15), blur=rng.uniform(0.5, 1.4), noise=rng.uniform(1.0, 3.5),
                 background=background(rng, identity.background))


def background(rng: np.random.Generator, level: float) -> np.ndarray:
    """A wall: a brightness gradient plus a few soft blobs, (490, 640) float in [0, 1]."""
    y, x = np.mgrid[0:FRAME_H, 0:FRAME_W].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    wall = level + rng.uniform(0, 0.15) * ((x / FRAME_W - 0.5) * np.cos(angle) + (y / FRAME_H - 0.5) * np.sin(angle))
    for _ in range(rng.integers(0, 4)):
        bx, by, r = rng.uniform(0, FRAME_W), rng.uniform(0, FRAME_H), rng.uniform(40, 200)
        wall += rng.uniform(-0.12, 0.12) * np.exp(-((x - bx) ** 2 + (y - by) ** 2) / (2 * r * r))
    return wall.astype(np.float32)


_NOISE_BANK_EXTRA = 1 << 20


@functools.cache
def _noise_bank() -> np.ndarray:
    """Fixed unit Gaussian noise; each frame reads a random window (much cheaper than fresh draws)."""
    return np.random.default_rng(20151007).standard_normal(FRAME_W * FRAME_H + _NOISE_BANK_EXTRA, dtype=np.float32)


@dataclass
class Rendered:
    image: np.ndarray  # uint8 (490, 640)
    landmarks: np.ndarray  # float32 (68, 2), (x, y) frame pixels


def render_face(identity: Identity, aus: dict | None = None, pose: Pose | None = None,
                scene: Scene | None = None, seed: int = 0) -> Rendered:
    """Render one frame.

    Args:
        identity: from ``sample_identity``.
        aus: FACS intensities 0-5 by AU, e.g. ``{"AU12": 4, "AU6": 3}`` or unilateral ``{"R12": 1}``.
        pose, scene: head placement and session look; defaults are a frontal, evenly lit face.
        seed: seeds the sensor noise (everything else is given), so a frame is reproducible.

    Returns:
        ``Rendered`` with the uint8 (490, 640) frame and its 68 landmarks in frame pixels.
    """
    pose = pose or Pose()
    scene = scene or Scene(background=np.full((FRAME_H, FRAME_W), identity.background, np.float32))
    amounts = parse_aus(aus)
    lm = deform(identity, amounts)  # (68, 2) face units
    frame = scene.background.copy() if scene.background is not None else np.full((FRAME_H, FRAME_W), 0.5, np.float32)

    _draw_body(frame, identity, pose)
    _draw_head(frame, identity, lm, amounts, pose, scene)

    rng = np.random.default_rng(seed)
    frame *= scene.exposure * 255.0
    if scene.blur > 0:  # the background is smooth already: blur only where the person is
        y0, x0 = int(max(0, pose.cy - 1.8 * pose.scale)), int(max(0, pose.cx - 2.2 * pose.scale))
        x1 = int(min(FRAME_W, pose.cx + 2.2 * pose.scale))
        frame[y0:, x0:x1] = gaussian_filter(frame[y0:, x0:x1], scene.blur, mode="nearest", truncate=3.0)
    start = rng.integers(0, _NOISE_BANK_EXTRA)
    frame += _noise_bank()[start:start + frame.size].reshape(frame.shape) * scene.noise
    image = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
    landmarks = _project(lm, pose) + rng.normal(0, 0.5, (68, 2))  # tracker jitter, as in AAM landmarks
    return Rendered(image=image, landmarks=landmarks.astype(np.float32))


# ---- geometry helpers ----

def _depth(p: np.ndarray) -> np.ndarray:
    """Rough depth of face points (a cylinder with a nose), for small yaw/pitch."""
    x, y = p[..., 0], p[..., 1]
    z = 0.45 * np.sqrt(np.clip(1 - (x / 1.05) ** 2, 0, 1))
    return z + 0.3 * np.exp(-((x / 0.13) ** 2 + ((y - 0.38) / 0.28) ** 2))


def _project(p: np.ndarray, pose: Pose) -> np.ndarray:
    """Face units (..., 2) -> frame pixels (..., 2)."""
    z = _depth(p)
    x = p[..., 0] * np.cos(pose.yaw) + z * np.sin(pose.yaw)
    y = p[..., 1] * np.cos(pose.pitch) + z * np.sin(pose.pitch)
    c, s = np.cos(np.radians(pose.roll)), np.sin(np.radians(pose.roll))
    return np.stack([pose.cx + pose.scale * (c * x - s * y), pose.cy + pose.scale * (s * x + c * y)], axis=-1)


def _unproject_grid(x0: int, y0: int, w: int, h: int, pose: Pose, step: int = 1):
    """Approximate face coordinates (u, v) of a frame box's pixels, every ``step``-th one.

    Uses the affine part of the pose (depth ignored): good enough for smooth shading fields.
    """
    yy, xx = np.mgrid[y0:y0 + h:step, x0:x0 + w:step].astype(np.float32)
    xx += 0.5 * (step - 1)
    yy += 0.5 * (step - 1)
    z0 = 0.35
    dx = (xx - pose.cx) / pose.scale
    dy = (yy - pose.cy) / pose.scale
    c, s = np.cos(np.radians(pose.roll)), np.sin(np.radians(pose.roll))
    rx, ry = c * dx + s * dy, -s * dx + c * dy
    u = (rx - z0 * np.sin(pose.yaw)) / np.cos(pose.yaw)
    v = (ry - z0 * np.sin(pose.pitch)) / np.cos(pose.pitch)
    return u, v


def _smooth(p: np.ndarray, closed: bool = False, n: int = 5) -> np.ndarray:
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


def _ellipse(centre, rx, ry, n=24, a0=0.0, a1=2 * np.pi) -> np.ndarray:
    a = np.linspace(a0, a1, n)
    return np.stack([centre[0] + rx * np.cos(a), centre[1] + ry * np.sin(a)], axis=1)


def _gauss(u, v, cu, cv, su, sv):
    return np.exp(-(((u - cu) / su) ** 2 + ((v - cv) / sv) ** 2))


class _Canvas:
    """Supersampled 8-bit layers over one frame box; shapes are given in face units."""

    def __init__(self, box: tuple[int, int, int, int], pose: Pose):
        self.x0, self.y0, self.w, self.h = box
        self.pose = pose
        self.layers: dict[str, ImageDraw.ImageDraw] = {}
        self.images: dict[str, Image.Image] = {}

    def _xy(self, p):
        q = (_project(np.asarray(p, dtype=np.float64), self.pose) - (self.x0, self.y0)) * _SS
        return [tuple(r) for r in q]

    def _draw(self, name):
        if name not in self.layers:
            self.images[name] = Image.new("L", (self.w * _SS, self.h * _SS), 0)
            self.layers[name] = ImageDraw.Draw(self.images[name])
        return self.layers[name]

    def polygon(self, name, p, value=1.0):
        self._draw(name).polygon(self._xy(p), fill=int(round(255 * np.clip(value, 0, 1))))

    def line(self, name, p, width, value=1.0):
        """A polyline ``width`` face units wide."""
        if value <= 0.004:
            return
        px = max(1, int(round(width * self.pose.scale * _SS)))
        self._draw(name).line(self._xy(p), fill=int(round(255 * np.clip(value, 0, 1))), width=px, joint="curve")

    def layer(self, name, blur: float = 0.0):
        """The drawn part of a layer at frame resolution: ``(slices, alpha)`` or None if empty."""
        if name not in self.images:
            return None
        img = self.images[name].reduce(_SS)
        if blur > 0:
            img = img.filter(ImageFilter.GaussianBlur(blur))
        box = img.getbbox()
        if box is None:
            return None
        return (slice(box[1], box[3]), slice(box[0], box[2])), np.asarray(img.crop(box), np.float32) * (1 / 255)

    def full(self, name) -> np.ndarray:
        """A layer as a full-box alpha array."""
        out = np.zeros((self.h, self.w), np.float32)
        drawn = self.layer(name)
        if drawn is not None:
            out[drawn[0]] = drawn[1]
        return out


def _paint(out: np.ndarray, drawn, value, clip: np.ndarray | None = None) -> None:
    """Blend ``value`` (scalar or full-box array) into ``out`` where a layer was drawn."""
    if drawn is None:
        return
    sl, alpha = drawn
    if clip is not None:
        alpha = alpha * clip[sl]
    v = value[sl] if isinstance(value, np.ndarray) else value
    out[sl] += (v - out[sl]) * alpha


def _darken(out: np.ndarray, drawn) -> None:
    if drawn is not None:
        out[drawn[0]] *= 1 - drawn[1]


def _upsample(field: np.ndarray, w: int, h: int) -> np.ndarray:
    image = Image.fromarray(np.ascontiguousarray(field, dtype=np.float32), mode="F")
    return np.array(image.resize((w, h), Image.BILINEAR))


def _draw_body(frame: np.ndarray, ident: Identity, pose: Pose) -> None:
    """Neck and shoulders (large, smooth shapes: drawn at frame resolution)."""
    img = Image.new("L", (FRAME_W, FRAME_H), 0)
    draw = ImageDraw.Draw(img)
    neck = np.array([[-0.45, 0.6], [0.45, 0.6], [0.5, 2.1], [-0.5, 2.1]])
    shirt = np.array([[-0.55, 1.95], [0.0, 2.25], [0.55, 1.95], [1.9, 2.3], [2.6, 5.0], [-2.6, 5.0], [-1.9, 2.3]])
    draw.polygon([tuple(r) for r in _project(neck, pose)], fill=128)
    draw.polygon([tuple(r) for r in _project(shirt, pose)], fill=255)
    mask = np.asarray(img, dtype=np.float32)
    neck_m, shirt_m = (mask == 128).astype(np.float32), (mask == 255).astype(np.float32)
    frame += neck_m * (ident.skin * 0.8 - frame) + shirt_m * (ident.clothes - frame)


def _draw_head(frame, ident: Identity, lm: np.ndarray, amounts, pose: Pose, scene: Scene) -> None:
    corners = _project(np.array([[-1.4, -1.7], [1.4, -1.7], [1.4, 1.75], [-1.4, 1.75]]), pose)
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, FRAME_W), min(y1, FRAME_H)
    cv = _Canvas((x0, y0, x1 - x0, y1 - y0), pose)
    a = lambda au, side="both": amount(amounts, au, side)  # noqa: E731

    # Hair behind the head, face outline with forehead and ears.
    vol = ident.hair_volume
    rx = 1.02 + vol
    top = _ellipse((0, -0.3), rx, 1.25 + vol, 40, np.pi, np.pi * 2)
    length = max(ident.hair_length, -0.3)
    cv.polygon("hair", np.concatenate([[[-0.9 * rx, length]], top, [[0.9 * rx, length]]]))
    forehead = _ellipse((0, 0.02), lm[16, 0], 1.02, 20, 0, -np.pi)[1:-1]
    cv.polygon("face", np.concatenate([_smooth(lm[0:17]), forehead]))
    for side in (-1, 1):
        cv.polygon("face", _ellipse((side * (abs(lm[0, 0]) + 0.02), 0.22), 0.1, 0.24, 16))

    # Eyes: sclera, iris (fixed in the head, so raised lids show white above it), pupil.
    for eye in (np.arange(36, 42), np.arange(42, 48)):
        p = lm[eye]
        cv.polygon("sclera", _smooth(p, closed=True, n=4))
        width = abs(p[3, 0] - p[0, 0])
        rest = ident.shape[eye].mean(axis=0)
        centre = (0.5 * (p[0, 0] + p[3, 0]) + pose.gaze[0] * 0.2 * width, rest[1] + pose.gaze[1] * 0.05)
        cv.polygon("iris", _ellipse(centre, 0.2 * width, 0.2 * width, 20))
        cv.polygon("pupil", _ellipse(centre, 0.08 * width, 0.08 * width, 12))
        upper = _smooth(p[[0, 1, 2, 3]])
        lower = _smooth(p[[3, 4, 5, 0]])
        cv.line("ink", upper, 0.024, 0.75)
        cv.line("ink", lower, 0.009, 0.35)
        cv.line("lines", upper + (0, -0.05), 0.012, 0.25)  # lid crease

    # Brows: a tapered band, darker and bunched when lowered (AU4).
    for brow, side in ((lm[17:22], "R"), (lm[22:27][::-1], "L")):
        curve = _smooth(brow, n=4)  # outer -> inner
        t = np.linspace(0.55, 1.15, len(curve))[:, None] * ident.brow_width
        band = np.concatenate([curve - (0, 1) * t / 2, (curve + (0, 1) * t / 2)[::-1]])
        cv.polygon("ink", band, ident.brow_tone * (1 + 0.25 * a(4, side)))

    # Nose: nostrils, alar creases, bridge shadow.
    for wing, inner in ((31, 32), (35, 34)):
        c = 0.5 * (lm[wing] + lm[inner]) + (0, -0.018)
        cv.polygon("ink", _ellipse(c, 0.045, 0.019 + 0.01 * a(38), 14), 0.55)
        s = np.sign(lm[wing, 0])
        crease = lm[wing] + np.array([[0, -0.1], [0.035 * s, -0.05], [0.025 * s, 0.0], [-0.01 * s, 0.02]])
        cv.line("lines", _smooth(crease), 0.014, 0.3 + 0.2 * a(9))
    for s in (-1, 1):
        cv.line("lines", np.array([[0.07 * s, 0.05], [0.08 * s, 0.25], [0.1 * s, 0.4]]), 0.03, 0.08)

    # Mouth: lips, the opening, teeth.
    cv.polygon("lips", _smooth(lm[48:60], closed=True, n=4))
    inner = _smooth(lm[60:68], closed=True, n=4)
    cv.polygon("mouth", inner)
    opening = lm[[67, 66, 65], 1] - lm[[61, 62, 63], 1]
    if opening.max() > 0.006:
        upper_inner = _smooth(lm[60:65], n=4)
        cv.polygon("teeth", np.concatenate([upper_inner, (upper_inner + (0, 0.055))[::-1]]))
        lower_show = np.clip(a(16) + a(27) + 0.4 * a(26) + 0.3 * a(25), 0, 1)
        if lower_show > 0.05:
            lower_inner = _smooth(lm[[64, 65, 66, 67, 60]], n=4)
            cv.polygon("teeth", np.concatenate([lower_inner, (lower_inner - (0, 0.04 * lower_show))[::-1]]))
    cv.line("ink", _smooth(lm[60:65], n=4), 0.012, 0.45 + 0.25 * a(24))
    cv.line("lines", _smooth(lm[48:55], n=4), 0.01, 0.1 + 0.35 * a(23) + 0.2 * a(24))  # lip edge ridge
    cv.line("lines", _smooth(lm[[54, 55, 56, 57, 58, 59, 48]], n=4), 0.01, 0.1 + 0.35 * a(23) + 0.2 * a(24))

    _draw_lines(cv, ident, lm, a)

    # ---- compose: smooth fields at half resolution, shapes at full ----
    u, v = _unproject_grid(cv.x0, cv.y0, cv.w, cv.h, pose, step=2)
    shade = 1 - 0.3 * np.clip(np.abs(u), 0, 1) ** 4
    shade += scene.light * 0.5 * (np.cos(scene.light_angle) * u + np.sin(scene.light_angle) * v / 1.4)
    shade += 0.05 * _gauss(u, v, 0, 0.3, 0.06, 0.2) - 0.08 * _gauss(u, v, 0, lm[33, 1] + 0.04, 0.14, 0.035)
    for k, side in ((-1, "R"), (1, "L")):  # cheek bulges: AU6, and AU12 pushing the cheeks up
        shade += (0.09 * a(6, side) + 0.04 * a(12, side)) * _gauss(u, v, k * 0.5, 0.36 - 0.04 * a(6, side), 0.17, 0.12)
    skin = shade.copy()
    for fx, fy, ph, amp in ident.texture:
        skin += amp * np.sin(fx * u + fy * v + ph)
    skin *= ident.skin
    if ident.stubble:
        skin *= 1 - 0.14 * ident.stubble * np.clip((v - 0.72) / 0.1, 0, 1)
    # Lip presser bulges above and below the lips (AU24) catch the light.
    if a(24) > 0:
        skin += 0.06 * a(24) * (_gauss(u, v, 0, lm[51, 1] - 0.05, 0.25, 0.03)
                                + _gauss(u, v, 0, lm[57, 1] + 0.05, 0.22, 0.03))
    lips = skin * (1 + 0.06 * np.clip((v - lm[62, 1]) / 0.1, -1, 1))
    hair = ident.hair * (1 + 0.03 * np.sin(31 * u + 7 * v) + 0.03 * np.sin(11 * v - 5 * u))
    curve, parting = ident.hairline_shape
    fringe = np.clip((ident.hairline + curve * u ** 2 + parting * u - v) / 0.04, 0, 1)
    shade, skin, lips, hair, fringe = (_upsample(f, cv.w, cv.h) for f in (shade, skin, lips, hair, fringe))

    out = frame[cv.y0:cv.y0 + cv.h, cv.x0:cv.x0 + cv.w]  # a view: painted in place
    face = cv.full("face")
    fringe *= face
    _paint(out, cv.layer("hair"), hair)
    _paint(out, ((slice(None), slice(None)), fringe), hair)
    _paint(out, ((slice(None), slice(None)), face * (1 - fringe)), skin)
    sclera = cv.full("sclera")
    _paint(out, cv.layer("sclera"), np.minimum(ident.skin + 0.2, 0.95) * shade)
    _paint(out, cv.layer("iris"), ident.iris * shade, clip=sclera)
    _paint(out, cv.layer("pupil"), 0.05, clip=sclera)
    lip_tone = ident.lip + (1 - ident.lip) * 0.5 * max(a(23), a(24))  # pressed lips pale
    _paint(out, cv.layer("lips"), lips * lip_tone)
    mouth = cv.layer("mouth")
    _paint(out, mouth, 0.06)
    if mouth is not None:
        _paint(out, cv.layer("teeth"), 0.8 * shade, clip=cv.full("mouth"))
    _darken(out, cv.layer("ink"))
    _darken(out, cv.layer("lines", blur=0.9))


def _draw_lines(cv: _Canvas, ident: Identity, lm: np.ndarray, a) -> None:
    """Wrinkles and folds: the appearance side of the AUs."""
    age = ident.age
    brow_top = min(lm[17:27, 1]) - 0.5 * ident.brow_width
    # Forehead: AU1 wrinkles the centre, AU2 the sides.
    for k in range(3):
        y = brow_top - 0.12 - 0.085 * k
        xs = np.linspace(-0.3, 0.3, 7)
        cv.line("lines", np.stack([xs, y - 0.02 * np.cos(xs * 4)], 1), 0.014, 0.1 * age + 0.45 * a(1))
        for s, side in ((-1, "R"), (1, "L")):
            xs = s * np.linspace(0.25, 0.72, 6)
            cv.line("lines", np.stack([xs, y + 0.04 * (np.abs(xs) - 0.25)], 1), 0.014, 0.08 * age + 0.45 * a(2, side))
    # Glabella: vertical furrows between lowered brows (AU4); horizontal line at the nose root.
    inner_y = 0.5 * (lm[21, 1] + lm[22, 1])
    for s in (-1, 1):
        furrow = np.array([[0.06 * s, inner_y - 0.16], [0.05 * s, inner_y - 0.05], [0.055 * s, inner_y + 0.04]])
        cv.line("lines", furrow, 0.016, 0.55 * a(4))
    cv.line("lines", np.array([[-0.07, inner_y + 0.11], [0.07, inner_y + 0.11]]), 0.014, 0.3 * a(4) + 0.3 * a(9))
    # Nose wrinkles (AU9): lines across and beside the bridge.
    for k in range(3):
        y = lm[28, 1] - 0.07 + 0.06 * k
        cv.line("lines", np.array([[-0.1, y + 0.02], [0, y], [0.1, y + 0.02]]), 0.014, 0.55 * a(9))
    for side, sign, eye_outer, lower_lid in (("R", -1, 36, [41, 40]), ("L", 1, 45, [46, 47])):
        # Crow's feet (AU6) radiate from the outer eye corner.
        c = lm[eye_outer]
        for ang in (-0.45, 0.0, 0.45):
            d = np.array([sign * np.cos(ang), np.sin(ang)])
            cv.line("lines", np.stack([c + 0.06 * d, c + 0.17 * d]), 0.013, 0.12 * age + 0.5 * a(6, side))
        # Infraorbital furrow (AU6, AU9) and the lower-lid bulge (AU7).
        lid = lm[lower_lid]
        cv.line("lines", _smooth(np.stack([lid[1] + (-sign * 0.03, 0.05), lid[1] + (sign * 0.02, 0.085),
                                          lid[0] + (sign * 0.06, 0.08)])), 0.014,
                0.1 * age + 0.35 * a(6, side) + 0.25 * a(9, side))
        cv.line("lines", np.stack([lid[0] + (0, 0.03), lid[1] + (0, 0.03)]), 0.012, 0.45 * a(7, side))
        # Nasolabial fold: from the nose wing to past the lip corner; deepened by 10, 12, 9, 6.
        wing, corner = lm[31 if sign < 0 else 35], lm[48 if sign < 0 else 54]
        depth = 0.08 + 0.25 * age + 0.55 * max(a(10, side), 0.8 * a(12, side), 0.6 * a(9, side), 0.3 * a(6, side))
        fold = _smooth(np.stack([wing + (sign * 0.05, -0.03), wing + (sign * 0.1, 0.08),
                                 corner + (sign * 0.075, -0.01), corner + (sign * 0.06, 0.09)]))
        cv.line("lines", fold, 0.02, min(depth, 0.8))
        # Dimpler (AU14), corner depressor lines (AU15), lip stretcher folds (AU20).
        cv.line("lines", np.stack([corner + (sign * 0.045, -0.03), corner + (sign * 0.055, 0.0),
                                   corner + (sign * 0.045, 0.03)]), 0.016, 0.6 * a(14, side))
        cv.line("lines", np.stack([corner + (sign * 0.01, 0.03), corner + (sign * 0.05, 0.17)]), 0.014,
                0.45 * a(15, side))
        cv.line("lines", np.stack([corner + (sign * 0.03, 0.01), corner + (sign * 0.16, 0.06)]), 0.014,
                0.4 * a(20, side))
    # Chin raiser (AU17): mentolabial furrow and the dimpled chin boss.
    furrow = _smooth(np.stack([lm[59] + (0, 0.07), lm[57] + (0, 0.085), lm[55] + (0, 0.07)]))
    cv.line("lines", furrow, 0.018, 0.12 * age + 0.5 * a(17))
    if a(17) > 0:
        rng = np.random.default_rng(int(ident.texture[0, 2] * 1e6))  # the same dimples on every frame
        chin = lm[8] + (0, -0.16)
        for off in rng.uniform(-0.1, 0.1, (8, 2)):
            cv.polygon("lines", _ellipse(chin + off * (1.2, 0.6), 0.016, 0.012, 8), 0.35 * a(17))


def render_crop(identity: Identity, aus: dict | None = None, pose: Pose | None = None, scene: Scene | None = None,
                seed: int = 0, size: int = 96, box: tuple[float, float, float] | None = None):
    """Render a frame and cut the face out as the CK+ loader does (landmark crop).

    Args:
        box: crop box (x0, y0, side) in frame pixels; None: from this frame's landmarks, as the
            loader does. Pass the neutral face's box to compare AUs without the crop moving
            (brows and jaw move the landmarks, and with them the box).

    Returns:
        (uint8 (size, size) crop, float32 (68, 2) landmarks in crop pixels, the box used).
    """
    from fercore.data.crop import crop_square, landmark_box, to_crop_coords

    frame = render_face(identity, aus, pose, scene, seed)
    box = landmark_box(frame.landmarks) if box is None else box
    return crop_square(frame.image, box, size), to_crop_coords(frame.landmarks, box, size), box


def au_examples(identity: Identity, aus=None, intensity: float = 5, size: int = 96):
    """One face with each AU alone at ``intensity``, all cut with the neutral face's crop box.

    Returns:
        (neutral crop uint8 (size, size), {au: crop with that AU}).
    """
    from fercore.facs import SYNTH_AUS

    neutral, _, box = render_crop(identity, {}, size=size)
    return neutral, {au: render_crop(identity, {f"AU{au}": intensity}, size=size, box=box)[0]
                     for au in (aus or SYNTH_AUS)}
