"""Landmark-based square face crop.

Coordinates: a landmark ``(x, y)`` is in pixels of the frame with pixel ``(row, col)`` centred
on ``(col, row)`` (x is the column). A box ``(x0, y0, side)`` spans ``[x0, x0 + side]`` in the
same coordinates, so pixel ``i`` of a ``size``-wide crop is centred on ``x0 + (i + 0.5) * side / size``.
Keeping one convention for boxes, crops and landmarks is what lets landmarks carried into the
crop land on the pixels they mark.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image


def landmark_box(landmarks: np.ndarray) -> tuple[float, float, float]:
    """Square box around the 68 landmarks, 1.2x their extent and shifted up by 0.1 x side.

    The 68-point scheme stops at the eyebrows, so the shift keeps the forehead (AU1, AU2,
    AU4 wrinkles) inside the crop.

    Args:
        landmarks: (68, 2) float, (x, y) in frame pixels.

    Returns:
        (x0, y0, side): top-left corner and side length in frame pixels.
    """
    xy = np.asarray(landmarks, dtype=np.float64)
    (xmin, ymin), (xmax, ymax) = xy.min(axis=0), xy.max(axis=0)
    side = 1.2 * max(xmax - xmin, ymax - ymin)
    cx = (xmin + xmax) / 2
    cy = (ymin + ymax) / 2 - 0.1 * side
    return float(cx - side / 2), float(cy - side / 2), float(side)


def crop_square(gray: np.ndarray, box: tuple[float, float, float], size: int = 96) -> np.ndarray:
    """Cut ``box`` out of ``gray`` and resize it to ``size`` x ``size`` with antialiasing.

    Where the box leaves the frame the crop is zero (black), as if the frame were padded:
    faces near the border keep their position and scale instead of being shifted inside.
    PIL's ``resize(box=...)`` needs the box inside the image, hence the explicit padding.

    Args:
        gray: uint8 (H, W) frame.
        box: (x0, y0, side) from ``landmark_box``.
        size: output side in pixels.

    Returns:
        uint8 (size, size).
    """
    x0, y0, side = box
    if side <= 0:
        raise ValueError(f"crop box side must be positive, got {side}")
    h, w = gray.shape
    # PIL's continuous coordinates put pixel centres at +0.5; the margin of 2 px leaves the
    # bilinear filter zeros to read just outside the box.
    left, top = x0 + 0.5, y0 + 0.5
    overhang = max(-left, -top, left + side - w, top + side - h)
    pad = math.ceil(max(0.0, overhang)) + 2 if overhang > -2 else 0
    padded = np.pad(gray, pad) if pad else gray
    image = Image.fromarray(np.ascontiguousarray(padded, dtype=np.uint8))
    region = (left + pad, top + pad, left + pad + side, top + pad + side)
    return np.asarray(image.resize((size, size), Image.BILINEAR, box=region))


def to_crop_coords(landmarks: np.ndarray, box: tuple[float, float, float], size: int = 96) -> np.ndarray:
    """Map frame landmarks into the pixels of the crop made by ``crop_square(gray, box, size)``.

    Args:
        landmarks: (..., 2) (x, y) in frame pixels.
        box: (x0, y0, side) of the crop.
        size: crop side in pixels.

    Returns:
        float32 (..., 2) (x, y) in crop pixels (pixel ``i`` centred on ``i``).
    """
    x0, y0, side = box
    xy = np.asarray(landmarks, dtype=np.float64)
    return ((xy - np.array([x0, y0])) * (size / side) - 0.5).astype(np.float32)
