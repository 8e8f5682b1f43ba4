"""Where each of MediaPipe Face Mesh's 468 points lies on the face model's surface.

A table (:data:`ICT_TABLE`, ``ict_dense468.json``) gives, per Face Mesh point, one triangle of
the converted ICT head as its three vertex ids and barycentric weights, and the index of its
mirror point (the point itself on the midline). The fit projects these surface points and pulls
them onto the detected mesh (:mod:`backend.fit.dense`). Calibrated on development photos by
``python -m training.dense_convention`` (method and evidence: docs/mediapipe.md, "Dense points in
the fit"); like :mod:`.landmarks`' table it is a model parameter derived by us, holding no image
or annotation data. Other models (BFM, FLAME, OBJ folders) have no table: their fits keep the
68-point path.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["ICT_TABLE", "N_MESH_POINTS", "DensePoints", "dense_points_for", "read_dense_table", "surface_points"]

ICT_TABLE = Path(__file__).with_name("ict_dense468.json")
N_MESH_POINTS = 468
_ICT_VERTICES = 11248  # the converted ICT head (as in .landmarks)


@dataclass(frozen=True)
class DensePoints:
    """Fixed surface points of a face model: point p = Σ_k ``weights[p,k]`` · vertex ``vertices[p,k]``.

    vertices (P,3) int64 vertex ids (one triangle of the model); weights (P,3) float64 barycentric
    (≥ 0, rows sum to 1); mirror (P,) int64 the mirror point's index (self on the midline).
    """

    vertices: np.ndarray
    weights: np.ndarray
    mirror: np.ndarray


def read_dense_table(path: str | Path) -> DensePoints:
    """Read a table written by ``training.dense_convention`` (JSON: ``vertices``, ``weights``,
    ``mirror``, ``n_vertices``). Raises ValueError when it is malformed."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    vid = np.asarray(doc["vertices"], np.int64)
    w = np.asarray(doc["weights"], np.float64)
    mirror = np.asarray(doc["mirror"], np.int64)
    if vid.shape != (N_MESH_POINTS, 3) or w.shape != vid.shape or mirror.shape != (N_MESH_POINTS,):
        raise ValueError(f"{path}: a dense table needs (468,3) vertices and weights and (468,) mirror")
    if (w < -1e-6).any() or vid.min() < 0 or vid.max() >= int(doc["n_vertices"]):
        raise ValueError(f"{path}: weights must be ≥ 0 and vertex ids within the model")
    return DensePoints(vid, w / w.sum(1, keepdims=True), mirror)


@functools.lru_cache(maxsize=4)
def _cached_table(path: str) -> DensePoints:
    return read_dense_table(path)


def dense_points_for(model) -> DensePoints | None:
    """The Face Mesh table of ``model`` (a :class:`~backend.facemodel.FaceModel`): the ICT table
    when the model is the converted ICT head (source ICT-FaceKit, ICT's vertex count), else None."""
    if "ICT-FaceKit" not in getattr(model, "source", "") or model.n_verts != _ICT_VERTICES or not ICT_TABLE.is_file():
        return None
    return _cached_table(str(ICT_TABLE))


def surface_points(verts: torch.Tensor, table: DensePoints) -> torch.Tensor:
    """The table's points on meshes: verts (B,N,3) (any units, e.g. mm or screen px) → (B,P,3)."""
    vid = torch.as_tensor(table.vertices, device=verts.device)
    w = torch.as_tensor(table.weights, device=verts.device, dtype=verts.dtype)
    return (verts[:, vid] * w[None, ..., None]).sum(-2)
