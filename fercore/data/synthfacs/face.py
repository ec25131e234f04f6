"""SynthFACS face model: identities, the 68 landmarks, and how each action unit moves them.

Coordinates are "face units": x to the image right, y down, origin between the eyes, and
the face about 2 units wide. The subject's right side (FACS "R") is the image left (x < 0).
An AU acts with an amount in [0, 1] per side (intensity / 5), so unilateral AUs such as
contempt's R12+R14 move one side only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fercore.facs import SYNTH_AUS

# ---- the 68-point template (iBUG / CK+ order), neutral face, face units ----

_JAW_R = np.array([[-0.97, 0.02], [-0.96, 0.22], [-0.94, 0.42], [-0.90, 0.62], [-0.83, 0.82],
                   [-0.71, 1.02], [-0.55, 1.20], [-0.30, 1.36], [0.0, 1.43]])
_JAW = np.concatenate([_JAW_R, _JAW_R[7::-1] * (-1, 1)])
_BROW_R = np.array([[-0.72, -0.17], [-0.61, -0.245], [-0.48, -0.275], [-0.34, -0.265], [-0.20, -0.225]])
_NOSE = np.array([[0, 0.0], [0, 0.17], [0, 0.33], [0, 0.50],
                  [-0.17, 0.58], [-0.09, 0.61], [0, 0.63], [0.09, 0.61], [0.17, 0.58]])
_EYE_R = np.array([[-0.63, 0.01], [-0.53, -0.07], [-0.36, -0.072], [-0.25, 0.0], [-0.36, 0.058], [-0.53, 0.055]])
_MOUTH = np.array([
    [-0.36, 0.92], [-0.24, 0.865], [-0.10, 0.825], [0, 0.845], [0.10, 0.825], [0.24, 0.865], [0.36, 0.92],  # 48-54
    [0.24, 1.00], [0.11, 1.04], [0, 1.05], [-0.11, 1.04], [-0.24, 1.00],  # 55-59
    [-0.31, 0.92], [-0.10, 0.912], [0, 0.915], [0.10, 0.912], [0.31, 0.92],  # 60-64
    [0.10, 0.916], [0, 0.919], [-0.10, 0.916],  # 65-67
])


def _mirror_x(points):
    return points * np.array([-1.0, 1.0])


TEMPLATE = np.concatenate([
    _JAW,
    _BROW_R, _mirror_x(_BROW_R)[::-1],
    _NOSE,
    _EYE_R, _mirror_x(_EYE_R)[[3, 2, 1, 0, 5, 4]],
    _MOUTH,
]).astype(np.float64)
assert TEMPLATE.shape == (68, 2)

# Landmark i on the subject's right mirrors MIRROR[i] on the left (central points map to themselves).
MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)
_CENTRAL = MIRROR == np.arange(68)
_RIGHT = (TEMPLATE[:, 0] < 0) & ~_CENTRAL

# ---- how each AU moves the landmarks (subject's right side; mirrored for the left) ----
# {landmark: (dx, dy)} in face units at full intensity (E). Central landmarks move by the
# mean of both sides' amounts. Magnitudes are calibrated by hand to the FACS manual's descriptions of
# each AU at E on an adult face (1 face unit is about 7 cm: e.g. AU12 E lifts the lip corners by
# about 11 mm and draws them out by about 7 mm, as far as a maximal smile moves them; AU1 E raises the inner
# brows by about 1 cm).
AU_MOTION: dict[int, dict[int, tuple[float, float]]] = {
    1: {21: (0.0, -0.14), 20: (0.0, -0.1), 19: (0.0, -0.025), 38: (0.0, -0.014), 37: (0.0, -0.005)},
    2: {17: (0.0, -0.13), 18: (0.0, -0.12), 19: (0.0, -0.04), 37: (0.0, -0.008)},
    4: {21: (0.075, 0.15), 20: (0.05, 0.115), 19: (0.028, 0.07), 18: (0.01, 0.02),
        37: (0.0, 0.022), 38: (0.0, 0.026)},
    5: {37: (0.0, -0.068), 38: (0.0, -0.066), 36: (0.0, -0.01), 39: (0.0, -0.006), 40: (0.0, 0.008),
        41: (0.0, 0.008)},
    6: {40: (0.0, -0.058), 41: (0.0, -0.064), 36: (0.0, -0.014)},
    7: {40: (0.0, -0.045), 41: (0.0, -0.045), 37: (0.0, 0.017), 38: (0.0, 0.017), 36: (0.0, -0.007)},
    9: {31: (-0.035, -0.075), 32: (-0.015, -0.06), 33: (0.0, -0.05), 30: (0.0, -0.025), 21: (0.025, 0.1),
        20: (0.01, 0.045), 50: (0.0, -0.06), 51: (0.0, -0.062), 49: (0.0, -0.035),
        40: (0.0, -0.066), 41: (0.0, -0.056), 39: (0.0, -0.014),
        36: (0.0, -0.006), 38: (0.0, 0.022), 37: (0.0, 0.012)},
    10: {50: (0.0, -0.105), 49: (-0.007, -0.077), 51: (0.0, -0.091), 61: (0.0, -0.091), 62: (0.0, -0.084),
        31: (-0.022, -0.04), 32: (-0.006, -0.028)},
    12: {48: (-0.105, -0.155), 60: (-0.09, -0.14), 49: (-0.045, -0.078), 59: (-0.045, -0.078),
         61: (-0.03, -0.047), 67: (-0.03, -0.031), 50: (-0.015, -0.006), 58: (-0.015, -0.054), 51: (0.0, 0.015),
         57: (0.0, -0.034)},
    14: {48: (0.05, -0.013), 60: (0.044, -0.013), 49: (0.017, 0.0), 59: (0.017, 0.0)},
    15: {48: (-0.028, 0.106), 60: (-0.028, 0.094), 59: (-0.01, 0.056), 49: (0.0, 0.037), 58: (0.0, 0.019),
        67: (0.0, 0.025), 61: (0.0, 0.025)},
    16: {58: (-0.014, 0.084), 57: (0.0, 0.098), 59: (-0.014, 0.056), 67: (-0.007, 0.084), 66: (0.0, 0.091)},
    17: {7: (0.0, -0.056), 8: (0.0, -0.07), 6: (0.0, -0.028), 58: (0.0, -0.062), 57: (0.0, -0.08),
        59: (0.0, -0.035), 67: (0.0, -0.05), 66: (0.0, -0.058)},
    20: {48: (-0.112, 0.019), 60: (-0.106, 0.019), 49: (-0.062, 0.012), 59: (-0.062, -0.004), 61: (-0.05, 0.0),
        67: (-0.05, 0.0), 50: (-0.019, 0.02), 58: (-0.019, -0.02), 51: (0.0, 0.018), 57: (0.0, -0.022)},
    23: {50: (0.0, 0.062), 51: (0.0, 0.062), 49: (0.0, 0.042), 58: (0.0, -0.082), 57: (0.0, -0.088),
        59: (0.0, -0.055), 48: (0.035, 0.0), 60: (0.035, 0.0)},
    24: {50: (0.0, 0.05), 51: (0.0, 0.05), 49: (0.0, 0.03), 58: (0.0, -0.06), 57: (0.0, -0.06),
        59: (0.0, -0.038), 48: (0.012, 0.0), 60: (0.012, 0.0), 61: (0.0, 0.005), 62: (0.0, 0.005),
        67: (0.0, -0.005), 66: (0.0, -0.005)},
    25: {61: (0.0, -0.035), 62: (0.0, -0.04), 67: (0.0, 0.07), 66: (0.0, 0.075), 58: (0.0, 0.05),
        57: (0.0, 0.055), 59: (0.0, 0.03), 50: (0.0, -0.01), 51: (0.0, -0.012)},
    26: {8: (0.0, 0.26), 7: (0.0, 0.247), 6: (0.0, 0.195), 5: (0.0, 0.13), 4: (0.0, 0.03),
        57: (0.0, 0.234), 58: (0.0, 0.215), 59: (0.0, 0.143), 66: (0.0, 0.234), 67: (0.0, 0.195),
        48: (0.013, 0.046), 60: (0.016, 0.046)},
    27: {8: (0.0, 0.435), 7: (0.0, 0.406), 6: (0.0, 0.319), 5: (0.0, 0.203), 4: (0.0, 0.05),
        57: (0.0, 0.406), 58: (0.0, 0.377), 59: (0.0, 0.261), 66: (0.0, 0.406), 67: (0.0, 0.362),
        48: (0.072, 0.102), 60: (0.087, 0.102), 49: (0.029, 0.0), 61: (0.014, -0.029), 62: (0.0, -0.036),
        50: (0.0, -0.014), 51: (0.0, -0.014)},
}
assert set(AU_MOTION) == set(SYNTH_AUS)


def _motion_fields() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per AU: (68, 2) displacement driven by the right-side amount, and by the left-side amount."""
    fields = {}
    for au, spec in AU_MOTION.items():
        right = np.zeros((68, 2))
        left = np.zeros((68, 2))
        for i, (dx, dy) in spec.items():
            if _CENTRAL[i]:
                right[i] += (0.5 * dx, 0.5 * dy)
                left[i] += (0.5 * dx, 0.5 * dy)
            else:
                right[i] = (dx, dy)
                left[MIRROR[i]] = (-dx, dy)
        fields[au] = (right, left)
    return fields


_FIELDS = _motion_fields()


# ---- identities ----

@dataclass(frozen=True)
class Identity:
    """Everything that makes one synthetic subject look like themselves (fixed across frames)."""

    shape: np.ndarray = field(repr=False)  # (68, 2) neutral landmarks in face units
    skin: float  # skin albedo, 0-1
    lip: float  # lip albedo relative to skin (<1 darker)
    brow_tone: float  # brow hair darkness, 0-1 (share of light absorbed)
    brow_width: float  # brow thickness, face units
    iris: float  # iris albedo
    hair: float  # hair albedo
    hairline: float  # y of the hairline at the midline
    hairline_shape: tuple[float, float]  # hairline y += a * x**2 + b * x (curvature, side parting)
    hair_volume: float  # how far the hair extends beyond the head outline
    hair_length: float  # y where the hair ends at the sides (short < 0 < shoulder length)
    age: float  # 0-1: depth of permanent folds and lines
    stubble: float  # 0-1: darker beard area
    texture: np.ndarray = field(repr=False)  # (4,) offsets into the texture banks (skin, pores, hair, lips)
    background: float  # wall brightness behind this subject
    clothes: float  # shirt brightness
    relief: np.ndarray = field(repr=False, default_factory=lambda: np.ones(6))  # (6,) depth of RELIEF_PARTS
    eye_shadow: float = 0.1  # how much darker the thin skin around the eyes is (0-1)


# Bone and soft-tissue depth that varies between people (multipliers of the mean face's relief).
RELIEF_PARTS = ("nose", "brow_ridge", "cheekbones", "eye_sockets", "lips", "chin")


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw a random identity: face shape, feature geometry, relief, tones, hair."""
    u = rng.uniform
    shape = TEMPLATE.copy()
    # Whole-face proportions.
    shape[:, 0] *= u(0.9, 1.1)
    shape[:, 1] *= u(0.93, 1.07)
    jaw = np.arange(17)
    lower = shape[jaw, 1] > 0.6
    shape[jaw[lower], 0] *= u(0.85, 1.05)  # narrow or square chin
    shape[8, 1] += u(-0.05, 0.08)
    shape[[7, 9], 1] += u(-0.03, 0.05)

    def move(idx, dx=0.0, dy=0.0, sx=1.0, sy=1.0, centre=None):
        """Move/scale a bilateral group (given by its right-side indices) symmetrically."""
        idx = np.asarray(idx)
        both = np.unique(np.concatenate([idx, MIRROR[idx]]))
        pts = shape[both]
        c = pts.mean(axis=0) if centre is None else np.asarray(centre)
        pts = c + (pts - c) * (sx, sy)
        pts[:, 1] += dy
        pts[:, 0] += np.where(pts[:, 0] < 0, -dx, dx)
        shape[both] = pts

    eye_r = np.arange(36, 42)
    eye_size = (u(0.9, 1.12), u(0.85, 1.2))
    for eye in (eye_r, MIRROR[eye_r]):  # both eyes the same size, about each eye's own centre
        c = shape[eye].mean(axis=0)
        shape[eye] = c + (shape[eye] - c) * eye_size
    move(eye_r, dx=u(-0.04, 0.04), dy=u(-0.02, 0.02))
    move(np.arange(17, 22), dx=u(-0.03, 0.03), dy=u(-0.04, 0.03), sy=u(0.7, 1.4))
    move(np.arange(27, 36), sx=u(0.85, 1.2), sy=u(0.9, 1.1), centre=(0.0, 0.0))
    mouth = np.arange(48, 68)
    move(mouth, sx=u(0.85, 1.15), dy=u(-0.04, 0.05))
    upper, lower_lip = [49, 50, 51, 52, 53], [55, 56, 57, 58, 59]
    shape[upper, 1] -= u(-0.015, 0.025)
    shape[lower_lip, 1] += u(-0.02, 0.03)
    shape += rng.normal(0, 0.005, shape.shape)  # small asymmetries

    dark_hair = rng.random() < 0.8
    return Identity(
        shape=shape, skin=u(0.38, 0.8), lip=u(0.62, 0.82), brow_tone=u(0.45, 0.8), brow_width=u(0.09, 0.14),
        iris=u(0.12, 0.45), hair=u(0.05, 0.25) if dark_hair else u(0.3, 0.5), hairline=u(-0.95, -0.62),
        hairline_shape=(u(0.1, 0.6), u(-0.15, 0.15)), hair_volume=u(0.04, 0.2),
        hair_length=float(rng.choice([u(-0.4, 0.1), u(0.3, 0.9), u(1.2, 2.0)], p=[0.5, 0.3, 0.2])),
        age=float(rng.uniform(0, 1) ** 2), stubble=float(rng.random() < 0.15) * u(0.3, 1),
        texture=rng.uniform(0, 1, 4), background=u(0.25, 0.85), clothes=u(0.1, 0.9),
        relief=rng.uniform(0.8, 1.2, len(RELIEF_PARTS)), eye_shadow=u(0.04, 0.2),
    )


# ---- AU states ----

def parse_aus(aus: dict | None) -> dict[int, tuple[float, float]]:
    """Normalise an AU spec to ``{au: (right_amount, left_amount)}`` with amounts in [0, 1].

    Keys may be ``12``, ``"AU12"``, ``"12"``, or unilateral ``"R12"`` / ``"L12"``; values are
    FACS intensities 0-5 (floats allowed, 5 = E = full amount).
    """
    out: dict[int, list[float]] = {}
    for original, intensity in (aus or {}).items():
        key = str(original).upper()
        side = None
        if key.startswith("AU"):
            key = key[2:]
        if key[:1] in ("R", "L"):
            side, key = key[0], key[1:]
        if not key.isdigit() or int(key) not in AU_MOTION:
            raise ValueError(f"SynthFACS cannot render action unit {original!r}; it renders AUs {list(AU_MOTION)} "
                             "(keys like 12, 'AU12', or unilateral 'R12' / 'L12')")
        amount = float(np.clip(float(intensity) / 5.0, 0.0, 1.0))
        r, l_ = out.get(int(key), [0.0, 0.0])
        r = max(r, amount) if side in (None, "R") else r
        l_ = max(l_, amount) if side in (None, "L") else l_
        out[int(key)] = [r, l_]
    return {au: (r, l_) for au, (r, l_) in out.items()}


def deform(identity: Identity, amounts: dict[int, tuple[float, float]]) -> np.ndarray:
    """The identity's landmarks (68, 2) under the given AU amounts (from ``parse_aus``)."""
    pts = identity.shape.copy()
    for au, (right, left) in amounts.items():
        field_r, field_l = _FIELDS[au]
        if au == 4 and (1 in amounts or 2 in amounts):
            # 1+4, 1+2+4 (FACS): the frontalis holds the brows up while AU4 draws them together, so the
            # brows are raised, drawn together and flattened rather than lowered (the fear brow).
            (r1, l1), (r2, l2) = amounts.get(1, (0.0, 0.0)), amounts.get(2, (0.0, 0.0))
            field_r, field_l = field_r.copy(), field_l.copy()
            for i, by_1, by_2 in ((21, 1.0, 0.0), (20, 1.0, 0.3), (19, 0.5, 0.7), (18, 0.0, 1.0)):  # medial -> lateral
                hold_r, hold_l = min(1.0, 1.5 * max(by_1 * r1, by_2 * r2)), min(1.0, 1.5 * max(by_1 * l1, by_2 * l2))
                field_r[i, 1] *= 1 - 0.9 * hold_r
                field_l[MIRROR[i], 1] *= 1 - 0.9 * hold_l
        if au == 2 and 4 in amounts:
            # 2+4 (the fear brow): the corrugator and depressors pull against the lateral frontalis, so the brow's
            # tail rises less than in 1+2 and the raised brow is straighter, less curved than in surprise (FACS)
            r4, l4 = amounts[4]
            field_r, field_l = field_r * (1 - 0.3 * r4), field_l * (1 - 0.3 * l4)
        pts += right * field_r + left * field_l
    if 4 in amounts and 5 in amounts:
        # 4+5 (the anger glare, FACS): the lowered brow presses down on the raised upper lid, so less of the white
        # above the iris is bared than by 5 alone; not where 1 holds the inner brow up (the fear brow)
        (r4, l4), (r5, l5) = amounts[4], amounts[5]
        r1, l1 = amounts.get(1, (0.0, 0.0))
        for i in (37, 38):
            pts[i, 1] += 0.35 * min(r4, r5) * (1 - min(1.0, 1.5 * r1)) * -_FIELDS[5][0][i, 1]
            pts[MIRROR[i], 1] += 0.35 * min(l4, l5) * (1 - min(1.0, 1.5 * l1)) * -_FIELDS[5][1][MIRROR[i], 1]
    if 1 in amounts and 2 in amounts:  # 1+2 (FACS): the whole brow rises in an arch, its middle too;
        # with 4 (the fear brow) it is drawn together and flattened instead
        (r1, l1), (r2, l2) = amounts[1], amounts[2]
        r4, l4 = amounts.get(4, (0.0, 0.0))
        for i, lift in ((18, 0.02), (19, 0.06), (20, 0.02)):
            pts[i, 1] -= lift * min(r1, r2) * (1 - r4)
            pts[MIRROR[i], 1] -= lift * min(l1, l2) * (1 - l4)
    if 20 in amounts and amounts.keys() & {25, 26, 27}:
        # 20 with parted lips (the fear mouth): the stretched lips are drawn back tight against the teeth and
        # the lower lip is pulled down off the lower teeth, a wide, flat opening.
        parted = max(sum(amounts.get(au, (0.0, 0.0))) / 2 for au in (25, 26, 27))
        (r20, l20) = amounts[20]
        for i, drop in ((57, 0.05), (66, 0.05), (58, 0.042), (67, 0.04), (59, 0.02)):
            pts[i, 1] += drop * r20 * parted if MIRROR[i] != i else drop * 0.5 * (r20 + l20) * parted
            if MIRROR[i] != i:
                pts[MIRROR[i], 1] += drop * l20 * parted
        # Lips stretched tight are straight: the opening is a wide, flat box with squared corners rather than
        # the oval of a relaxed jaw drop (the fear mouth, 20+25/26).
        for i, towards, share in ((67, 66, 0.7), (58, 57, 0.5), (61, 62, 0.6)):
            for j, k, side in ((i, towards, r20), (MIRROR[i], MIRROR[towards], l20)):
                pts[j, 1] += share * side * parted * (pts[k, 1] - pts[j, 1])
    # Lowered brows and tightened lids narrow the eyes but do not close them (no AU43/45 here): each
    # eye keeps at least a third of its opening.
    for top, bottom in (((37, 38), (41, 40)), ((43, 44), (47, 46))):
        rest = identity.shape[list(bottom), 1] - identity.shape[list(top), 1]
        gap = pts[list(bottom), 1] - pts[list(top), 1]
        short = np.maximum(rest / 3 - gap, 0)
        pts[list(top), 1] -= 0.4 * short
        pts[list(bottom), 1] += 0.6 * short
    # Inner lips never cross: the lower inner lip stays below the upper one.
    upper, lower = [61, 62, 63], [67, 66, 65]
    pts[lower, 1] = np.maximum(pts[lower, 1], pts[upper, 1] + 0.002)
    return pts


def amount(amounts: dict[int, tuple[float, float]], au: int, side: str = "both") -> float:
    """Amount of ``au`` on a side ("R", "L") or the mean of both."""
    r, l_ = amounts.get(au, (0.0, 0.0))
    return {"R": r, "L": l_}.get(side, 0.5 * (r + l_))
