"""UV albedo bases for face models without a texture model (ICT-FaceKit has none).

The implementation lives in :mod:`backend.nets.albedo` (inference rebuilds the basis from a
checkpoint's model card, and the backend never imports ``training``); re-exported here for
the trainers. See that module for :meth:`AlbedoBasis.lowfreq` and :meth:`AlbedoBasis.from_textures`.
"""
from __future__ import annotations

from backend.nets.albedo import SKIN_RGB, AlbedoBasis

__all__ = ["AlbedoBasis", "SKIN_RGB"]


# ----------------------------------------------------------------------------------------
# ``python -m training.albedo_basis``: a per-vertex albedo (texture) basis from fits of real
# photos, saved into a copy of the face model file, so that stage 1 (and the fit) can regress
# texture coefficients x_tex as the paper does.
USAGE = """Build a per-vertex albedo (texture) basis from fits of real photos.

Usage::

    python -m training.albedo_basis --data DIR --out models/ict_head_tex.npz [--n 200] [--k 40]
    python -m training.coarse --data DIR --out RUN --model models/ict_head_tex.npz

Each photo is reconstructed (fit mode, draft quality, no detail); its de-lit UV albedo is
sampled at the model's vertices (mean over a vertex's UV corners, so seams agree); vertices no
view saw take the mean of the others; PCA gives ``--k`` modes scaled by their standard
deviation (unit-variance coefficients, regularised by ω_t). The result is the input model plus
``tex_mean`` (V,3) and ``tex_basis`` (K,V,3), written atomically.
"""
import argparse as _argparse
import sys as _sys
from pathlib import Path as _Path

import numpy as _np
from scipy.ndimage import map_coordinates

from backend.errors import PhotoheadError
from backend.facemodel import find_model, load_model_data
from backend.facemodel.model import FaceModel
from backend.facemodel.npz import save_npz
from backend.facemodel.search import DEFAULT_MODEL
from backend.quality import DRAFT
from backend.reconstruct import ReconstructConfig, reconstruct
from backend.validate import check_writable, one_line


def vertex_albedo(head, model) -> tuple[_np.ndarray, _np.ndarray]:
    """Per-vertex albedo (V,3) and a seen mask (V,) from a reconstructed Head's UV albedo."""
    h, w = head.albedo.shape[:2]
    uv = model.uv.numpy()[model.faces_uv.numpy().reshape(-1)]
    col = uv[:, 0] / model.uv_tiles * w - 0.5
    row = (1.0 - uv[:, 1]) * h - 0.5
    faces = model.faces.numpy().reshape(-1)
    count = _np.maximum(_np.bincount(faces, minlength=model.n_verts), 1)
    out = _np.stack([_np.bincount(faces, map_coordinates(head.albedo[..., c], [row, col], order=1, mode="nearest"),
                                  minlength=model.n_verts) / count for c in range(3)], -1)
    seen = _np.ones(model.n_verts, bool)
    if head.view_weights is not None:
        wsum = head.view_weights.sum(0)
        s = map_coordinates(wsum, [row * wsum.shape[0] / h, col * wsum.shape[1] / w], order=1, mode="nearest")
        seen = _np.bincount(faces, s, minlength=model.n_verts) / count > 0.25
    return out.astype(_np.float32), seen


def texture_pca(albedos: _np.ndarray, seen: _np.ndarray, k: int) -> tuple[_np.ndarray, _np.ndarray]:
    """PCA of N per-vertex albedos (N,V,3) with seen masks (N,V): (mean (V,3), basis (K,V,3)), modes × std."""
    x = albedos.astype(_np.float64)
    w = seen[..., None].astype(_np.float64)
    mean = (x * w).sum(0) / _np.maximum(w.sum(0), 1.0)
    mean = _np.where(w.sum(0) > 0, mean, _np.median(mean[w.sum(0)[:, 0] > 0], axis=0))
    x = _np.where(w > 0, x, mean)
    centred = (x - mean).reshape(len(x), -1)
    _, s, vh = _np.linalg.svd(centred, full_matrices=False)
    k = min(k, vh.shape[0])
    std = s[:k] / _np.sqrt(max(len(x) - 1, 1))
    return mean.astype(_np.float32), (vh[:k] * std[:, None]).reshape(k, -1, 3).astype(_np.float32)


def build(photos: list, out: str, k: int = 40, model_path: str | None = None, progress=print) -> _Path:
    """Fit ``photos``, build the basis, write the model with it to ``out``. Returns the path."""
    src = find_model(DEFAULT_MODEL, model_path)
    data = load_model_data(src)
    model = FaceModel(data)
    albedos, seen = [], []
    config = ReconstructConfig(quality=DRAFT, detail=False, identity=False, model=str(src))
    for i, photo in enumerate(photos):
        try:
            head = reconstruct([photo], config)
        except PhotoheadError as exc:
            progress(f"skipped {photo}: {exc}")
            continue
        a, m = vertex_albedo(head, model)
        albedos.append(a)
        seen.append(m)
        progress(f"[{i + 1}/{len(photos)}] {photo}")
    if len(albedos) < 2:
        raise PhotoheadError(f"need at least 2 reconstructed photos for a texture basis, got {len(albedos)}")
    mean, basis = texture_pca(_np.stack(albedos), _np.stack(seen), k)
    data.tex_mean, data.tex_basis, data.tex_std = mean, basis, None
    data.name = f"{data.name}_tex{basis.shape[0]}"
    data.source = f"{data.source}; albedo basis: PCA of {len(albedos)} fitted photos (training.albedo_basis)"
    return save_npz(data, out)


def main(argv: list[str] | None = None) -> int:
    ap = _argparse.ArgumentParser(prog="python -m training.albedo_basis", description=USAGE,
                                  formatter_class=_argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder of photos (searched recursively)")
    ap.add_argument("--out", required=True, help="output model file (.npz)")
    ap.add_argument("--n", type=int, default=200, help="photos to fit (first N, sorted)")
    ap.add_argument("--k", type=int, default=40, help="number of texture modes")
    ap.add_argument("--model", help="input face model (default: ICT on the search path)")
    args = ap.parse_args(argv)
    exts = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
    try:  # before any fit: the photo folder holds 2 photos or more, the output file can be written
        root, out = _Path(args.data), _Path(args.out)
        if not root.is_dir():
            raise PhotoheadError(f"{root}: the photo folder {'is not a folder' if root.exists() else 'does not exist'}")
        photos = sorted(p for p in root.rglob("*") if p.suffix.lower() in exts and p.is_file())[: args.n]
        if len(photos) < 2:
            raise PhotoheadError(f"{root}: {len(photos)} photo(s) found; a texture basis needs at least 2")
        if not args.out.strip() or out.is_dir() or out.suffix.lower() != ".npz":
            raise PhotoheadError(f"--out {args.out!r}: name the output model file, e.g. models/ict_head_tex.npz")
        check_writable(out, "output model file")
        path = build([str(p) for p in photos], args.out, args.k, args.model)
    except PhotoheadError as exc:
        print(f"albedo basis: error: {one_line(exc)}", file=_sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    _sys.exit(main())
