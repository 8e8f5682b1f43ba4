"""Fake reconstruct functions for the add-on tests (no bpy; run inside the worker process).

Each has the signature of ``backend.reconstruct.reconstruct`` and is selected by its dotted
path, e.g. ``blender_tests.fake_jobs:fake_reconstruct``. The Head comes from the default
face model with a self-consistent view: its ``landmarks68`` are the model's landmark
vertices projected with ``backend.camera.project``.
"""
from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

# (f px/mm, rx, ry, rz, tx, ty, tz): slightly turned and tilted, off-centre
FAKE_POSE = (1.15, 0.12, -0.25, 0.06, 14.0, -9.0, 0.0)
FAKE_EXP = {"jawOpen": 0.35, "mouthSmile_L": 0.6, "mouthSmile_R": 0.5, "eyeBlink_L": 0.8}
TEX = 32  # albedo / detail map height (width = TEX·uv_tiles)


def _backend(submodule: str):
    """The backend the running worker uses (the installed extension's copy), else the repo's."""
    package = getattr(sys.modules.get("__main__"), "__package__", None)
    if package:
        parent = importlib.import_module(package)
        if hasattr(parent, "backend_module"):
            return parent.backend_module(submodule)
    return importlib.import_module(f"backend.{submodule}")


def _image_size(path: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as img:
        return img.size


def make_head(image_paths: Sequence[str] = (), image_size: tuple[int, int] = (320, 400)):
    """A Head from the default model; one view per photo (its size from the file)."""
    import torch

    Camera, project = _backend("camera").Camera, _backend("camera").project
    load_default = _backend("facemodel").load_default
    Head, ViewResult = _backend("head").Head, _backend("head").ViewResult

    model = load_default()
    gen = torch.Generator().manual_seed(7)
    id_coeffs = torch.randn(1, model.n_id, generator=gen) * 0.5
    exp = torch.zeros(1, model.n_exp)
    for name, value in FAKE_EXP.items():
        exp[0, model.exp_names.index(name)] = value
    with torch.no_grad():
        neutral = model(id_coeffs, None)[0]
        verts = model(id_coeffs, exp)[0]
    tiles = model.uv_tiles
    v, u = np.meshgrid(np.linspace(1, 0, TEX), np.linspace(0, 1, TEX * tiles), indexing="ij")
    albedo = np.stack([0.55 + 0.3 * u / tiles, 0.45 + 0.2 * v, 0.4 * np.ones_like(u)], -1).astype(np.float32)
    displacement = (0.5 * np.sin(u * 40) * np.sin(v * 40)).astype(np.float32)
    normal_map = np.stack([0.5 + 0.1 * np.sin(u * 40), 0.5 + 0.1 * np.cos(v * 40), np.ones_like(u)], -1).astype(np.float32)

    views = []
    sizes = [_image_size(p) for p in image_paths] or [image_size]
    for i, (width, height) in enumerate(sizes):
        pose = torch.tensor([FAKE_POSE], dtype=torch.float32)
        with torch.no_grad():
            screen = project(verts[None], pose, Camera(width, height))[0]
        lms = screen[model.landmarks68, :2].numpy().astype(np.float64)
        views.append(ViewResult(
            name=str(image_paths[i]) if image_paths else f"view{i}",
            image_size=(width, height), pose=pose[0].numpy(), sh=np.zeros(27, np.float32),
            exp=exp[0].numpy(), landmarks68=lms, detected68=lms + 0.5, label="front" if i == 0 else "other",
        ))
    head = Head(
        model_name=model.name, vertices=verts.numpy(), neutral=neutral.numpy(),
        faces=model.faces.numpy(), uv=model.uv.numpy(), faces_uv=model.faces_uv.numpy(),
        id_coeffs=id_coeffs[0].numpy(), exp_coeffs=exp[0].numpy(), exp_names=list(model.exp_names),
        exp_basis=model.exp_basis.numpy(), uv_tiles=tiles, albedo=albedo, displacement=displacement,
        displacement_scale_mm=1.0, normal_map=normal_map, views=views, mode="fit", quality="draft",
        timings={"total": 0.1},
    )
    _backend("head_parts").attach_parts(head, model, id_coeffs, exp)  # eyes, sockets, teeth
    return head


def fake_reconstruct(images, config=None, progress=None, cancel=None, landmarks=None):
    """Fast fake: reports progress and returns :func:`make_head` for the photos. Given
    ``landmarks`` (the pins) become the views' ``detected68`` with detector "given", as in
    ``backend.reconstruct``."""
    for i in range(3):
        if progress is not None:
            progress(i / 3, f"fake step {i + 1}/3")
    head = make_head([str(p) for p in images])
    for view, given in zip(head.views, landmarks or ()):
        if given is not None:
            view.detected68, view.detector = np.asarray(given, np.float64), "given"
    return head


def fake_skip_first(images, config=None, progress=None, cancel=None):
    """Like a reconstruction whose first photo had no face: only the other photos have views."""
    head = make_head([str(p) for p in images[1:]])
    head.warnings.append(f"skipped: no face found in {Path(str(images[0])).name}")
    return head


def fake_detect(images, config=None, progress=None, cancel=None):
    """Detection-only fake: the fake head's landmarks for each photo, the placeholder layout for a
    photo whose name contains "noface"."""
    photos = _backend("detect.photos")
    found = []
    for path in (str(p) for p in images):
        width, height = _image_size(path)
        if "noface" in Path(path).name:
            found.append(photos.PhotoLandmarks(path, (width, height), photos.placeholder_landmarks(width, height),
                                               "placeholder", "no face found"))
        else:
            found.append(photos.PhotoLandmarks(path, (width, height), make_head([path]).views[0].detected68, "dlib"))
    return found


def fake_slow(images, config=None, progress=None, cancel=None):
    """Runs until cancelled (at most 60 s), reporting progress between steps."""
    CancelledError = _backend("errors").CancelledError

    for i in range(600):
        if cancel is not None and cancel.is_set():
            raise CancelledError("cancelled by the user")
        if progress is not None:
            progress(min(i / 600, 0.99), f"fake slow step {i}")
        time.sleep(0.1)
    return make_head([str(p) for p in images])


def fake_no_face(images, config=None, progress=None, cancel=None):
    """Fails like a photo without a face."""
    NoFaceError = _backend("errors").NoFaceError

    if progress is not None:
        progress(0.1, "detecting faces")
    raise NoFaceError(f"no face found in {Path(str(images[0])).name}: use a photo with a clearly visible face")
