"""The linear face model (3DMM) every stage shares."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch
from torch import nn

from .landmarks import annotation_landmarks
from .parts import FacePartsData


@dataclass
class FaceModelData:
    """Arrays of a face model as loaders produce them (numpy, model space, mm).

    Shapes: V vertices, F triangles, T UV coordinates, K_* basis sizes.
    - ``mean`` (V,3) float32 mm; ``id_basis`` (K_id,V,3) and ``exp_basis`` (K_exp,V,3) mm per
      unit coefficient *after* scaling by ``id_std`` / ``exp_std`` (K,), so coefficients are
      in standard deviations (identity) or blendshape weights (expression, when std is 1).
    - ``tex_mean`` (V,3) and ``tex_basis`` (K_tex,V,3) per-vertex albedo in [0,1] (optional),
      ``tex_std`` (K_tex,).
    - ``faces`` (F,3) int, counter-clockwise seen from outside; ``faces_uv`` (F,3) indices into
      ``uv`` (T,2) (separate index buffer: seams), u right, v up.
    - ``landmarks68`` (68,) vertex indices, iBUG order, as the model lists them (``FaceModel``
      re-assigns some of ICT's to the 300-W annotation convention: :mod:`.landmarks`), or as a
      ``<model>.landmarks68.json`` beside the model file replaced them (``landmarks_file`` names
      it; ``FaceModel`` then uses the list as given).
    - ``region`` (V,) uint8 labels naming ``region_names``; ``face_mask_regions`` the labels
      that count as "face" for losses and metrics.
    """

    name: str
    mean: np.ndarray
    faces: np.ndarray
    id_basis: np.ndarray
    exp_basis: np.ndarray
    landmarks68: np.ndarray
    uv: np.ndarray | None = None
    faces_uv: np.ndarray | None = None
    id_std: np.ndarray | None = None
    exp_std: np.ndarray | None = None
    exp_names: list[str] = field(default_factory=list)
    tex_mean: np.ndarray | None = None
    tex_basis: np.ndarray | None = None
    tex_std: np.ndarray | None = None
    region: np.ndarray | None = None
    region_names: list[str] = field(default_factory=lambda: ["face"])
    face_mask_regions: tuple[int, ...] = (0,)
    source: str = ""
    license: str = ""
    landmarks_file: str = ""
    extras: dict = field(default_factory=dict)
    parts: FacePartsData | None = None  # eyes, sockets, teeth (:mod:`.parts`); None: skin only


class FaceModel(nn.Module):
    """Linear 3DMM ``S = mean + B_id·x_id + B_exp·x_exp`` (mm), optional albedo model.

    All arrays are buffers, so ``.to(device)`` moves the model. Bases are stored pre-scaled
    by their standard deviations; coefficients are therefore unit-variance for identity and
    texture, and blendshape weights for ICT-style expression models.
    """

    def __init__(self, data: FaceModelData):
        super().__init__()
        V = data.mean.shape[0]
        self.name = data.name
        self.source = data.source
        self.license = data.license
        self.exp_names = list(data.exp_names) or [f"exp{i:03d}" for i in range(data.exp_basis.shape[0])]
        self.region_names = list(data.region_names)
        self.face_mask_regions = tuple(data.face_mask_regions)
        self.extras = dict(data.extras)

        def scaled(basis, std):
            basis = np.asarray(basis, np.float32)
            if std is not None:
                basis = basis * np.asarray(std, np.float32)[:, None, None]
            return torch.from_numpy(np.ascontiguousarray(basis))

        self.register_buffer("mean", torch.from_numpy(np.asarray(data.mean, np.float32)))
        self.register_buffer("id_basis", scaled(data.id_basis, data.id_std))
        self.register_buffer("exp_basis", scaled(data.exp_basis, data.exp_std))
        self.register_buffer("faces", torch.from_numpy(np.asarray(data.faces, np.int64)))
        # the vertices the fit pulls onto detected (300-W-style) landmarks: ICT's list re-assigned
        # where its convention differs (backend.facemodel.landmarks); other models, and a list a
        # user's side file gave, unchanged
        ids = np.asarray(data.landmarks68, np.int64) if data.landmarks_file else annotation_landmarks(data.landmarks68, V, data.source)
        self.register_buffer("landmarks68", torch.from_numpy(ids))
        if data.uv is None or data.faces_uv is None:
            uv, faces_uv = projected_uv(np.asarray(data.mean, np.float64), np.asarray(data.faces, np.int64))
        else:
            uv, faces_uv = data.uv, data.faces_uv
        self.register_buffer("uv", torch.from_numpy(np.asarray(uv, np.float32)))
        self.register_buffer("faces_uv", torch.from_numpy(np.asarray(faces_uv, np.int64)))
        region = np.zeros(V, np.uint8) if data.region is None else np.asarray(data.region, np.uint8)
        self.register_buffer("region", torch.from_numpy(region.astype(np.int64)))
        if data.tex_basis is not None:
            self.register_buffer("tex_mean", torch.from_numpy(np.asarray(data.tex_mean, np.float32)))
            self.register_buffer("tex_basis", scaled(data.tex_basis, data.tex_std))
        else:
            self.tex_mean = None
            self.tex_basis = None
        # parts (eyes, sockets, teeth; :mod:`.parts`): own bases, the skin's coefficients
        self.parts_info: FacePartsData | None = None  # names, ranges, UVs, materials, mean (bases dropped)
        for name in ("parts_mean", "parts_id_basis", "parts_exp_basis", "parts_faces"):
            self.register_buffer(name, None)
        if data.parts is not None:
            parts = data.parts
            n_id, n_exp = self.id_basis.shape[0], self.exp_basis.shape[0]
            if parts.id_basis.shape[0] < n_id or parts.exp_basis.shape[0] != n_exp or parts.vertex_offset != V:
                raise ValueError(f"face model {self.name!r}: its parts do not match the skin's vertices/coefficients")
            self.register_buffer("parts_mean", torch.from_numpy(np.asarray(parts.mean, np.float32)))
            self.register_buffer("parts_id_basis", scaled(parts.id_basis[:n_id], data.id_std))
            self.register_buffer("parts_exp_basis", scaled(parts.exp_basis, data.exp_std))
            self.register_buffer("parts_faces", torch.from_numpy(np.asarray(parts.faces, np.int64)))
            empty = np.zeros((0, parts.mean.shape[0], 3), np.float32)
            self.parts_info = replace(parts, id_basis=empty, exp_basis=empty)

    # -- sizes -------------------------------------------------------------------------
    @property
    def n_verts(self) -> int:
        return self.mean.shape[0]

    @property
    def n_faces(self) -> int:
        return self.faces.shape[0]

    @property
    def n_id(self) -> int:
        return self.id_basis.shape[0]

    @property
    def n_exp(self) -> int:
        return self.exp_basis.shape[0]

    @property
    def n_tex(self) -> int:
        return 0 if self.tex_basis is None else self.tex_basis.shape[0]

    @property
    def has_parts(self) -> bool:
        """True when the model carries parts (eyes, sockets, teeth, ...) beside the skin."""
        return self.parts_mean is not None

    @property
    def has_texture(self) -> bool:
        return self.tex_basis is not None

    @property
    def uv_tiles(self) -> int:
        """Number of UDIM tiles along u (ICT: 2, face u∈[0,1], head u∈[1,2])."""
        return max(1, int(math.ceil(float(self.uv[:, 0].max()) - 1e-6)))

    @property
    def face_vertex_mask(self) -> torch.Tensor:
        """(V,) bool: vertices in the regions that count as the face."""
        regions = torch.tensor(self.face_mask_regions, device=self.region.device)
        return torch.isin(self.region, regions)

    # -- evaluation --------------------------------------------------------------------
    def forward(self, id_coeffs: torch.Tensor | None = None, exp_coeffs: torch.Tensor | None = None) -> torch.Tensor:
        """Shape from coefficients. id (B,K_id), exp (B,K_exp) (either may be None).

        Returns (B,V,3) mm in model space.
        """
        return _linear_shape(self.mean, self.id_basis, self.exp_basis, id_coeffs, exp_coeffs)

    def restricted(self, vertex_ids: torch.Tensor) -> Callable[[torch.Tensor | None, torch.Tensor | None], torch.Tensor]:
        """:meth:`forward` on the vertices ``vertex_ids`` (U,) only: a function of (id (B,K_id),
        exp (B,K_exp)) returning (B,U,3) mm, ``forward(id, exp)[:, vertex_ids]`` without the rest
        of the mesh (the bases are gathered once, here)."""
        mean, id_basis, exp_basis = self.mean[vertex_ids], self.id_basis[:, vertex_ids], self.exp_basis[:, vertex_ids]
        return lambda id_coeffs, exp_coeffs: _linear_shape(mean, id_basis, exp_basis, id_coeffs, exp_coeffs)

    def parts_forward(self, id_coeffs: torch.Tensor | None = None, exp_coeffs: torch.Tensor | None = None) -> torch.Tensor:
        """The parts' vertices for the same coefficients as :meth:`forward`: id (B,K_id), exp
        (B,K_exp) (either may be None). Returns (B,P,3) mm; their triangles (``parts_faces``)
        index ``torch.cat([forward(...), parts_forward(...)], 1)``. Needs :attr:`has_parts`."""
        if self.parts_mean is None:
            raise ValueError(f"face model {self.name!r} has no parts (eyes, teeth): install ict_parts.npz beside it")
        return _linear_shape(self.parts_mean, self.parts_id_basis, self.parts_exp_basis, id_coeffs, exp_coeffs)

    def albedo(self, tex_coeffs: torch.Tensor) -> torch.Tensor:
        """Per-vertex albedo (B,V,3) in [0,1] from tex (B,K_tex). Needs a texture model."""
        if self.tex_basis is None:
            raise ValueError(f"face model {self.name!r} has no texture basis; use a UV albedo map")
        return (self.tex_mean + torch.einsum("bk,kvc->bvc", tex_coeffs, self.tex_basis)).clamp(0.0, 1.0)

    def sample(
        self,
        batch: int,
        generator: torch.Generator | None = None,
        id_scale: float = 1.0,
        exp_scale: float = 0.3,
    ) -> dict[str, torch.Tensor]:
        """Random coefficients: id ~ N(0, id_scale²); exp ~ |N(0, exp_scale²)| clipped to [0,1]
        for blendshape models; tex ~ N(0, 1) when a texture basis exists.

        Returns {"id": (B,K_id), "exp": (B,K_exp), "tex": (B,K_tex), "verts": (B,V,3)}.
        """
        dev = self.mean.device
        g = dict(generator=generator, device="cpu")
        ident = torch.randn(batch, self.n_id, **g) * id_scale
        exp = (torch.randn(batch, self.n_exp, **g) * exp_scale).abs().clamp(max=1.0)
        if "mouthClose" in self.exp_names:  # a corrective meant only together with jawOpen
            exp[:, self.exp_names.index("mouthClose")] = 0.0
        tex = torch.randn(batch, self.n_tex, **g)
        ident, exp, tex = ident.to(dev), exp.to(dev), tex.to(dev)
        return {"id": ident, "exp": exp, "tex": tex, "verts": self(ident, exp)}

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, verts={self.n_verts}, faces={self.n_faces}, uv={self.uv.shape[0]}, "
            f"id={self.n_id}, exp={self.n_exp}, tex={self.n_tex}, uv_tiles={self.uv_tiles}"
            + (f", parts={len(self.parts_info.part_names)}" if self.parts_info is not None else "")
        )


def _linear_shape(mean: torch.Tensor, id_basis: torch.Tensor, exp_basis: torch.Tensor,
                  id_coeffs: torch.Tensor | None, exp_coeffs: torch.Tensor | None) -> torch.Tensor:
    """mean (V,3) + id (B,K_id)·id_basis (K_id,V,3) + exp (B,K_exp)·exp_basis; either set of
    coefficients may be None (batch 1 when both are). Returns (B,V,3)."""
    ref = id_coeffs if id_coeffs is not None else exp_coeffs
    batch = 1 if ref is None else ref.shape[0]
    verts = mean.expand(batch, -1, -1)
    if id_coeffs is not None:
        verts = verts + torch.einsum("bk,kvc->bvc", id_coeffs, id_basis)
    if exp_coeffs is not None:
        verts = verts + torch.einsum("bk,kvc->bvc", exp_coeffs, exp_basis)
    return verts


def projected_uv(mean: np.ndarray, faces: np.ndarray, front_cos: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """UVs for models that ship none, in ICT's two-tile layout (face tile u∈[0,1], head u∈[1,2]).

    Triangles facing the front (outward normal of the mean shape within 60° of +z, ``front_cos``;
    faces counter-clockwise from outside) are projected front-on into tile 0 (x, y of the mean
    face); the rest of the head is unrolled around the vertical axis into tile 1 (a cylinder whose
    seam runs down the front, where the front tile already is; a triangle across it joins tile 0).
    One front projection for the whole head put the back and the sides of the skull on the face's
    texels: the photo's cheek was smeared along the side of the head and the detail map's texels
    were claimed twice. mean (V,3), faces (F,3). Returns uv (2V,2) float32 and faces_uv (F,3)
    int64 (tile-1 triangles index the second V entries)."""
    a, b, c = (mean[faces[:, k]] for k in range(3))
    normal = np.cross(b - a, c - a)
    front = normal[:, 2] >= front_cos * np.linalg.norm(normal, axis=1)  # (F,)
    xy = mean[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    span = float((hi - lo).max()) or 1.0
    front_uv = (xy - lo) / span * 0.98 + 0.01  # (V,2) in [0.01, 0.99]²
    centre = mean.mean(0)
    around = np.arctan2(mean[:, 0] - centre[0], centre[2] - mean[:, 2])  # radians, 0 at the back, ±π at the front
    side_u = 1.01 + 0.98 * (around + np.pi) / (2.0 * np.pi)
    front |= np.ptp(side_u[faces], axis=1) > 0.5  # across the seam
    uv = np.concatenate([front_uv, np.stack([side_u, front_uv[:, 1]], 1)]).astype(np.float32)
    faces_uv = np.where(front[:, None], faces, faces + len(mean)).astype(np.int64)
    return uv, faces_uv
