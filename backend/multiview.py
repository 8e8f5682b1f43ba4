"""Multi-view checks and helpers: identity consistency, UV coverage, per-view delit unwraps,
and a synthetic multi-view scene with known answers (tests, benchmarks, demos).

Letters: V views (photos), H×W UV texels, Hi×Wi photo pixels, N mesh vertices.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as Fn

from .blend import ConfidenceSettings, per_view_confidence, silhouette_distance
from .detail import displaced_mesh
from .camera import Camera, to_camera_space
from .facemodel import FaceModel
from .lighting import sh_directional, sh_shading
from .render import Fragments, RenderSettings, normal_map, rasterize_uv, render, unwrap_image

__all__ = [
    "SAME_PERSON_THRESHOLD", "identity_outliers", "VIEW_COLOURS", "coverage_image", "face_region_mask",
    "face_region_coverage", "DelitViews", "delit_views", "SyntheticViews", "synthetic_views", "synthetic_uv_frags",
    "skin_texture",
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


# -- synthetic scene ---------------------------------------------------------------------------
def skin_texture(height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """A skin-like albedo (H,W,3) in [0,1]: a base skin tone with blotchy low-frequency
    brightness (±7 %) and redness, mid-frequency mottling, brown freckles and fine pore noise.
    Deterministic for a given generator state."""

    def octave(cells_h: int, cells_w: int, channels: int) -> torch.Tensor:
        n = torch.randn(1, channels, cells_h, cells_w, generator=generator)
        return Fn.interpolate(n, size=(height, width), mode="bicubic", align_corners=False)[0].permute(1, 2, 0)

    base = torch.tensor([0.72, 0.52, 0.44])
    tone = 1.0 + 0.07 * octave(4, 8, 1) + 0.04 * octave(16, 32, 1)  # brightness, large blotches
    redness = 0.05 * octave(8, 16, 1).clamp_min(0.0) * torch.tensor([1.0, -0.5, -0.3])  # flushed areas
    mottle = 0.025 * octave(max(2, height // 8), max(2, width // 8), 1) * torch.tensor([1.0, 0.8, 0.7])
    spots = (octave(max(2, height // 3), max(2, width // 3), 1) > 2.0).float()
    freckles = 1.0 - 0.3 * spots * torch.tensor([0.7, 0.9, 1.0])  # brown: blue and green drop most
    pores = 0.012 * torch.randn(height, width, 1, generator=generator)
    return ((base * tone + redness + mottle + pores) * freckles).clamp(0.0, 1.0)


@dataclass(frozen=True)
class SyntheticViews:
    """A rendered multi-view scene with its ground truth (all torch, CPU, float32).

    - ``images`` (V,S,S,3) rendered photos (orthographic, background 0), ``masks`` (V,S,S) bool;
    - ``verts`` (1,N,3) mm ground-truth shape, ``faces`` (F,3), ``uv`` (T,2), ``faces_uv`` (F,3);
    - ``poses`` (V,7), ``sh`` (V,27), ``camera``;
    - ``albedo`` (Ht, Ht·tiles, 3) ground-truth UV albedo over ``u_range`` = (0, tiles);
    - ``gains`` (V,3) per-view exposure/white-balance factors applied on top of the SH light
      (what SH delighting with the true light cannot remove; :func:`backend.blend.equalize_views`
      should).
    - ``displacement`` (Ht,Ht) mm along the coarse normal over the face tile, or None. With
      it, the mesh above is the *rendered* one: the displaced dense face tile (one vertex per
      valid texel, :mod:`backend.detail`) followed by the coarse head-tile triangles, with
      matching ``uv``/``faces_uv``; ``coarse_verts`` (1,N,3) is the model mesh either way.
    """

    images: torch.Tensor
    masks: torch.Tensor
    verts: torch.Tensor
    faces: torch.Tensor
    uv: torch.Tensor
    faces_uv: torch.Tensor
    poses: torch.Tensor
    sh: torch.Tensor
    camera: Camera
    albedo: torch.Tensor
    gains: torch.Tensor
    u_range: tuple[float, float]
    coarse_verts: torch.Tensor
    displacement: torch.Tensor | None = None


def synthetic_views(
    model: FaceModel,
    yaws_deg: tuple[float, ...] = (-60.0, 0.0, 60.0),
    size: int = 224,
    tex_res: int = 256,
    seed: int = 0,
    noise: float = 0.01,
    gain_spread: float = 0.08,
    detail_mm: float = 0.0,
) -> SyntheticViews:
    """Render one random face of ``model`` from several yaw angles under different SH lights.

    Random identity (σ 0.7) and a light expression, the :func:`skin_texture` albedo over all
    UV tiles (``tex_res`` texels per tile), orthographic camera ``size``², the head about 60 %
    of the image height. View v: yaw ``yaws_deg[v]`` (ry of :mod:`backend.camera`: positive turns the
    face towards the image's right, showing the subject's right cheek), a directional light from a
    different side with ambient term, an RGB gain around 1 (± ``gain_spread``) and Gaussian
    pixel noise σ ``noise``. ``detail_mm`` > 0 adds a wrinkle-like UV displacement of that
    amplitude (mm) to the face tile, rendered as a dense displaced mesh (see
    :class:`SyntheticViews`). Deterministic for a seed.
    """
    gen = torch.Generator().manual_seed(seed)
    V = len(yaws_deg)
    with torch.no_grad():
        coeffs = model.sample(1, generator=gen, id_scale=0.7, exp_scale=0.15)
        verts = coeffs["verts"].float().cpu()
        tiles = model.uv_tiles
        albedo = skin_texture(tex_res, tex_res * tiles, gen)
        cam = Camera(size, size)
        poses = torch.zeros(V, 7)
        poses[:, 0] = 0.6 * size / 230.0  # ~230 mm chin-to-crown at 60 % of the image
        poses[:, 2] = torch.tensor([math.radians(y) for y in yaws_deg])
        poses[:, 5] = 0.12 * size  # raise the head so the face sits near the centre
        angles = torch.linspace(-0.9, 0.9, V).tolist()  # light azimuths, shuffled over the views
        dirs = torch.stack([torch.tensor([math.sin(a), 0.4, math.cos(a)]) for a in angles])
        dirs = dirs[torch.randperm(V, generator=gen)]
        sh = sh_directional(dirs, 0.75, 0.45)
        gains = 1.0 + gain_spread * (2.0 * torch.rand(V, 3, generator=gen) - 1.0)
        settings = RenderSettings(u_range=(0.0, float(tiles)))
        mesh = (verts, model.faces.cpu(), model.uv.cpu(), model.faces_uv.cpu())
        disp = None
        if detail_mm > 0:
            disp = _wrinkles(tex_res, gen) * detail_mm
            mesh = displaced_mesh(model, verts, disp)
        out = render(
            mesh[0].expand(V, -1, -1), mesh[1], poses, cam, sh, texture=albedo, uv=mesh[2], faces_uv=mesh[3],
            settings=settings,
        )
        images = out.image * gains.view(V, 1, 1, 3) + noise * torch.randn(out.image.shape, generator=gen)
        images = images.clamp(0.0, 1.0) * out.alpha[..., None]
    return SyntheticViews(
        images=images, masks=out.mask, verts=mesh[0], faces=mesh[1], uv=mesh[2], faces_uv=mesh[3], poses=poses,
        sh=sh, camera=cam, albedo=albedo, gains=gains, u_range=(0.0, float(tiles)), coarse_verts=verts,
        displacement=disp,
    )


def _wrinkles(size: int, generator: torch.Generator) -> torch.Tensor:
    """(S,S) wrinkle-like pattern in [−1,1]: thin horizontal creases (forehead-like) whose
    depth varies smoothly, plus fine bumps."""
    rows = torch.arange(size, dtype=torch.float32)[:, None]
    wobble = Fn.interpolate(torch.randn(1, 1, 4, 4, generator=generator), size=(size, size), mode="bicubic",
                            align_corners=False)[0, 0]
    creases = torch.sin(math.pi * (rows / (size / 14.0) + 0.3 * wobble)) ** 4
    depth = Fn.interpolate(torch.rand(1, 1, 6, 6, generator=generator), size=(size, size), mode="bicubic",
                           align_corners=False)[0, 0].clamp(0, 1)
    bumps = Fn.avg_pool2d(torch.randn(1, 1, size, size, generator=generator), 3, 1, 1)[0, 0]
    return (-creases * depth + 0.3 * bumps).clamp(-1.0, 1.0)


def synthetic_uv_frags(scene: SyntheticViews, tex_res: int) -> Fragments:
    """UV rasterisation of the synthetic scene's mesh at ``tex_res`` texels per tile."""
    tiles = int(round(scene.u_range[1] - scene.u_range[0]))
    return rasterize_uv(scene.uv, scene.faces_uv, tex_res, tex_res * tiles, scene.u_range)
