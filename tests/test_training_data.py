"""Preprocessing cache (detection → crop → mask, rejects, resume) and the datasets."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from training.data import (
    CachedFaceDataset, PreprocessSettings, SyntheticFaceDataset, aligned_crop_pose, find_images, preprocess_folder,
    split_train_val,
)


class FakeDetector:
    """Decides by the photo's red value: 10 → face, 20 → tiny face, 30 → low score, else none."""

    def __init__(self):
        self.calls = 0

    def __call__(self, image):
        from backend.align import canonical_landmarks

        self.calls += 1
        tag = int(image[0, 0, 0])
        lm = canonical_landmarks() * 0.5 + 20  # a 112-px face in a 160² photo
        if tag == 10:
            return [(lm, 1.0)]
        if tag == 20:
            return [((lm - lm.mean(0)) * 0.2 + 50, 1.0)]
        if tag == 30:
            return [(lm, -1.0)]
        return []


def _photos(folder, tags):
    (folder / "sub").mkdir(parents=True)
    for i, t in enumerate(tags):
        img = np.full((160, 160, 3), 128, np.uint8)
        img[..., 0] = t
        Image.fromarray(img).save(folder / ("sub" if i % 2 else ".") / f"p{i}.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "notes.txt").write_text("ignored")


def test_preprocess_rejects_reports_and_resumes(tmp_path):
    _photos(tmp_path / "photos", [10, 20, 30, 40, 10, 10])
    assert len(find_images(tmp_path / "photos")) == 7  # recursive, images only
    det = FakeDetector()
    st = PreprocessSettings(crop_size=64, min_face_px=40, min_score=0.0, shard_size=3, workers=1)
    report = preprocess_folder(tmp_path / "photos", tmp_path / "cache", st, detect_fn=det)
    assert report["images"] == 7 and report["kept"] == 3 and report["shards"] == 3
    assert report["rejected"] == {"unreadable": 1, "no_face": 1, "too_small": 1, "low_score": 1}
    assert json.loads((tmp_path / "cache" / "report.json").read_text())["kept"] == 3
    assert det.calls == 6
    # resumable: complete shards are skipped; an incomplete one (no .json) is redone
    (tmp_path / "cache" / "shard_00001.json").unlink()
    again = preprocess_folder(tmp_path / "photos", tmp_path / "cache", st, detect_fn=det)
    assert again["kept"] == 3 and det.calls == 6 + 3
    with pytest.raises(ValueError, match="other photos or settings"):
        preprocess_folder(tmp_path / "photos", tmp_path / "cache", PreprocessSettings(crop_size=32, shard_size=3), det)

    ds = CachedFaceDataset(tmp_path / "cache")
    assert len(ds) == 3
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["mask"].shape == (64, 64) and item["landmarks"].shape == (68, 2)
    assert item["image"][0].mean().item() == pytest.approx(10 / 255, abs=0.02)
    # the landmarks land on the align template and the skin mask covers the face between them
    from backend.align import AlignSettings, canonical_landmarks

    assert np.allclose(item["landmarks"].numpy(), canonical_landmarks(AlignSettings(size=64)), atol=0.05)
    lm = item["landmarks"]
    assert item["mask"][int(lm[30, 1]), int(lm[30, 0])] == 1  # nose tip
    assert item["mask"][1, 1] == 0
    assert ds.source_path(0).endswith("p0.png")


def test_split_train_val_is_seeded_and_disjoint():
    ds = torch.utils.data.TensorDataset(torch.arange(20))
    tr, va = split_train_val(ds, 5, seed=1)
    assert len(tr) == 15 and len(va) == 5 and not set(tr.indices) & set(va.indices)
    assert split_train_val(ds, 5, seed=1)[1].indices == va.indices
    assert split_train_val(ds, 5, seed=2)[1].indices != va.indices


def test_synthetic_faces_match_their_parameters(face_model):
    from backend.camera import Camera, project

    ds = SyntheticFaceDataset(face_model, n=3, size=48, seed=5)
    item = ds[1]
    assert item["image"].shape == (3, 48, 48) and 0 <= item["image"].min() and item["image"].max() <= 1
    verts = face_model(item["id"][None], item["exp"][None])
    lm = project(verts, item["pose"][None], Camera(48, 48))[0, face_model.landmarks68, :2]
    assert torch.allclose(lm, item["landmarks"], atol=1e-4)
    assert item["mask"].sum() > 100 and (item["image"].sum(0)[item["mask"] > 0] > 0).all()
    again = SyntheticFaceDataset(face_model, n=3, size=48, seed=5)
    assert torch.equal(again.images, ds.images)
    # the aligned-crop pose maps the mean face's landmarks onto the align template (a framing drawn
    # from ICT's own landmark vertices, which the fit re-assigns in places: backend.facemodel.landmarks)
    from backend.align import AlignSettings, canonical_landmarks
    from backend.facemodel import find_model, load_model_data

    pose = torch.tensor([aligned_crop_pose(48)])
    source_ids = torch.from_numpy(load_model_data(find_model()).landmarks68)
    mean_lm = project(face_model.mean[None], pose, Camera(48, 48))[0, source_ids, :2]
    tmpl = torch.from_numpy(canonical_landmarks(AlignSettings(size=48))).float()
    assert (mean_lm - tmpl).norm(dim=-1).max() < 0.05


def test_preprocess_real_photos_with_dlib(tmp_path, faces_dev):
    pytest.importorskip("dlib")
    files = sorted((faces_dev / "images").glob("*.jpg"))[:2]
    folder = tmp_path / "two"
    folder.mkdir()
    for f in files:
        (folder / f.name).symlink_to(f)
    report = preprocess_folder(folder, tmp_path / "cache", PreprocessSettings(crop_size=64, workers=1))
    assert report["images"] == 2 and report["kept"] + sum(report["rejected"].values()) == 2
    assert report["kept"] >= 1
    ds = CachedFaceDataset(tmp_path / "cache")
    from backend.align import AlignSettings, canonical_landmarks

    # the inner landmarks of a real face sit near the template after alignment (px at 64²)
    err = np.linalg.norm(ds[0]["landmarks"].numpy()[17:] - canonical_landmarks(AlignSettings(size=64))[17:], axis=1)
    assert np.median(err) < 4.0


@pytest.mark.slow
def test_preprocess_multiprocess_matches_single_process(tmp_path, faces_dev):
    pytest.importorskip("dlib")
    folder = tmp_path / "four"
    folder.mkdir()
    for f in sorted((faces_dev / "images").glob("*.jpg"))[:4]:
        (folder / f.name).symlink_to(f)
    one = preprocess_folder(folder, tmp_path / "c1", PreprocessSettings(crop_size=64, shard_size=2, workers=1))
    two = preprocess_folder(folder, tmp_path / "c2", PreprocessSettings(crop_size=64, shard_size=2, workers=2))
    assert one["kept"] == two["kept"] >= 3 and one["rejected"] == two["rejected"]
    a, b = CachedFaceDataset(tmp_path / "c1"), CachedFaceDataset(tmp_path / "c2")
    assert torch.equal(a[len(a) - 1]["image"], b[len(b) - 1]["image"])
