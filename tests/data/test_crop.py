"""Landmark-based square crop: box geometry, zero padding, and landmarks that land on their pixels."""

import numpy as np
import pytest

from fercore.data.crop import crop_square, landmark_box, to_crop_coords


def test_landmark_box_is_square_enlarged_and_shifted_up():
    points = np.array([[10.0, 20.0], [50.0, 20.0], [30.0, 80.0], [20.0, 50.0]])  # w 40, h 60
    x0, y0, side = landmark_box(points)
    assert side == pytest.approx(72.0)  # 1.2 * max(40, 60)
    assert x0 + side / 2 == pytest.approx(30.0)  # centred in x
    assert y0 + side / 2 == pytest.approx(50.0 - 7.2)  # centre moved up by 0.1 * side


def test_crop_without_scaling_is_a_plain_slice():
    gray = (np.arange(60 * 80) % 251).astype(np.uint8).reshape(60, 80)
    # box edges sit on pixel edges: pixel 10 spans [9.5, 10.5]
    out = crop_square(gray, (9.5, 19.5, 20.0), size=20)
    assert out.dtype == np.uint8 and out.shape == (20, 20)
    np.testing.assert_array_equal(out, gray[20:40, 10:30])


def test_crop_outside_the_frame_is_zero_padded():
    gray = np.full((60, 80), 200, dtype=np.uint8)
    out = crop_square(gray, (-20.5, -10.5, 40.0), size=40)  # left 20 and top 10 columns/rows outside
    assert (out[:, :18] == 0).all() and (out[:8, :] == 0).all()
    assert (out[12:, 22:] == 200).all()


@pytest.mark.parametrize("box,size", [((20.3, 11.7, 30.0), 96),   # upscale
                                      ((-15.0, -8.0, 110.0), 32),  # downscale, box leaves the frame
                                      ((31.0, 18.0, 24.0), 24)])
def test_bright_pixel_lands_on_transformed_landmark(box, size):
    gray = np.zeros((60, 80), dtype=np.uint8)
    for x, y in [(35, 25), (42, 30), (45, 33)]:
        gray[:] = 0
        gray[y, x] = 255
        out = crop_square(gray, box, size)
        row, col = np.unravel_index(np.argmax(out), out.shape)
        cx, cy = to_crop_coords(np.array([x, y], dtype=float), box, size)
        assert abs(col - cx) <= 1.0 and abs(row - cy) <= 1.0, (x, y, col, row, cx, cy)


def test_to_crop_coords_keeps_shape_and_dtype():
    points = np.random.default_rng(0).uniform(0, 60, size=(3, 68, 2))
    out = to_crop_coords(points, (5.0, 5.0, 50.0), 96)
    assert out.shape == (3, 68, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out, (points - 5.0) * 96 / 50 - 0.5, rtol=1e-5)
