"""The paper's Haar face crop: settings, retry, size band, largest face, no face -> None; CK+ with crop="haar"."""

import numpy as np
import pytest
from builders import SeqSpec, write_ckplus_tree
from facemaker import SIDE, blank_frame, face_frame
from PIL import Image

import fercore.data.haar as haar
from fercore.data.ckplus import load_ckplus
from fercore.data.ckplus_files import CKPlusFormatError
from fercore.data.crop import crop_square
from fercore.data.haar import detect_face, haar_box, load_faces
from fercore.data.synthfacs import identity_of, render_face


class FakeCascade:
    """Records the calls; answers with ``answers[minNeighbors]``."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def detectMultiScale(self, gray, **kwargs):  # noqa: N802 (OpenCV's name)
        self.calls.append(kwargs)
        return np.array(self.answers.get(kwargs["minNeighbors"], []), dtype=np.int32).reshape(-1, 4)


@pytest.fixture
def fake(monkeypatch):
    def install(answers):
        cascade = FakeCascade(answers)
        monkeypatch.setattr(haar, "_cascade", lambda: cascade)
        return cascade
    return install



def haar_crop(gray: np.ndarray, size: int = 96) -> np.ndarray | None:
    """The face the cascade finds in ``gray``, cropped and resized as the loaders do; None if none."""
    box = haar_box(gray)
    return None if box is None else crop_square(gray, box, size)

def test_paper_settings_then_retry_with_3(fake):
    cascade = fake({3: [[10, 20, 300, 300]]})
    gray = np.zeros((490, 640), dtype=np.uint8)
    assert detect_face(gray) == (10, 20, 300, 300)
    assert [c["minNeighbors"] for c in cascade.calls] == [5, 3]
    for call in cascade.calls:
        assert call["scaleFactor"] == 1.3
        assert call["minSize"] == (245, 245) and call["maxSize"] == (392, 392)  # 0.5 and 0.8 of 490


def test_no_retry_when_found_and_largest_wins(fake):
    cascade = fake({5: [[0, 0, 250, 250], [100, 50, 320, 320], [5, 5, 260, 260]]})
    assert detect_face(np.zeros((490, 640), dtype=np.uint8)) == (100, 50, 320, 320)
    assert len(cascade.calls) == 1


def test_box_is_the_detected_rectangle(fake):
    fake({5: [[3, 4, 6, 6]]})
    gray = (np.arange(20 * 20) % 251).astype(np.uint8).reshape(20, 20)
    assert haar_box(gray) == (2.5, 3.5, 6.0)
    np.testing.assert_array_equal(haar_crop(gray, size=6), gray[4:10, 3:9])  # exactly the rectangle


def test_real_cascade_finds_a_rendered_face():
    frame = render_face(identity_of(2, 0), {}).image  # 640x490, as CK+
    x, y, w, h = detect_face(frame)
    assert 0.5 * 490 <= w <= 0.8 * 490 and w == h
    face = haar_crop(frame, 96)
    assert face.shape == (96, 96) and face.dtype == np.uint8
    for k in range(3):
        assert detect_face(face_frame(k)) is not None  # the small test faces of facemaker.py


def test_blank_frame_has_no_face():
    assert detect_face(blank_frame()) is None
    assert haar_box(np.zeros((490, 640), dtype=np.uint8)) is None
    assert haar_crop(blank_frame()) is None


def test_face_outside_the_size_band_is_not_taken():
    small = np.full((3 * SIDE, 3 * SIDE), 128, dtype=np.uint8)
    small[:SIDE, :SIDE] = face_frame(0)  # the face is about 0.23 of the short side
    assert detect_face(small) is None


def test_load_faces_leaves_out_and_lists(tmp_path):
    paths = []
    for k, gray in enumerate([face_frame(0), blank_frame(), face_frame(1)]):
        paths.append(tmp_path / f"{k}.png")
        Image.fromarray(gray).save(paths[-1])
    paths.append(tmp_path / "broken.png")
    paths[-1].write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    faces = load_faces(paths, crop="haar", size=48, relative_to=tmp_path)
    assert faces.images.shape == (2, 1, 48, 48) and faces.kept.tolist() == [0, 2]
    assert faces.left_out == {"no_face": ["1.png"], "unreadable": ["broken.png"]}
    assert faces.boxes.shape == (2, 3)
    whole = load_faces(paths[:2], crop="none", size=SIDE)
    assert whole.kept.tolist() == [0, 1]
    np.testing.assert_array_equal(whole.images[1, 0], blank_frame())  # resized only (here: not at all)
    with pytest.raises(ValueError, match="crop"):
        load_faces(paths, crop="eyes")


# ---------------------------------------------------------------- CK+ with the Haar crop


def _faces_tree(root, landmarks=True):
    """10 subjects, one labelled 3-frame sequence each; S010's first frame and S011's apex are blank."""
    seqs = [SeqSpec(f"S{10 + i:03d}", "001", 3, emotion=1 + i % 7, facs=[(4, 2)]) for i in range(10)]
    tree = write_ckplus_tree(root, seqs, landmarks=landmarks)
    for i, s in enumerate(seqs):
        for frame in (1, 2, 3):
            blank = (s.subject, frame) in {("S010", 1), ("S011", 3)}
            gray = blank_frame() if blank else face_frame(i + frame)
            image = Image.fromarray(gray)
            (image.convert("RGB") if s.subject == "S012" else image).save(tree.image_path(s, frame))  # colour too
    return tree


@pytest.mark.parametrize("landmarks", [True, False])
def test_ckplus_haar_crop(tmp_path, landmarks):
    tree = _faces_tree(tmp_path / "ck", landmarks=landmarks)
    with pytest.warns(UserWarning, match="left out 2 image"):
        fs = load_ckplus(tree.root, crop="haar" if landmarks else "auto")
    assert fs.protocol["crop"] == "haar"
    no_face = fs.protocol["left_out"]["no_face"]
    assert sorted(p.split("/")[-1] for p in no_face) == ["S010_001_00000001.png", "S011_001_00000003.png"]
    assert len(fs) == 10 * 3 - 2  # paper frames of a 3-frame sequence: first (neutral) + 2 expressive
    assert not (fs.meta["subject"].eq("S010") & fs.meta["role"].eq("neutral")).any()
    # folds come from the planned subjects: each of the 10 subjects keeps its own fold
    assert sorted(set(zip(fs.meta["subject"], fs.meta["fold"], strict=True))) == \
        [(f"S{10 + i:03d}", i) for i in range(10)]
    assert sum(len(s.test) for s in fs.splits) == len(fs)
    assert bool(fs.landmarks.isnan().all()) != landmarks  # carried into the crop where the copy has them
    with pytest.warns(UserWarning, match="left out 2"):  # the warning survives the cache
        load_ckplus(tree.root, crop="haar")


def test_ckplus_haar_without_any_face(tmp_path):
    tree = write_ckplus_tree(tmp_path / "ck")  # gradient frames: no face anywhere
    with pytest.raises(CKPlusFormatError, match="no face in any"):
        load_ckplus(tree.root, crop="haar")
