"""Capturable fit steps (backend.fit.step_graph): the static-shape step (precomputed visibility,
dense rasteriser pass 2, no host syncs) gives the plain step's results bit for bit on the CPU;
on CUDA the graph-replayed fit matches the eager one (gpu marker)."""
from __future__ import annotations

import copy
import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.fit.coarse import CoarseFitConfig, fit_coarse
from backend.fit.detail import DetailFitConfig, fit_detail
from backend.fit.step_graph import StepRunner, use_graphs
from backend.prepare import detail_inputs, prepare_view
from backend.render.rasterize import RasterSettings, rasterize, visibility

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")

COARSE = CoarseFitConfig(landmark_steps=20, photo_schedule=((64, 6), (224, 2)), identity=False)
DETAIL = DetailFitConfig(uv_size=64, steps=4)


def test_dense_pass_two_equals_the_sparse_one_with_gradients():
    """Two overlapping triangles and an uncovered area: face ids, barycentrics, depth and the
    gradients w.r.t. the screen vertices are the same bits from precomputed visibility."""
    sv = torch.tensor([[[2.0, 2.0, 5.0], [14.0, 3.0, 5.0], [4.0, 13.0, 5.0],
                        [6.0, 1.0, 2.0], [15.0, 12.0, 9.0], [1.0, 9.0, 4.0]]], requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    settings = RasterSettings()
    sparse = rasterize(sv, faces, 16, 16, settings)
    keys = visibility(sv, faces, 16, 16, settings)
    dense = rasterize(sv, faces, 16, 16, settings, visible=keys)
    assert torch.equal(sparse.face_idx, dense.face_idx)
    assert (sparse.face_idx == 0).any() and (sparse.face_idx == 1).any() and (sparse.face_idx < 0).any()
    assert torch.equal(sparse.bary, dense.bary) and torch.equal(sparse.depth, dense.depth)
    weight = torch.linspace(-1.0, 2.0, 16 * 16 * 3).view(1, 16, 16, 3)
    g_sparse, = torch.autograd.grad((sparse.bary * weight).sum() + sparse.depth.sum(), sv)
    g_dense, = torch.autograd.grad((dense.bary * weight).sum() + dense.depth.sum(), sv)
    assert g_sparse.abs().sum() > 0 and torch.equal(g_sparse, g_dense)


def test_use_graphs_and_the_eager_runner():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert use_graphs(None, cpu) == (False, False) and use_graphs(None, cuda) == (True, True)
    assert use_graphs(True, cpu) == (True, False) and use_graphs(False, cuda) == (False, False)
    calls = []
    run = StepRunner(lambda: calls.append(1) or {"n": torch.tensor(float(len(calls)))}, graph=False)
    assert [float(run()["n"]) for _ in range(5)] == [1, 2, 3, 4, 5]


@pytest.fixture(scope="module")
def dev_view(faces_dev):
    meta = json.loads((faces_dev / "landmarks.json").read_text())["images"]
    name = sorted(meta)[0]
    return prepare_view(str(faces_dev / "images" / name), landmarks68=np.asarray(meta[name]["landmarks"], np.float32))


def _fit(face_model, view, step_graphs, device="cpu"):
    t = lambda a: torch.from_numpy(np.stack([a])).float().to(device)  # noqa: E731
    fit = fit_coarse(face_model, t(view.crop), t(view.crop_landmarks), t(view.skin_mask),
                     replace(COARSE, step_graphs=step_graphs))
    crops, masks, faces = detail_inputs([view], DETAIL.render_size)
    det = fit_detail(face_model, fit, crops.to(device), masks.to(device), replace(DETAIL, step_graphs=step_graphs),
                     report_mask=faces.to(device))
    return fit, det


def test_capturable_steps_equal_the_plain_steps_on_cpu(face_model, dev_view):
    """step_graphs=True on the CPU runs the capturable steps eagerly: the same bits as the plain fit."""
    plain_fit, plain_det = _fit(face_model, dev_view, False)
    cap_fit, cap_det = _fit(face_model, dev_view, True)
    assert torch.equal(plain_fit.verts, cap_fit.verts) and torch.equal(plain_fit.albedo, cap_fit.albedo)
    assert plain_det.displacement.abs().max() > 1e-3
    assert torch.equal(plain_det.displacement, cap_det.displacement)
    assert plain_det.history == cap_det.history


@pytest.fixture(scope="module")
def hopper_view():
    """grace_hopper prepared with the landmarks in benchmarks/gpu_landmarks.json (no detector:
    a GPU machine may lack dlib's predictor)."""
    from backend.samples import sample_photo

    lm = json.loads((ROOT / "benchmarks" / "gpu_landmarks.json").read_text())["grace_hopper"]
    return prepare_view(sample_photo("grace_hopper")[1], landmarks68=np.asarray(lm, np.float32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
def test_cuda_graph_fit_matches_the_eager_fit(face_model, hopper_view):
    """On CUDA, the fit with its steps replayed as CUDA graphs against the eager plain fit (no
    warning: the capture succeeded). Capturable Adam rounds its bias correction on the device,
    so agreement is within float rounding carried through the schedule, not to the bit."""
    model = copy.deepcopy(face_model).to("cuda")  # the session fixture stays on the CPU
    eager_fit, eager_det = _fit(model, hopper_view, False, "cuda")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph_fit, graph_det = _fit(model, hopper_view, None, "cuda")
    assert not [w for w in caught if "CUDA graph" in str(w.message)]
    assert (eager_fit.verts - graph_fit.verts).abs().max() < 1e-2  # mm
    assert (eager_det.displacement - graph_det.displacement).abs().max() < 0.05  # mm
