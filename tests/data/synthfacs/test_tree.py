"""SynthFACS: determinism, the CK+ layout, the plan's class mix, and that each AU shows where FACS says."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from fercore.data import load, synthfacs
from fercore.data.ckplus_files import read_emotion, read_facs, read_landmarks
from fercore.data.synthfacs.face import TEMPLATE
from fercore.data.synthfacs.tree import CKPLUS_EMOTION_COUNTS
from fercore.facs import CKPLUS_EMOTIONS, EMOTION_PROTOTYPES, SYNTH_AUS, au_region

MATLAB_NUMBER = re.compile(r"^(   \d|  -\d)\.\d{7}e[+-]\d{2}$")


@pytest.fixture
def tree(synth_root) -> Path:
    """The session's small tree (conftest: 10 subjects, seed 0), read only."""
    return synth_root


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files_whatever_the_workers(tree, tmp_path):
    again = synthfacs.write_tree(tmp_path / "again", subjects=10, seed=0, workers=1, progress=False)  # tree: 2 workers
    assert _digest(again) == _digest(tree)
    other = synthfacs.plan_dataset(subjects=10, seed=4)
    assert [p.apex for p in other] != [p.apex for p in synthfacs.plan_dataset(subjects=10, seed=3)]


def test_tree_has_the_exact_ckplus_layout(tree):
    assert {p.name for p in tree.iterdir() if p.is_dir()} == {"cohn-kanade-images", "Emotion", "FACS", "Landmarks"}
    _, plans = synthfacs.read_plans(tree)
    for plan in plans:
        frames = sorted((tree / "cohn-kanade-images" / plan.folder).iterdir())
        assert [f.name for f in frames] == [f"{plan.frame_name(j)}.png" for j in range(1, plan.n_frames + 1)]
        emotion_dir = tree / "Emotion" / plan.folder
        assert emotion_dir.is_dir()  # every sequence has one; empty means unlabelled
        emotion_files = list(emotion_dir.iterdir())
        last = plan.frame_name(plan.n_frames)
        if plan.emotion:
            assert [f.name for f in emotion_files] == [f"{last}_emotion.txt"]
            assert CKPLUS_EMOTIONS[read_emotion(emotion_files[0])] == plan.emotion
            assert emotion_files[0].read_text() == f"{CKPLUS_EMOTIONS.index(plan.emotion):16.7e}\n"
        else:
            assert emotion_files == []
        assert (tree / "FACS" / plan.folder / f"{last}_facs.txt").exists()
        assert len(list((tree / "Landmarks" / plan.folder).iterdir())) == plan.n_frames
    landmark_file = next((tree / "Landmarks").rglob("*_landmarks.txt"))
    rows = landmark_file.read_text().splitlines()
    assert len(rows) == 68
    assert all(MATLAB_NUMBER.match(row[:16]) and MATLAB_NUMBER.match(row[16:]) for row in rows)
    assert read_landmarks(landmark_file).shape == (68, 2)


def test_truth_and_facs_files_agree_with_the_plan(tree):
    _, plans = synthfacs.read_plans(tree)
    truth = synthfacs.read_truth(tree).set_index(["subject", "sequence", "frame"])
    au_columns = [f"AU{au}" for au in SYNTH_AUS]
    for plan in plans:
        first = truth.loc[(plan.subject, plan.number, 1), au_columns]
        assert (first == 0).all(), "the first frame is neutral"
        apex = truth.loc[(plan.subject, plan.number, plan.n_frames), au_columns]
        expected = {"AU" + k.lstrip("AURL"): v for k, v in plan.apex.items()}
        assert {k: v for k, v in apex.items() if v > 0} == pytest.approx(expected)
        facs = dict(read_facs(tree / "FACS" / plan.folder / f"{plan.frame_name(plan.n_frames)}_facs.txt"))
        assert {f"AU{au}" for au in facs} == set(expected)
        assert all(level in (0, expected[f"AU{au}"]) for au, level in facs.items())  # 0 = intensity not coded


def test_ckplus_loader_reads_the_tree(tree):
    faceset = load("synthfacs", tree)
    _, plans = synthfacs.read_plans(tree)
    labelled = [p for p in plans if p.emotion]
    assert len(faceset) == 4 * len(labelled)  # paper protocol: neutral first frame + last three
    counts = faceset.class_counts().set_index("class")["images"]
    assert counts["neutral"] == len(labelled)
    assert len(faceset.splits) == 10
    assert set(faceset.au_codes) <= {f"AU{au}" for au in SYNTH_AUS}


def test_default_plan_has_ckplus_size_and_class_mix():
    plans = synthfacs.plan_dataset(subjects=120, seed=0)
    assert len(plans) == 593
    assert len({p.subject for p in plans}) == 120
    assert Counter(p.emotion for p in plans if p.emotion) == CKPLUS_EMOTION_COUNTS
    happy = [p for p in plans if p.emotion == "happy"]
    assert all({"AU6", "AU12"} <= set(p.apex) for p in happy)
    contempt = [p for p in plans if p.emotion == "contempt"]
    for p in contempt:  # contempt is unilateral 12 + 14 (R12A+R14A in FACS)
        side = "R" if "R12" in p.apex else "L"
        assert {f"{side}12", f"{side}14"} <= set(p.apex) and "AU12" not in p.apex
    # AUs are correlated with the emotion but not determined by it.
    assert len({tuple(sorted(p.apex)) for p in happy}) > 2
    assert len({tuple(sorted(p.apex)) for p in plans if p.emotion == "surprise"}) > 2
    unlabelled = [p for p in plans if not p.emotion]
    assert all(p.apex for p in unlabelled)
    per_au = Counter(k.lstrip("AURL") for p in plans for k in p.apex)
    assert all(per_au[str(au)] >= 20 for au in SYNTH_AUS), per_au


# CK+'s label criteria (Lucey et al. 2010, Table 2), as far as SynthFACS renders the AUs they name.
_CKPLUS_CRITERIA = {"happy": [{12}], "sadness": [{1, 4, 15}], "surprise": [{1, 2}], "fear": [{1, 2, 4}],
                    "anger": [{24}, {23}], "disgust": [{9}, {10}], "contempt": [{14}]}


def test_labelled_plans_meet_ckplus_criteria_with_their_defining_aus_at_c_or_stronger():
    plans = synthfacs.plan_dataset(subjects=120, seed=0)
    for p in (p for p in plans if p.emotion):
        present = {int(k.lstrip("AURL")) for k in p.apex}
        assert any(rule <= present for rule in _CKPLUS_CRITERIA[p.emotion]), (p.folder, p.emotion, p.apex)
        for au in EMOTION_PROTOTYPES[p.emotion].get("defining", ()):
            assert p.apex[f"AU{au}"] >= 3, (p.folder, p.emotion, p.apex)  # C-E: the label must be visible
    disgust = [p for p in plans if p.emotion == "disgust"]  # posed as people pose it: 9 + 10 + 17
    assert all({"AU9", "AU10", "AU17"} <= set(p.apex) for p in disgust)
    # the other AUs of a prototype still take every intensity (A-E)
    assert {p.apex["AU17"] for p in disgust} == {1, 2, 3, 4, 5}


# ---- the renderer: every AU changes the face where FACS says it does ----

# Which part of the face (in face units: y = 0 at the eyes, about 0.9 at the mouth) each AU moves.
_UPPER = {1, 2, 4, 5, 6, 7}
_MIDDLE = {9, 10}
_LOWER = {12, 14, 15, 16, 17, 20, 23, 24, 25, 26, 27}


def _difference(identity, aus, pose):
    neutral = synthfacs.render_face(identity, {}, pose).image.astype(float)
    moved = synthfacs.render_face(identity, aus, pose).image.astype(float)
    return np.abs(moved - neutral)


@pytest.mark.parametrize("au", SYNTH_AUS)
def test_each_au_changes_its_own_face_region(au):
    identity = synthfacs.identity_of(0, 1)
    pose = synthfacs.Pose()
    diff = _difference(identity, {f"AU{au}": 5}, pose)
    assert diff.max() > 25, f"AU{au} barely changes the image"  # gray levels; lips differ little from skin
    ys, xs = np.nonzero(diff > 15)
    centre_y = (np.average(ys, weights=diff[ys, xs]) - pose.cy) / pose.scale  # face units
    if au in _UPPER:
        assert centre_y < 0.45, (au, centre_y)
    elif au in _MIDDLE:
        assert 0.0 < centre_y < 1.0, (au, centre_y)
    else:
        assert centre_y > 0.6, (au, centre_y)


@pytest.mark.parametrize("au", SYNTH_AUS)
def test_each_au_changes_the_face_inside_its_facs_region_only(au):
    """Against fercore.facs.au_region (what the FAU analysis scores): at intensity E, on three identities,
    the crop changes inside the AU's region (on the neutral or the moved landmarks) and barely outside it."""
    changed_inside = 0.0
    for subject in (1, 5, 8):
        identity = synthfacs.identity_of(0, subject)
        neutral, landmarks, box = synthfacs.render_crop(identity, {}, size=96)
        moved, moved_landmarks, _ = synthfacs.render_crop(identity, {f"AU{au}": 5}, size=96, box=box)
        diff = np.abs(moved.astype(float) - neutral)
        region = au_region(au, landmarks, 96) | au_region(au, moved_landmarks, 96)
        region = binary_dilation(region, iterations=3)  # camera blur and the crop's resampling spread edges
        outside = diff[~region]
        assert outside.sum() < 0.15 * diff.sum(), (au, subject, outside.sum() / diff.sum())
        assert (outside > 8).mean() < 0.01, (au, subject, (outside > 8).sum())  # gray levels
        changed_inside = max(changed_inside, diff[region].max())
    assert changed_inside > 25, f"AU{au} barely changes the face"


def test_unilateral_au_moves_one_side_only():
    identity = synthfacs.identity_of(0, 2)
    pose = synthfacs.Pose()
    diff = _difference(identity, {"R12": 4, "R14": 4}, pose)
    left, right = diff[:, : int(pose.cx)].sum(), diff[:, int(pose.cx):].sum()
    assert left > 4 * right  # the subject's right is the image left


def test_intensity_grows_the_change():
    identity = synthfacs.identity_of(0, 3)
    pose = synthfacs.Pose()
    sizes = [_difference(identity, {"AU12": level}, pose).sum() for level in (1, 3, 5)]
    assert sizes[0] < sizes[1] < sizes[2]


def test_render_is_deterministic_and_landmarks_follow_the_face():
    identity = synthfacs.identity_of(5, 0)
    pose = synthfacs.Pose(cx=300, cy=210, scale=120, roll=4)
    a = synthfacs.render_face(identity, {"AU1": 3}, pose, seed=7)
    b = synthfacs.render_face(identity, {"AU1": 3}, pose, seed=7)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.landmarks, b.landmarks)
    assert a.image.shape == (490, 640) and a.image.dtype == np.uint8
    # The landmarks of a frontal face sit where the template puts them (up to identity and jitter).
    span = a.landmarks.max(axis=0) - a.landmarks.min(axis=0)
    template_span = (TEMPLATE.max(axis=0) - TEMPLATE.min(axis=0)) * 120
    assert np.allclose(span, template_span, rtol=0.2)


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="AU99"):
        synthfacs.render_face(synthfacs.identity_of(0, 0), {"AU99": 3})
    with pytest.raises(ValueError, match="between 10 and 990"):
        synthfacs.plan_dataset(subjects=3)
    occupied = tmp_path / "mine"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="will not overwrite"):
        synthfacs.write_tree(occupied, subjects=10, progress=False)
    assert (occupied / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"], "no partial tree left behind"


def test_a_tree_of_another_renderer_version_is_flagged(tmp_path):
    import json
    import warnings

    from fercore.data.synthfacs.tree import VERSION, warn_if_outdated

    (tmp_path / "synthfacs.json").write_text(json.dumps({"version": VERSION - 1}))
    with pytest.warns(UserWarning, match=f"holds SynthFACS version {VERSION - 1}, this fercore renders version"):
        warn_if_outdated(tmp_path)
    (tmp_path / "synthfacs.json").write_text(json.dumps({"version": VERSION}))
    with warnings.catch_warnings():  # today's version: silent
        warnings.simplefilter("error")
        warn_if_outdated(tmp_path)
