"""Multi-view checks and helpers: identity consistency, UV coverage, per-view delit unwraps.

Letters: V views (photos), H×W UV texels, Hi×Wi photo pixels, N mesh vertices.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .blend import ConfidenceSettings, per_view_confidence, silhouette_distance
from .camera import Camera, to_camera_space
from .facemodel import FaceModel
from .lighting import sh_shading
from .render import Fragments, RenderSettings, normal_map, render, unwrap_image

__all__ = [
    "SAME_PERSON_THRESHOLD", "identity_outliers", "VIEW_COLOURS", "coverage_image", "face_region_mask",
    "face_region_coverage", "DelitViews", "delit_views",
]

# dlib's face-recognition ResNet: descriptors of the same person are closer than this.
SAME_PERSON_THRESHOLD = 0.6


def identity_outliers(descriptors, names: list[str], threshold: float = SAME_PERSON_THRESHOLD) -> list[str]:
    """Warnings about photos that do not look like the same person as the others.

    descriptors: (V,128) face descriptors (:mod:`backend.identity`, Euclidean distance < 0.6 =
    same person), torch or numpy; names: V photo names used in the messages.
    - V ≥ 3: a photo whose *median* distance to the other photos exceeds ``threshold`` is an
      outlier (one warning each); when every photo is, a single warning says so.
    - V = 2: one warning naming both photos when their distance exceeds ``threshold``
      (which of the two is wrong cannot be told).
    - V ≤ 1: no warnings.
    Returns a list of human-readable warnings (empty when all photos agree).
    """
    d = torch.as_tensor(np.asarray(descriptors) if not isinstance(descriptors, torch.Tensor) else descriptors)
    d = d.detach().double().cpu()
    if d.dim() != 2:
        raise ValueError(f"descriptors must be (V,D), got {tuple(d.shape)}")
    V = d.shape[0]
    if len(names) != V:
        raise ValueError(f"{V} descriptors but {len(names)} names")
    if V < 2:
        return []
    dist = torch.cdist(d, d)
    if V == 2:
        if float(dist[0, 1]) > threshold:
            return [
                f"photos {names[0]!r} and {names[1]!r} may show different people (face descriptor distance "
                f"{float(dist[0, 1]):.2f} > {threshold:.2f}); check the photos or the face index"
            ]
        return []
    off = ~torch.eye(V, dtype=torch.bool)
    median = dist[off].view(V, V - 1).median(1).values  # lower median for an even count
    bad = (median > threshold).nonzero().flatten().tolist()
    if len(bad) == V:
        return [
            f"no two photos look like the same person (median face descriptor distances "
            f"{', '.join(f'{float(m):.2f}' for m in median)} > {threshold:.2f}); check the photos or the face index"
        ]
    return [
        f"photo {names[i]!r} may show a different person from the others (median face descriptor distance "
        f"{float(median[i]):.2f} > {threshold:.2f}); remove it or choose another face in it"
        for i in bad
    ]


# View colours of :func:`coverage_image`, in view order (cycled beyond 8 views).
VIEW_COLOURS: tuple[tuple[float, float, float], ...] = (
    (1.0, 0.15, 0.15),  # view 0: red
    (0.15, 1.0, 0.15),  # view 1: green
    (0.2, 0.4, 1.0),  # view 2: blue
    (1.0, 0.9, 0.1),  # view 3: yellow
    (1.0, 0.2, 1.0),  # view 4: magenta
    (0.1, 1.0, 1.0),  # view 5: cyan
    (1.0, 0.55, 0.0),  # view 6: orange
    (0.6, 0.3, 1.0),  # view 7: violet
)


def coverage_image(weights) -> np.ndarray:
    """Visualise which view covers each texel.

    weights: (V,H,W) ≥ 0 (e.g. :func:`backend.blend.per_view_confidence`). Each view has the
    colour ``VIEW_COLOURS[v % 8]`` (red, green, blue, yellow, magenta, cyan, orange, violet);
    a texel shows the weight-averaged colour of the views that see it, with brightness
    ``min(1, Σ_v w)``: black = unseen, mixed hues = overlaps. Returns (H,W,3) uint8.
    """
    w = torch.as_tensor(np.asarray(weights) if not isinstance(weights, torch.Tensor) else weights)
    w = w.detach().float().cpu().clamp_min(0.0)
    if w.dim() != 3:
        raise ValueError(f"weights must be (V,H,W), got {tuple(w.shape)}")
    V = w.shape[0]
    colours = torch.tensor([VIEW_COLOURS[i % len(VIEW_COLOURS)] for i in range(V)])  # (V,3)
    total = w.sum(0)
    mix = torch.einsum("vhw,vc->hwc", w, colours) / total.clamp_min(1e-12)[..., None]
    rgb = mix * total.clamp(max=1.0)[..., None]
    return (rgb.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).numpy()


def face_region_mask(model: FaceModel, uv_frags: Fragments, regions: tuple[int, ...] | None = None) -> torch.Tensor:
    """UV texels of the face region: those whose triangle's three vertices all carry one of
    ``regions`` (default ``model.face_mask_regions``; ICT: 0 ``face_narrow``, 1 ``face_outer``).

    uv_frags: :func:`backend.render.rasterize_uv` of the model's UVs (batch 1). Returns (H,W) bool.
    """
    regions = model.face_mask_regions if regions is None else tuple(regions)
    in_region = torch.isin(model.region, torch.tensor(regions, device=model.region.device))  # (N,)
    tri_ok = in_region[model.faces].all(-1)  # (F,)
    fi = uv_frags.face_idx[0]
    return (fi >= 0) & tri_ok.to(fi.device)[fi.clamp_min(0)]


def face_region_coverage(weights, face_tile_mask, threshold: float = 0.1) -> float:
    """Fraction of the UV face region seen well: texels of ``face_tile_mask`` (H,W) bool whose
    total weight Σ_v weights (V,H,W) exceeds ``threshold``. Returns a float in [0,1]."""
    w = torch.as_tensor(np.asarray(weights) if not isinstance(weights, torch.Tensor) else weights)
    m = torch.as_tensor(np.asarray(face_tile_mask) if not isinstance(face_tile_mask, torch.Tensor) else face_tile_mask)
    if w.dim() != 3 or m.shape != w.shape[1:]:
        raise ValueError(f"weights must be (V,H,W) and the mask (H,W), got {tuple(w.shape)}, {tuple(m.shape)}")
    m = m.to(w.device).bool()
    n = int(m.sum())
    if n == 0:
        raise ValueError("the face region mask is empty")
    return float(((w.sum(0) > threshold) & m).sum()) / n


@dataclass(frozen=True)
class DelitViews:
    """Per-view UV maps ready for :func:`backend.blend.multiband_blend`.

    - ``maps``: (V,H,W,3) photo colour / SH shading (delit albedo), 0 where not visible;
    - ``weights``: (V,H,W) :func:`backend.blend.per_view_confidence`;
    - ``texture``: (V,H,W,3) the raw unwrapped photo colour; ``shading``: (V,H,W,3).
    """

    maps: torch.Tensor
    weights: torch.Tensor
    texture: torch.Tensor
    shading: torch.Tensor


def delit_views(
    images: torch.Tensor,
    verts: torch.Tensor,
    faces: torch.Tensor,
    poses: torch.Tensor,
    sh: torch.Tensor,
    camera: Camera,
    uv_frags: Fragments,
    settings: ConfidenceSettings | None = None,
    image_weight: torch.Tensor | None = None,
    depth_jump_px: float = 4.0,
    min_shading: float = 0.05,
) -> DelitViews:
    """Unwrap each photo into UV, divide by its SH shading and weigh it.

    images (V,Hi,Wi,3) [0,1]; verts (V,N,3) model mm (per-view expression) or (1,N,3);
    faces (F,3); poses (V,7) for ``camera``; sh (V,27); uv_frags: the UV rasterisation
    (batch 1) of the same mesh. ``image_weight`` (V,Hi,Wi) optional photo-space weight (skin
    mask). The silhouette term uses the rendered mask of the mesh and its depth jumps
    (> ``depth_jump_px`` screen-depth units: pixels for orthographic cameras).
    Returns :class:`DelitViews` (no gradients).
    """
    V = images.shape[0]
    with torch.no_grad():
        verts = verts.expand(V, -1, -1) if verts.shape[0] == 1 else verts
        rs = RenderSettings()
        rendered = render(verts, faces, poses, camera, None, settings=rs)
        un = unwrap_image(images, verts, faces, poses, camera, uv_frags, fragments=rendered.fragments)
        dist = silhouette_distance(rendered.mask, rendered.depth, depth_jump_px)
        weights = per_view_confidence(un, dist, settings, image_weight=image_weight)
        normals = normal_map(to_camera_space(verts, poses, camera.projection), faces, uv_frags)
        shading = sh_shading(normals, sh).clamp_min(min_shading)
        maps = (un.texture / shading) * un.visible[..., None].to(shading.dtype)
    return DelitViews(maps=maps, weights=weights, texture=un.texture, shading=shading)
