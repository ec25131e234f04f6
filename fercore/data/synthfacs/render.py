"""Render a SynthFACS face into a 640x490 gray camera frame, as CK+'s cameras saw its subjects.

The face is a lit surface: the height field of ``relief`` (bone, soft tissue, and the furrows and
bulges of the AUs) gives normals, a light from the scene's direction shades them, and the
reflectance of ``features`` (skin, brows, eyes, lips, teeth, hair) is multiplied in. The head is
rendered on a half-resolution grid over its box (``surface.Grid``) and resized into the frame,
which then gets the camera's blur and sensor noise.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

from fercore.data.synthfacs import features
from fercore.data.synthfacs.face import Identity, amount, deform, parse_aus
from fercore.data.synthfacs.relief import face_height, lip_polygons
from fercore.data.synthfacs.surface import Grid, ellipse, project, shade, smooth_curve

FRAME_W, FRAME_H = 640, 490


@dataclass(frozen=True)
class Pose:
    """Where the head is in the frame and how it is turned (small angles, as in CK+)."""

    cx: float = 320.0  # frame x of the face origin (between the eyes), pixels
    cy: float = 200.0  # frame y of the face origin
    scale: float = 145.0  # pixels per face unit (the face is ~2 units wide)
    roll: float = 0.0  # in-plane rotation, degrees
    yaw: float = 0.0  # turn left/right, radians
    pitch: float = 0.0  # nod, radians
    gaze: tuple[float, float] = (0.0, 0.0)  # iris offset, in fractions of the eye size


@dataclass(frozen=True)
class Scene:
    """Lighting and camera of one recording session."""

    light_angle: float = -np.pi / 2  # direction in the image the light comes from (0 = image right, -pi/2 = above)
    light: float = 0.5  # how far the light is off the camera axis, radians (0 = from the camera)
    ambient: float = 0.4  # share of light that comes from everywhere
    exposure: float = 1.0  # global gain
    blur: float = 0.6  # camera blur sigma, pixels
    noise: float = 2.0  # sensor noise sigma, gray levels
    background: np.ndarray | None = None  # (490, 640) float wall image; None: flat gray


def sample_pose(rng: np.random.Generator) -> Pose:
    """A near-frontal head filling most of the frame's height as in CK+ (the face about 280 px wide)."""
    return Pose(cx=rng.uniform(290, 350), cy=rng.uniform(195, 228), scale=rng.uniform(128, 152),
                roll=float(np.clip(rng.normal(0, 2.5), -6, 6)), yaw=float(np.clip(rng.normal(0, 0.06), -0.15, 0.15)),
                pitch=float(np.clip(rng.normal(0, 0.05), -0.1, 0.1)),
                gaze=(rng.normal(0, 0.12), rng.normal(0, 0.08)))


def sample_scene(rng: np.random.Generator, identity: Identity) -> Scene:
    """Studio light from the front, above or a little to the side; exposure, blur and noise of the camera."""
    return Scene(light_angle=float(-np.pi / 2 + rng.normal(0, 0.7)), light=rng.uniform(0.15, 0.7),
                 ambient=rng.uniform(0.3, 0.5), exposure=rng.uniform(0.9, 1.15), blur=rng.uniform(0.3, 0.9),
                 noise=rng.uniform(1.0, 3.0), background=background(rng, identity.background))


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

    jaw = deform(identity, {au: amounts[au] for au in (26, 27) if au in amounts})[8]  # the bone, not the chin (17)
    _draw_body(frame, identity, jaw, pose, scene)
    _draw_head(frame, identity, lm, amounts, pose, scene)

    rng = np.random.default_rng(seed)
    frame *= scene.exposure * 255.0
    start = rng.integers(0, _NOISE_BANK_EXTRA)
    frame += _noise_bank()[start:start + frame.size].reshape(frame.shape) * scene.noise
    image = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
    landmarks = project(lm, pose) + rng.normal(0, 0.5, (68, 2))  # tracker jitter, as in AAM landmarks
    return Rendered(image=image, landmarks=landmarks.astype(np.float32))


def _light(scene: Scene) -> np.ndarray:
    """(3,) unit vector towards the light: x right, y down, z to the camera."""
    s = np.sin(scene.light)
    return np.array([s * np.cos(scene.light_angle), s * np.sin(scene.light_angle), np.cos(scene.light)])


def _draw_body(frame: np.ndarray, ident: Identity, jaw: np.ndarray, pose: Pose, scene: Scene) -> None:
    """Neck and shoulders: large, smooth shapes drawn at frame resolution. The neck is a lit cylinder of the
    face's skin, in the shadow of the jaw (``jaw``: the chin's point on the mandible, face units) at its top."""
    img = Image.new("L", (FRAME_W, FRAME_H), 0)
    draw = ImageDraw.Draw(img)
    neck = np.array([[-0.58, 0.6], [0.58, 0.6], [0.62, 2.1], [-0.62, 2.1]])
    shirt = np.array([[-0.55, 1.95], [0.0, 2.25], [0.55, 1.95], [1.9, 2.3], [2.6, 5.0], [-2.6, 5.0], [-1.9, 2.3]])
    draw.polygon([tuple(r) for r in project(neck, pose)], fill=128)
    draw.polygon([tuple(r) for r in project(shirt, pose)], fill=255)
    mask = np.asarray(img, dtype=np.float32)
    shirt_m = (mask == 255).astype(np.float32)
    frame += shirt_m * (ident.clothes - frame)
    rows, cols = np.nonzero(mask == 128)
    if not len(rows):
        return
    (cx, _), (_, jaw_y) = project(np.array([[0.0, 1.2], jaw]), pose)
    across = np.clip((cols - cx) / (0.6 * pose.scale), -1, 1)
    light = _light(scene)
    facing = (across * light[0] + np.sqrt(1 - across ** 2) * light[2] + 0.3) / 1.3  # wrapped Lambert on a cylinder
    under_jaw = np.clip((rows - jaw_y) / (0.45 * pose.scale), 0, 1) ** 0.7  # the jaw shades the neck below it
    lit = scene.ambient + (1 - scene.ambient) * np.maximum(facing, 0)
    frame[rows, cols] = ident.skin * lit * (0.4 + 0.5 * under_jaw)


def _draw_head(frame, ident: Identity, lm: np.ndarray, amounts, pose: Pose, scene: Scene) -> None:
    """Light the face's surface, paint its features, and lay the head over the frame."""
    corners = project(np.array([[-1.45, -1.75], [1.45, -1.75], [1.45, 1.9], [-1.45, 1.9]]), pose)
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int), (FRAME_W, FRAME_H))
    grid = Grid((x0, y0, (x1 - x0) // 2 * 2, (y1 - y0) // 2 * 2), pose)
    a = lambda au, side="both": amount(amounts, au, side)  # noqa: E731
    lip_shapes = lip_polygons(lm)
    lip_masks = tuple(grid.mask([p], blur=blur) for p, blur in zip(lip_shapes, (0.006, 0.012, 0.006), strict=True))
    smile = deform(ident, {au: amounts[au] for au in (10, 12) if au in amounts})
    height = face_height(grid, ident, lm, smile, a, tuple(grid.mask([p], blur=0.02) for p in lip_shapes))
    light = _light(scene)
    sheen = 0.03 + 0.04 * np.exp(-((grid.v + 0.5) / 0.4) ** 2) + 0.02 * np.exp(-(grid.u / 0.08) ** 2)
    sheen = sheen + 0.1 * lip_masks[1]  # the moist lower lip
    diffuse, specular = shade(height, grid, light, scene.ambient, sheen)

    albedo = features.skin(grid, ident, lm)
    features.brows(albedo, grid, ident, lm, a)
    features.nostrils(albedo, grid, lm, a)
    features.lips(albedo, grid, ident, lip_masks, a)
    glint = np.zeros(grid.shape, np.float32)
    features.eyes(albedo, glint, grid, ident, lm, pose)
    features.mouth(albedo, glint, grid, ident, lm, lip_masks, a)
    face_color = albedo * diffuse + specular + glint

    outline = np.concatenate([smooth_curve(lm[0:17]), ellipse((0, 0.02), lm[16, 0], 1.02, 20, 0, -np.pi)[1:-1]])
    ear_x = abs(lm[0, 0]) + 0.03
    ears = [ellipse((side * ear_x, 0.22), 0.1, 0.24, 16) for side in (-1, 1)]
    face = grid.mask([outline], blur=0.008)
    ear = np.clip(grid.mask(ears, blur=0.008) - face, 0, 1)
    behind, fringe, hair_albedo = features.hair(grid, ident)
    rx = 1.02 + ident.hair_volume
    hair_height = 0.6 * np.sqrt(np.clip(1 - (grid.u / rx) ** 2 - ((grid.v + 0.3) / (1.3 + rx)) ** 2, 0, None))
    hair_light, _ = shade(hair_height, grid, light, scene.ambient + 0.1, occlusion=0)
    concha = np.exp(-((np.abs(grid.u) - ear_x + 0.01) / 0.045) ** 2 - ((grid.v - 0.25) / 0.11) ** 2)  # the ear's bowl
    ear_color = ident.skin * (0.45 + 0.4 * hair_light) * (1 - 0.35 * concha)
    near_face = gaussian_filter(face, 0.06 * grid.per_unit)  # hair behind the head is in its shadow near the face
    color = hair_albedo * hair_light * (1 - 0.45 * near_face * (1 - face))
    color = color + (ear_color - color) * ear
    color = color + (face_color - color) * face * (1 - fringe)
    cover = np.clip(np.maximum(np.maximum(behind, face), ear), 0, 1)
    # The camera's blur, on the grid (the wall and the body are smooth already).
    color, cover = (gaussian_filter(f, scene.blur / 2, truncate=3.0) for f in (color * cover, cover))
    out = frame[grid.y0:grid.y0 + grid.h, grid.x0:grid.x0 + grid.w]  # a view: painted in place
    out += grid.upsample(color) - out * grid.upsample(cover)


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
