"""Facial action units (FACS): names, intensity codes, the emotion prototypes SynthFACS poses, AU regions.

AUs are written as ``"AU12"`` everywhere in fercore. Intensities follow CK+'s FACS files:
1-5 are FACS A-E; CK+ writes 0 for "present, intensity not coded".
"""

from __future__ import annotations

import numpy as np

# AU number -> FACS name (the AUs that occur in CK+ and in SynthFACS).
AU_NAMES: dict[int, str] = {
    1: "inner brow raiser",
    2: "outer brow raiser",
    4: "brow lowerer",
    5: "upper lid raiser",
    6: "cheek raiser",
    7: "lid tightener",
    9: "nose wrinkler",
    10: "upper lip raiser",
    11: "nasolabial deepener",
    12: "lip corner puller",
    13: "cheek puffer",
    14: "dimpler",
    15: "lip corner depressor",
    16: "lower lip depressor",
    17: "chin raiser",
    18: "lip puckerer",
    20: "lip stretcher",
    21: "neck tightener",
    23: "lip tightener",
    24: "lip pressor",
    25: "lips part",
    26: "jaw drop",
    27: "mouth stretch",
    28: "lip suck",
    31: "jaw clencher",
    34: "cheek puff",
    38: "nostril dilator",
    39: "nostril compressor",
    43: "eyes closed",
    45: "blink",
}

# The AUs that the SynthFACS renderer draws (geometry and appearance).
SYNTH_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 20, 23, 24, 25, 26, 27)

# Codes of FaceSet.aus (int8): which AUs a frame shows and how strongly.
AU_NOT_CODED = -1  # the frame has no FACS coding (e.g. onset frames of a sequence)
AU_ABSENT = 0
AU_PRESENT_UNKNOWN = 9  # present, intensity not coded (CK+ writes intensity 0)
INTENSITY_LETTERS = {1: "A", 2: "B", 3: "C", 4: "D", 5: "E"}

# CK+ emotion ids -> names (also the class order of fercore's 8-class CK+ protocol).
CKPLUS_EMOTIONS: tuple[str, ...] = (
    "neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise",
)


def au_code(au: int) -> str:
    """``12 -> "AU12"``."""
    return f"AU{int(au)}"


def au_number(code: str) -> int:
    """``"AU12" -> 12``; raises ValueError on anything else."""
    if not code.startswith("AU") or not code[2:].isdigit():
        raise ValueError(f"not an action unit code: {code!r} (expected e.g. 'AU12')")
    return int(code[2:])


def au_label(au: int) -> str:
    """``12 -> "AU12 lip corner puller"``, for plot labels."""
    return f"AU{au} {AU_NAMES.get(au, '')}".strip()


# The prototypes SynthFACS poses: the AUs that people FACS-coded in posed photographs of each emotion
# (Du, Tao & Martinez 2014, PNAS 111(15), Table 1: AUs in over 70% of subjects are "core", the others
# "optional" with the share of subjects who used them), kept to the AUs CK+ requires for its labels
# (Lucey et al. 2010, Table 2: fear needs 1+2+4, sadness 1+4+15, disgust 9 or 10). Each emotion lists:
#   "core":     always present;
#   "one_of":   exactly one AU from each inner tuple is present (surprise drops the jaw or stretches the mouth);
#   "optional": each present with probability p;
#   "defining": the AUs that make the label (CK+'s criteria); a labelled CK+ sequence was also checked to
#               look like its emotion, so these are posed at C-E, never at trace or slight.
# "unilateral" makes the whole prototype one-sided (contempt is R12A+R14A in FACS).
EMOTION_PROTOTYPES: dict[str, dict] = {
    "happy": {"core": (6, 12), "optional": {25: 0.75, 26: 0.1}, "defining": (12,)},
    "sadness": {"core": (1, 4, 15), "optional": {17: 0.65}, "defining": (1, 4, 15)},
    "surprise": {"core": (1, 2, 5), "one_of": ((26, 27),), "optional": {25: 0.8}, "defining": (1, 2)},
    "fear": {"core": (1, 2, 4, 5, 20, 25), "optional": {26: 0.33}, "defining": (1, 2, 4)},
    "anger": {"core": (4, 7, 24), "optional": {17: 0.5, 23: 0.3, 10: 0.25}, "defining": (4, 24)},
    "disgust": {"core": (9, 10, 17), "optional": {4: 0.3, 24: 0.25}, "defining": (9, 10)},
    "contempt": {"core": (12, 14), "optional": {}, "unilateral": True},
}


# ---- where each AU acts: face regions from the 68 landmarks ----
# Each region is a list of convex polygons built from landmarks and offsets in units of the
# inter-ocular distance d (so regions scale with the face). The regions follow the FACS
# manual's description of where each AU changes the face (movement and wrinkles).


def _eyes(lm):
    return lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)


def _up(points, amount):
    return points - [0.0, amount]


def _box(centre, dx, dy):
    x, y = centre
    return [[x - dx, y - dy], [x + dx, y - dy], [x + dx, y + dy], [x - dx, y + dy]]


def _sides(lm, d, right):
    """A region drawn for the subject's right (image left) and mirrored on the other side."""
    left = {36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46, 31: 35, 48: 54, 49: 53, 59: 55,
            17: 26, 18: 25, 19: 24, 1: 15, 2: 14}
    mirror = {**left, **{v: k for k, v in left.items()}}

    def pick(i, dx=0.0, dy=0.0, side=1):
        j = i if side == 1 else mirror[i]
        return [lm[j, 0] - side * dx * d, lm[j, 1] + dy * d]

    return [[pick(*spec, side=s) for spec in right] for s in (1, -1)]


# CK+ codes AUs that SynthFACS does not render; those with a clear place on the face share
# the region of the AU that acts there (others, e.g. head and eye movements, have none).
_SAME_REGION = {11: 10, 13: 12, 18: 23, 28: 23, 34: 6, 38: 9, 39: 9, 43: 7, 44: 7, 45: 7}


def has_region(au: int) -> bool:
    """Whether ``au_region`` knows where AU ``au`` acts."""
    return au in SYNTH_AUS or au in _SAME_REGION


def _regions(lm: np.ndarray, au: int) -> list:
    au = _SAME_REGION.get(au, au)
    d = float(np.linalg.norm(np.subtract(*_eyes(lm))))
    if au == 1:  # inner brows, the centre of the forehead, and the stretched skin down to the upper lids
        return [np.concatenate([lm[19:25], _up(lm[19:25], 0.9 * d), lm[[38, 39, 42, 43]]])]
    if au == 2:  # outer brows, the sides of the forehead, and the upper-lid fold below them
        return _sides(lm, d, [(17,), (18,), (19,), (17, 0, -0.9), (19, 0, -0.9), (17, 0.15, 0.1), (36,), (37, 0, 0)])
    if au == 4:  # brows, the glabella between them, and the upper lids they push down
        return [np.concatenate([lm[18:26], lm[27:28], _up(lm[20:24], 0.35 * d), lm[[37, 38, 43, 44]]])]
    if au == 5:  # upper lids (the white above the iris)
        return [np.concatenate([lm[36:42], _up(lm[36:40], 0.25 * d)]),
                np.concatenate([lm[42:48], _up(lm[42:46], 0.25 * d)])]
    if au == 6:  # cheeks below the eyes and crow's feet at the outer corners
        return _sides(lm, d, [(36, 0.4, -0.15), (36, 0.45, 0.3), (41,), (40,), (39, 0, 0.1), (31, 0.15, 0), (2,), (1,)])
    if au == 7:  # lids, tightened
        return [np.concatenate([_up(lm[36:42], 0.12 * d), _up(lm[36:42], -0.15 * d)]),
                np.concatenate([_up(lm[42:48], 0.12 * d), _up(lm[42:48], -0.15 * d)])]
    if au == 9:  # nose root, bridge and sides, the infraorbital triangles, the upper lip it raises, and (FACS)
        # the medial brows it pulls down and the lower lids it pushes up
        return [np.concatenate([lm[27:36], lm[[20, 21, 22, 23, 39, 40, 41, 42, 46, 47, 49, 50, 51, 52, 53]],
                                [lm[31] - [0.2 * d, 0], lm[35] + [0.2 * d, 0]]])]
    if au == 10:  # upper lip, nostril wings, the nasolabial folds down to beyond the lip corners
        return [np.concatenate([lm[31:36], lm[48:55], [lm[31] - [0.3 * d, 0], lm[35] + [0.3 * d, 0]],
                                lm[[48, 54]] + [[-0.3 * d, 0.3 * d], [0.3 * d, 0.3 * d]]])]
    # The lip-corner AUs reshape the whole lip line (FACS: the lips are stretched, pulled or
    # bent), so their regions span both corners and the lips between them.
    if au == 12:  # lip corners pulled up and out, the lips stretched, nasolabial folds
        return [np.concatenate([lm[48:60], _box(lm[48], 0.3 * d, 0.3 * d), _box(lm[54], 0.3 * d, 0.3 * d),
                                lm[[31, 35]] + [[-0.25 * d, 0], [0.25 * d, 0]]])]
    if au == 14:  # lip corners tightened, dimples beside them
        return [np.concatenate([lm[48:60], _box(lm[48], 0.3 * d, 0.2 * d), _box(lm[54], 0.3 * d, 0.2 * d)])]
    if au == 15:  # lip corners pulled down, the lower lip bent, and below the corners
        return [np.concatenate([lm[48:60], _box(lm[48], 0.25 * d, 0.15 * d), _box(lm[54], 0.25 * d, 0.15 * d),
                                lm[[48, 54]] + [[-0.25 * d, 0.45 * d], [0.25 * d, 0.45 * d]]])]
    if au == 16:  # lower lip pulled down
        return [np.concatenate([lm[55:60], lm[65:68], lm[[48, 54]], _up(lm[55:60], -0.25 * d)])]
    if au == 17:  # chin boss pushed up, and the lower lip
        return [np.concatenate([lm[55:60], lm[6:11]])]
    if au == 20:  # lips stretched sideways
        return [np.concatenate([lm[48:60], _box(lm[48], 0.45 * d, 0.25 * d), _box(lm[54], 0.45 * d, 0.25 * d)])]
    if au in (23, 24, 25):  # the lips (tightened, pressed, parted)
        return [np.concatenate([lm[48:60], _up(lm[48:60], 0.08 * d), _up(lm[48:60], -0.08 * d)])]
    if au in (26, 27):  # mouth opening and the dropped jaw
        return [np.concatenate([lm[48:60], lm[4:13]])]
    raise KeyError(f"no face region is defined for AU{au}; regions exist for AUs "
                   f"{sorted(set(SYNTH_AUS) | set(_SAME_REGION))}")


def au_region(au: int, landmarks: np.ndarray, size: int) -> np.ndarray:
    """Where AU ``au`` acts on a face: bool (size, size) mask in the crop's pixels.

    Args:
        au: AU number, e.g. 12.
        landmarks: (68, 2) (x, y) in crop pixels (``FaceSet.landmarks``).
        size: crop side in pixels.
    """
    from PIL import Image, ImageDraw
    from scipy.spatial import ConvexHull

    lm = np.asarray(landmarks, dtype=np.float64)
    if not np.isfinite(lm).all():
        raise ValueError("AU regions need all 68 landmarks; this face has missing (NaN) landmarks")
    image = Image.new("1", (size, size), 0)
    draw = ImageDraw.Draw(image)
    for polygon in _regions(lm, au):
        points = np.asarray(polygon, dtype=np.float64)
        hull = points[ConvexHull(points).vertices]
        draw.polygon([tuple(p) for p in hull], fill=1)
    return np.asarray(image, dtype=bool)
