"""The height of a SynthFACS face: bone and soft tissue, and the relief each action unit adds.

Heights are in face units (1 unit is about 7 cm; the head is about 0.5 deep at the nose root).
Bone (skull, brow ridge, sockets, cheekbones, nose bridge) stays where the identity has it;
soft tissue (brows, lids, lips, nose wings, cheeks, chin) follows the deformed landmarks, so AUs
move it; furrows, bulges and wrinkles are relief (``crease``, ``bump``), calibrated by hand to
the FACS manual's description of each AU, so light shows them as it shows them on a face.
"""

from __future__ import annotations

import numpy as np

from fercore.data.synthfacs.face import RELIEF_PARTS, Identity
from fercore.data.synthfacs.surface import Grid, bump, crease, curve_y, smooth_curve

SIDES = (("R", -1), ("L", 1))  # the subject's right is the image left (x < 0)


def lip_polygons(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(upper lip, lower lip, mouth opening) outlines in face units, from the 68 landmarks."""
    upper = np.concatenate([smooth_curve(lm[48:55], n=4), smooth_curve(lm[[64, 63, 62, 61, 60]], n=4)])
    lower = np.concatenate([smooth_curve(lm[[54, 55, 56, 57, 58, 59, 48]], n=4),
                            smooth_curve(lm[[60, 67, 66, 65, 64]], n=4)])
    return upper, lower, smooth_curve(lm[60:68], closed=True, n=4)


def face_height(grid: Grid, ident: Identity, lm: np.ndarray, smile: np.ndarray, a,
                lips: tuple[np.ndarray, np.ndarray, np.ndarray]):
    """Height field float32 (ny, nx) of the face under AU amounts ``a(au, side)``.

    Args:
        lm: (68, 2) deformed landmarks in face units.
        smile: (68, 2) the landmarks under AU10 and AU12 alone: the nasolabial folds and cheeks
            follow the lip corners only as far as these two AUs move them.
        a: amount of an AU in [0, 1]: ``a(au)`` (mean of both sides) or ``a(au, "R")``.
        lips: (upper lip, lower lip, opening) coverage masks on the grid.
    """
    u, v = grid.u, grid.v
    depth = dict(zip(RELIEF_PARTS, ident.relief, strict=True))
    r2 = np.clip(1 - (u / 1.06) ** 2 - ((v - 0.2) / 1.5) ** 2, 0, None)
    height = 0.6 * r2 ** 0.5  # the head: the face turns away from the camera towards its sides
    _bone(height, grid, ident, depth)
    _soft_tissue(height, grid, ident, lm, a, depth, lips)
    _folds(height, grid, ident, smile, a)
    _upper_face_aus(height, grid, ident, lm, a)
    _lower_face_aus(height, grid, ident, lm, a)
    return height


def _bone(h, grid, ident: Identity, depth) -> None:
    n = ident.shape
    for eye in (n[36:42], n[42:48]):
        c = eye.mean(axis=0)
        bump(h, grid, c[0], c[1] - 0.02, 0.24, 0.16, -0.17 * depth["eye_sockets"])  # socket
        bump(h, grid, c[0] * 0.75, c[1] - 0.04, 0.1, 0.1, -0.03 * depth["eye_sockets"])  # deepest by the nose
        bump(h, grid, c[0], c[1], 0.15, 0.09, 0.07)  # the eyeball under the lids
        bump(h, grid, c[0] * 0.95, n[19, 1] - 0.02, 0.3, 0.08, 0.05 * depth["brow_ridge"])  # brow ridge
        bump(h, grid, c[0] * 1.3, c[1] + 0.3, 0.26, 0.16, 0.05 * depth["cheekbones"])  # cheekbone
        bump(h, grid, c[0] * 1.9, c[1] - 0.35, 0.15, 0.2, -0.04)  # temple
    bump(h, grid, 0.0, n[19, 1] - 0.05, 0.12, 0.1, 0.02)  # glabella
    root, tip = n[27], n[30]
    for t in np.linspace(0, 1, 6):  # the nose bridge, rising to the tip
        p = root + t * (tip - root)
        bump(h, grid, p[0], p[1], 0.065 + 0.03 * t, 0.1, (0.035 + 0.095 * t) * depth["nose"])
    bump(h, grid, tip[0], tip[1] + 0.04, 0.08, 0.065, 0.09 * depth["nose"])  # tip
    bump(h, grid, 0.0, 0.95, 0.34, 0.24, 0.06)  # the muzzle over the teeth
    bump(h, grid, 0.0, n[8, 1] - 0.16, 0.18, 0.12, 0.045 * depth["chin"])  # chin boss (moves with the jaw below)


def _soft_tissue(h, grid, ident: Identity, lm, a, depth, lips) -> None:
    _lips(h, grid, lm, a, depth["lips"], lips)
    drop = lm[8, 1] - ident.shape[8, 1]  # the jaw carries the chin
    # the chin boss; 17 pushes it up into a rounded bulge (FACS)
    bump(h, grid, 0.0, ident.shape[8, 1] - 0.16 + drop - 0.03 * a(17), 0.18, 0.12, 0.02 + 0.035 * a(17))
    for p in lm[17:27]:  # the brows' soft tissue moves with them (AU1, AU2 lift it, AU4 lowers it)
        bump(h, grid, p[0], p[1] + 0.015, 0.06, 0.045, 0.016)
    for wing in (31, 35):  # nose wings follow their landmarks (AU9, AU10 lift them)
        bump(h, grid, lm[wing, 0] * 0.9, lm[wing, 1] - 0.02, 0.065, 0.055, 0.06 * depth["nose"])
        crease(h, grid, smooth_curve(lm[wing] + np.array([[0, -0.1], [0.04 * np.sign(lm[wing, 0]), -0.04],
                                                          [0.02 * np.sign(lm[wing, 0]), 0.03]])), 0.012, 0.01)
    for nostril in (lm[[31, 32]].mean(axis=0), lm[[34, 35]].mean(axis=0)):
        bump(h, grid, nostril[0], nostril[1] + 0.0, 0.035, 0.02, -0.03)
    crease(h, grid, np.stack([lm[33] + (0, 0.05), lm[51] + (0, -0.04)]), 0.025, 0.006, bunch=1.2)  # philtrum
    for side, s in SIDES:
        eye = lm[36:42] if s < 0 else lm[[45, 44, 43, 42, 47, 46]]  # outer corner first
        lid = smooth_curve(eye[:4], n=4)
        brow = lm[19] if s < 0 else lm[24]
        hidden = np.clip((eye[1:3, 1].mean() - brow[1] - 0.09) / 0.08, 0, 1)  # a lowered brow covers the fold
        crease(h, grid, lid + (0, -0.065 + 0.03 * a(5, side)), 0.016, (0.012 + 0.004 * ident.age) * hidden,
               bunch=0.25)  # lid crease
        crease(h, grid, smooth_curve(eye[[3, 4, 5, 0]], n=4) + (0, 0.05), 0.016, 0.004 + 0.01 * ident.age, bunch=0.3)
        bump(h, grid, s * 0.45, 0.42 - 0.08 * a(6, side), 0.2, 0.13, 0.02 + 0.065 * a(6, side))  # cheek (6)


def _lips(h, grid, lm, a, full: float, masks) -> None:
    """Lips as shaped volumes, not plateaus: the upper lip slopes back from its border to the mouth line
    (it faces down, so it is the darker lip), the lower lip bulges and rolls under towards the chin (lit
    on top, a shadow below). Pressed (24), tightened (23) or stretched (20) lips flatten; 17 pushes the
    lower lip up and out."""
    upper, lower, opening = masks
    sl = grid.window(0.5 * (lm[48, 0] + lm[54, 0]), 0.5 * (lm[51, 1] + lm[57, 1]), 0.6, 0.4)
    u, v = grid.u[sl], grid.v[sl]
    top = curve_y(smooth_curve(lm[48:55], n=4), u)
    line_up = curve_y(smooth_curve(lm[60:65], n=4), u)
    line_low = curve_y(smooth_curve(lm[[64, 65, 66, 67, 60]], n=4), u)
    bottom = curve_y(smooth_curve(lm[[54, 55, 56, 57, 58, 59, 48]], n=4), u)
    t = np.clip((v - top) / np.maximum(line_up - top, 0.01), 0, 1)  # 0 at the upper border, 1 at the line
    s = np.clip((v - line_low) / np.maximum(bottom - line_low, 0.01), 0, 1)  # 0 at the line, 1 at the lower border
    flat = 1 - 0.45 * a(23) - 0.4 * a(24) - 0.25 * a(20) - 0.2 * a(12)
    h[sl] += 0.03 * full * flat * (0.55 - 0.7 * t) * upper[sl]
    h[sl] += (0.038 * full * flat * (1 - 0.75 * s * s) + 0.02 * a(17)) * lower[sl]
    h[sl] -= 0.02 * opening[sl]  # the lips roll into the mouth (its darkness is reflectance, see features.mouth)


def _folds(h, grid, ident: Identity, smile, a) -> None:
    """Nasolabial folds from the nose wings to beyond the lip corners: age, 12 (all along), 10 (all along, its
    upper part most), 9 (upper part)."""
    for side, s in SIDES:
        wing, corner = smile[31 if s < 0 else 35], smile[48 if s < 0 else 54]
        start = wing + (s * 0.05, -0.01)
        end = corner + (s * 0.1, 0.1 - 0.06 * a(12, side))  # in a smile it ends by the lip corner
        mid = 0.5 * (start + end) + (s * 0.07, -0.02)  # an arc, convex towards the cheek that bulges over it
        fold = smooth_curve(np.stack([start, 0.5 * (start + mid) + (s * 0.015, 0), mid, end]))
        crease(h, grid, fold, 0.04, 0.004 + 0.01 * ident.age + 0.045 * a(12, side), bunch=0.6)
        # 10 and 9 deepen the upper part of the fold, 10 the rest of it too (FACS), unless a smile already has
        upper_fold = min(1.0, a(10, side) + 0.7 * a(9, side)) - 0.9 * a(12, side)
        deep = 0.05 * max(0.0, upper_fold)  # deepest by the nose wing, fading down the fold
        crease(h, grid, fold[:len(fold) // 3 + 1], 0.045, 0.5 * deep, bunch=0.5)
        crease(h, grid, fold[:len(fold) * 2 // 3], 0.045, 0.5 * deep, bunch=0.5)
        crease(h, grid, fold, 0.04, 0.025 * max(0.0, a(10, side) - 0.9 * a(12, side)), bunch=0.6)
        # the infraorbital triangle pushed up and bulging over the fold (10)
        bump(h, grid, wing[0] + s * 0.13, wing[1] + 0.02, 0.08, 0.06, 0.045 * a(10, side))
        bump(h, grid, corner[0] + s * 0.1, corner[1] - 0.16, 0.13, 0.1, 0.07 * a(12, side))  # cheek bunched by 12
        bump(h, grid, corner[0] + s * 0.015, corner[1] - 0.005, 0.025, 0.025, -0.02 * a(12, side))  # corner drawn in


def _upper_face_aus(h, grid, ident: Identity, lm, a) -> None:
    age = ident.age
    brow_top = min(lm[17:27, 1]) - 0.5 * ident.brow_width
    for k in range(3):  # forehead: 1 wrinkles the centre, 2 the sides
        y = brow_top - 0.17 - 0.1 * k
        xs = np.linspace(-0.4, 0.4, 7)
        crease(h, grid, np.stack([xs, y - 0.03 * np.cos(xs * 4)], 1), 0.026, 0.003 * age + 0.008 * a(1), bunch=0.4)
        for side, s in SIDES:  # 2+4 (fear): the lowering muscles hold the sides down, wrinkles mostly in the centre
            xs = s * np.linspace(0.47, 0.72, 4)
            crease(h, grid, np.stack([xs, y + 0.05 * (np.abs(xs) - 0.25)], 1), 0.026,
                   0.002 * age + 0.01 * a(2, side) * (1 - 0.5 * a(4, side)))
    inner_y = 0.5 * (lm[21, 1] + lm[22, 1])
    for side, s in SIDES:  # glabella (4): vertical furrows beside bunched skin between the lowered brows
        # 1+4 (the fear and sadness brow): the frontalis lifts and stretches the glabella's skin, so the furrows
        # of brows drawn together but not lowered are short and shallow (FACS)
        held = min(1.0, 1.5 * a(1, side))
        top = inner_y - 0.13 + 0.07 * held
        furrow = np.array([[0.075 * s, top], [0.06 * s, 0.5 * (top + inner_y + 0.05)], [0.05 * s, inner_y + 0.05]])
        crease(h, grid, furrow, 0.03, 0.042 * a(4, side) * (1 - 0.5 * held), bunch=0.35)
        inner = lm[21] if s < 0 else lm[22]
        lowered = a(4, side) * (1 - held)  # not when AU1 holds the inner brow up
        # the lowered brow's soft tissue pushes the eye cover fold down over the upper lid (FACS), shading it
        bump(h, grid, inner[0] + s * 0.02, inner[1] + 0.03, 0.08, 0.05, 0.045 * lowered)
        middle = lm[19] if s < 0 else lm[24]
        bump(h, grid, middle[0], middle[1] + 0.04, 0.09, 0.045, 0.02 * lowered)
    held = min(1.0, 1.5 * a(1))
    bump(h, grid, 0.0, inner_y - 0.03, 0.035, 0.08, 0.024 * a(4) * (1 - 0.6 * held))  # the bulge between the furrows
    root_line = 0.016 * a(4) * (1 - min(1.0, 1.5 * a(1))) + 0.012 * a(9)  # procerus lowering the brows (4), 9
    crease(h, grid, np.array([[-0.08, inner_y + 0.12], [0.08, inner_y + 0.12]]), 0.015, root_line)
    _nose_wrinkles(h, grid, lm, a)
    for side, s in SIDES:
        outer = lm[36] if s < 0 else lm[45]
        for ang in (-0.5, -0.15, 0.2, 0.5):  # crow's feet (6), fanning out from the outer corner
            d = np.array([s * np.cos(ang), np.sin(ang)])
            crease(h, grid, np.stack([outer + 0.07 * d, outer + 0.17 * d]), 0.01, 0.002 * age + 0.009 * a(6, side),
                   bunch=0.4)
        lid = lm[[41, 40]] if s < 0 else lm[[46, 47]]
        centre = lid.mean(axis=0)
        bump(h, grid, centre[0], centre[1] + 0.035, 0.09, 0.025, 0.018 * a(7, side))  # bulging lower lid (7)
        furrow = smooth_curve(np.stack([centre + (-s * 0.06, 0.06), centre + (s * 0.04, 0.1),
                                        centre + (s * 0.13, 0.08)]))
        crease(h, grid, furrow, 0.02, 0.002 + 0.004 * age + 0.012 * a(6, side), bunch=0.3)  # infraorbital


def _nose_wrinkles(h, grid, lm, a) -> None:
    """AU9 wrinkles the skin across the nose root and obliquely down the sides of the bridge ("bunny lines")."""
    if a(9) <= 0:
        return
    for k in range(3):  # the skin of the root and upper bridge gathered into transverse folds
        y = lm[27, 1] + 0.045 * k
        half = 0.075 + 0.01 * k
        crease(h, grid, np.array([[-half, y + 0.02], [0, y], [half, y + 0.02]]), 0.015, 0.022 * a(9), bunch=0.4)
    for side, s in SIDES:  # oblique lines down the sides of the bridge
        for k, length in enumerate((0.09, 0.12, 0.12)):
            top = np.array([s * 0.045, lm[28, 1] - 0.06 + 0.055 * k])
            crease(h, grid, np.stack([top, top + (s * length, 0.075)]), 0.015, 0.02 * a(9, side), bunch=0.3)
    bump(h, grid, 0.0, lm[28, 1] - 0.03, 0.08, 0.09, 0.02 * a(9))  # the skin bunched over the bridge
    for side, s in SIDES:  # the infraorbital triangles pulled up under the eyes, bulging below the lower lids
        bump(h, grid, s * 0.3, lm[29, 1] - 0.03, 0.11, 0.07, 0.035 * a(9, side))


def _lower_face_aus(h, grid, ident: Identity, lm, a) -> None:
    for side, s in SIDES:
        corner = lm[48] if s < 0 else lm[54]
        bump(h, grid, corner[0] + s * 0.05, corner[1], 0.025, 0.035, -0.014 * a(14, side))  # dimple (14)
        crease(h, grid, np.stack([corner + (s * 0.01, 0.01), corner + (s * 0.05, 0.17)]), 0.018,
               0.02 * a(15, side))  # corner depressor line (15)
        bump(h, grid, corner[0] + s * 0.03, corner[1] + 0.09, 0.06, 0.05, 0.02 * a(15, side))  # skin bunched below
        for k in (-1, 1):  # stretched skin beyond the corners (20)
            crease(h, grid, np.stack([corner + (s * 0.04, 0.02 * k), corner + (s * 0.16, 0.05 + 0.03 * k)]), 0.012,
                   0.007 * a(20, side))
    # Pressed (24) and tightened (23) lips: the skin bulges above the upper lip and below the lower lip (FACS)
    bulge = 0.022 * a(24) + 0.014 * a(23)
    bump(h, grid, lm[51, 0], lm[51, 1] - 0.055, 0.2, 0.035, bulge)
    bump(h, grid, lm[57, 0], lm[57, 1] + 0.055, 0.18, 0.035, bulge)
    bump(h, grid, lm[51, 0], lm[51, 1] - 0.08, 0.15, 0.05, 0.01 * a(10))  # raised upper lip (10)
    sulcus = smooth_curve(np.stack([lm[59] + (0.02, 0.06), lm[57] + (0, 0.08), lm[55] + (-0.02, 0.06)]))
    crease(h, grid, sulcus, 0.035, 0.005 + 0.005 * ident.age + 0.024 * a(17), bunch=0.3)  # mentolabial sulcus
    if a(17) > 0:  # the chin boss wrinkles like orange peel (17), the same dimples on every frame
        rng = np.random.default_rng(int(ident.texture[0] * 1e6))
        chin = lm[8] + (0, -0.16)
        for off in rng.uniform(-0.1, 0.1, (14, 2)):
            bump(h, grid, chin[0] + 1.3 * off[0], chin[1] + 0.7 * off[1], 0.013, 0.011, -0.007 * a(17))
