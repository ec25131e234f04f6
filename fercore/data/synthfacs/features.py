"""What a SynthFACS face is made of besides skin: eyes, brows, lips, teeth, nostrils and hair.

Each function paints reflectance (albedo, 0-1) on the head's grid (``surface.Grid``) from the
deformed landmarks; ``render`` then lights it with the shading of the height field. Shapes
are in face units and follow the 68 landmarks, so every AU that moves a landmark moves them.
"""

from __future__ import annotations

import numpy as np

from fercore.data.synthfacs.face import Identity
from fercore.data.synthfacs.surface import Grid, curve_y, ellipse, line, sample_texture, smooth_curve

SCLERA = 0.78  # reflectance of the white of the eye
TEETH = 0.9


def skin(grid: Grid, ident: Identity, lm: np.ndarray) -> np.ndarray:
    """Skin reflectance (ny, nx): tone, blotches, beard shadow (pores are finer than the grid)."""
    u, v = grid.u, grid.v
    albedo = ident.skin * (1 + 0.06 * sample_texture("blotch", u, v, 60, ident.texture[0]))
    for eye in (ident.shape[36:42], ident.shape[42:48]):  # thin, darker skin around the eyes
        c = eye.mean(axis=0)
        sl = grid.window(c[0], c[1], 0.4, 0.3)
        r2 = ((u[sl] - c[0]) / 0.17) ** 2 + ((v[sl] - c[1] + 0.02) / 0.11) ** 2
        albedo[sl] *= 1 - ident.eye_shadow * np.exp(-r2)
    if ident.stubble:
        below_nose = np.clip((v - lm[33, 1] - 0.02) / 0.12, 0, 1)
        beard = np.clip((v - lm[1, 1] - 0.35 + 1.2 * (np.abs(u) - 0.25)) / 0.3, 0, 1) * below_nose
        grain = 0.85 + 0.15 * sample_texture("pores", u, v, 150, ident.texture[1])
        albedo *= 1 - 0.25 * ident.stubble * beard * grain
    return albedo


def brows(albedo: np.ndarray, grid: Grid, ident: Identity, lm: np.ndarray, a) -> None:
    """Brow hair: thin at the tail, full at the rounded head, with a feathered edge; denser and fuller at the
    head where AU4 bunches it."""
    bands = []
    for side, brow in ((-1, lm[17:22]), (1, lm[22:27][::-1])):
        curve = smooth_curve(brow, n=5)  # outer -> inner
        s = np.linspace(0, 1, len(curve))[:, None]
        bunch = 1 + 0.35 * a(4, "R" if side < 0 else "L") * s ** 2
        half = 0.5 * ident.brow_width * (0.35 + 0.65 * s ** 0.5) * bunch
        head = curve[-1] + half[-1, 0] * ellipse((0, 0), 1.0, 1.0, 9, -np.pi / 2, np.pi / 2) * (-side, 1)
        bands.append(np.concatenate([curve - (0, 1) * half, head[::-1] if side > 0 else head,
                                     (curve + (0, 1) * half)[::-1]]))
    cover = grid.mask(bands, blur=0.014)
    sl = grid.window(0.5 * (lm[17, 0] + lm[26, 0]), float(lm[17:27, 1].mean()), 0.9, 0.2)
    u, v = grid.u[sl], grid.v[sl]
    hair = 0.93 + 0.07 * sample_texture("strands", u * 0.3 + v, v * 0.2 - u, 120, ident.texture[2])
    albedo[sl] *= 1 - np.clip(ident.brow_tone * (1 + 0.2 * a(4)) * hair, 0, 0.95) * np.clip(cover[sl], 0, 1)


def eyes(albedo: np.ndarray, glint: np.ndarray, grid: Grid, ident: Identity, lm: np.ndarray, pose) -> None:
    """Eyeballs in the lid openings: sclera, iris (fixed in the head, so a raised lid bares white above it),
    pupil, the shadow of the upper lid and lashes, and a catchlight in ``glint``."""
    for eye, rest in ((lm[36:42], ident.shape[36:42]), (lm[42:48], ident.shape[42:48])):
        opening = smooth_curve(eye, closed=True, n=4)
        cover = grid.mask([opening])
        width = abs(eye[3, 0] - eye[0, 0])
        centre = (0.5 * (eye[0, 0] + eye[3, 0]) + pose.gaze[0] * 0.2 * width,
                  rest[:, 1].mean() - 0.006 + pose.gaze[1] * 0.05)
        sl = grid.window(centre[0], centre[1], 0.7 * width, 0.5 * width)
        u, v = grid.u[sl], grid.v[sl]
        r = np.sqrt((u - centre[0]) ** 2 + (v - centre[1]) ** 2) / (0.21 * width)  # 1 at the limbus
        ball = SCLERA * (1 - 0.35 * np.clip(np.abs(u - centre[0]) / (0.5 * width), 0, 1) ** 2)
        iris = ident.iris * (1 - 0.5 * np.clip((r - 0.7) / 0.3, 0, 1)) * (0.85 + 0.15 * np.cos(r * 9))
        value = np.where(r < 1, iris, ball)
        value = np.where(r < 0.38, 0.03, value)
        upper = smooth_curve(eye[:4], n=4)
        # The upper lid and its lashes shade the eyeball below them; a lid raised above its rest (5) is drawn
        # back into the socket, so its shadow is narrower and the white bared above the iris is lit.
        raised = np.clip((rest[1:3, 1].mean() - eye[1:3, 1].mean()) / 0.06, 0, 1)
        below_lid = np.clip((v - curve_y(upper, u)) / ((0.3 - 0.18 * raised) * width), 0, 1)
        value *= 0.45 + 0.15 * raised + (0.55 - 0.15 * raised) * below_lid ** 0.5
        c = cover[sl]
        albedo[sl] += (value - albedo[sl]) * c
        glint[sl] += 0.5 * c * np.exp(-((u - centre[0] - 0.05 * width) ** 2 + (v - centre[1] + 0.06 * width) ** 2)
                                      / (0.035 * width) ** 2)
        lashes = np.zeros(albedo.shape, np.float32)
        line(lashes, grid, upper, 0.016, 0.85)
        line(lashes, grid, smooth_curve(eye[[3, 4, 5, 0]], n=4), 0.008, 0.3)
        albedo *= 1 - np.clip(lashes, 0, 0.9)


def lips(albedo: np.ndarray, grid: Grid, ident: Identity, masks, a) -> None:
    """Red of the lips, in gray a little darker than the skin: the upper lip darker than the lower, whose
    lower border fades into the skin; pressed or tightened lips blanch a little."""
    upper, lower, _ = masks
    tone = ident.lip + (1 - ident.lip) * 0.15 * max(a(23), a(24))
    sl = grid.window(0.0, 0.95, 0.7, 0.6)
    cover = np.clip(1.15 * upper[sl] + lower[sl], 0, 1.15)
    texture = 1 + 0.04 * sample_texture("strands", grid.v[sl] * 3, grid.u[sl] * 0.3, 250, ident.texture[3])
    albedo[sl] *= 1 - (1 - tone * texture) * cover


def mouth(albedo: np.ndarray, glint: np.ndarray, grid: Grid, ident: Identity, lm: np.ndarray, masks, a) -> None:
    """Inside the lips: the teeth where the jaws hold them, a dark mouth and the tongue; wet enamel catches
    the light (``glint``).

    The upper teeth are fixed to the skull: their edge sits just below the resting line between the lips,
    so parted lips (25) show their edge, a raised upper lip (10, 12) shows more of them, and a dropped jaw
    (26, 27) opens a dark mouth below them. The lower teeth move with the jaw, behind the lower lip, which
    covers them unless it is pulled down (16, 20) or parted from them (25).
    """
    _, _, opening = masks
    upper_lip = smooth_curve(lm[60:65], n=4)
    pressed = max(a(23), a(24), 0.6 * a(17), 0.5 * a(12))  # lips pressed or stretched together: a deeper line
    line(albedo, grid, upper_lip, 0.012 + 0.004 * pressed, -0.3 - 0.3 * pressed)  # the line between closed lips
    if opening.max() < 0.02:
        return
    rest = ident.shape
    sl = grid.window(lm[62, 0], 0.5 * (lm[62, 1] + lm[66, 1]), 0.5, 0.35)
    u, v = grid.u[sl], grid.v[sl]
    edge = curve_y(smooth_curve(rest[60:65], n=4), u) + 0.02  # the upper incisors' edge
    jaw = lm[8, 1] - rest[8, 1]  # how far the jaw (and the lower teeth) dropped
    centre, half = 0.5 * (rest[60, 0] + rest[64, 0]), 0.5 * abs(rest[64, 0] - rest[60, 0])
    across = np.clip(np.abs(u - centre) / half, 0, 1)
    gaps = 1 - 0.1 * np.exp(-(((u - centre) / 0.11 - np.round((u - centre) / 0.11)) / 0.07) ** 2)
    teeth = TEETH * gaps * (1 - 0.8 * across ** 2)  # the arch turns away: darker towards the corners
    upper_teeth = np.clip((edge - v) / 0.008, 0, 1) * np.clip((v - edge + 0.17) / 0.01, 0, 1)
    lower_teeth = np.clip((v - edge - jaw + 0.005) / 0.008, 0, 1) * np.clip((edge + jaw + 0.13 - v) / 0.01, 0, 1)
    gum = np.clip((edge - 0.13 - v) / 0.01, 0, 1)  # a lip raised far (10) bares the gum above the teeth
    top = curve_y(upper_lip, u)
    shade = 0.65 + 0.35 * np.clip((v - top) / 0.05, 0, 1)  # the upper lip shades what is just below it
    cavity = 0.04 + 0.12 * np.clip((v - edge - 0.12) / 0.15, 0, 1)  # the tongue at the bottom
    value = cavity + (0.45 - cavity) * gum
    value = value + (teeth * shade - value) * upper_teeth
    value = value + (0.85 * teeth * shade - value) * lower_teeth * (1 - upper_teeth)
    c = opening[sl]
    albedo[sl] += (value - albedo[sl]) * c
    glint[sl] += 0.12 * c * np.maximum(upper_teeth, lower_teeth) * (1 - across ** 2)


def nostrils(albedo: np.ndarray, grid: Grid, lm: np.ndarray, a) -> None:
    """Dark nostrils under the tip, flared by AU9 / AU10 (through the wings' landmarks)."""
    holes = []
    for wing, inner in ((31, 32), (35, 34)):
        c = 0.5 * (lm[wing] + lm[inner]) + (0, -0.014)
        tilt = 0.35 * np.sign(lm[wing, 0])  # seen from the front, each nostril points up towards the tip
        oval = ellipse((0, 0), 0.05 + 0.008 * max(a(9), a(10)), 0.019 + 0.012 * max(a(9), a(10)), 16)
        holes.append(c + oval @ np.array([[np.cos(tilt), np.sin(tilt)], [-np.sin(tilt), np.cos(tilt)]]))
    albedo *= 1 - 0.6 * grid.mask(holes, blur=0.012)


def hair(grid: Grid, ident: Identity) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hair: (coverage behind and around the head, fringe coverage over the forehead, reflectance)."""
    vol = ident.hair_volume
    rx = 1.02 + vol
    top = ellipse((0, -0.3), rx, 1.25 + vol, 40, np.pi, np.pi * 2)
    length = max(ident.hair_length, 0.05)
    behind = grid.mask([np.concatenate([[[-0.9 * rx, length]], top, [[0.9 * rx, length]]])], blur=0.01)
    curve, parting = ident.hairline_shape
    u, v = grid.u, grid.v
    strands = sample_texture("strands", u, v, 150, ident.texture[2])
    ragged = 0.02 * sample_texture("blotch", u * 3, v * 0.2, 60, ident.texture[2])  # a hairline is not a ruled line
    fringe = np.clip((ident.hairline + curve * u ** 2 + parting * u + ragged - v) / 0.04, 0, 1)
    return behind, fringe, ident.hair * (1 + 0.2 * strands)
