"""Multi-view reconstruction on real photos: a shippable rendered frame set, a seam
metric for blended UV albedos, and same-person photo sets found in a landmark dev set.

- :func:`render_frames`: frames of a reconstructed real head (e.g. matplotlib's public-domain
  ``grace_hopper``) rendered from several yaws under different lights and RGB gains, with the
  projected model landmarks (jaw on the silhouette). They are generated at run time, never stored.
- :func:`seam_stats` / :func:`blend_comparison`: how visible the borders between views are in a
  blended albedo (mean gradient on the dominant-view borders / elsewhere in the face), for the
  pipeline's albedo and for simpler blends of the same per-view maps.
- :func:`dev_descriptors` / :func:`same_person_sets`: face descriptors and landmark yaw of a photo
  folder (cached), and groups of ≥3 photos of one person with different yaw.

Letters: V views, H×W UV texels, S frame size (pixels), N photos.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as Fn
from PIL import Image
from scipy.sparse.csgraph import connected_components

from backend.blend import equalize_views, fill_holes, multiband_blend, smoothstep, weighted_average
from backend.camera import Camera, project
from backend.detail import with_dense_face_tile
from backend.facemodel import FaceModel
from backend.fit.contour import contour_candidates, select_contour
from backend.fit.pose_init import INNER_LANDMARKS, fit_orthographic_pose
from backend.head import Head
from backend.identity import identity_features, load_identity_net
from backend.lighting import sh_directional
from backend.multiview import SAME_PERSON_THRESHOLD
from backend.preview_render import render_head
from backend.render import rasterize_uv
from backend.texture import DelitViews, delight_views, face_region_mask

from .readers import read_landmarks_json

__all__ = [
    "FrameSettings", "RenderedFrames", "render_frames", "trusted_albedo", "SeamStats", "luminance_gradient",
    "seam_stats", "view_maps", "blend_comparison",
    "DevDescriptors", "dev_descriptors", "landmark_yaw", "same_person_sets",
]


# -- rendered frames of a real head --------------------------------------------------------------
@dataclass(frozen=True)
class FrameSettings:
    """Options of :func:`render_frames`.

    - ``yaws_deg``: one frame per yaw (ry of :mod:`backend.camera`; + shows the subject's right cheek).
    - ``size``: frame side, pixels; ``face_fraction``: chin-to-brow height / frame height.
    - ``light_azimuths_deg``: per frame, the directional light's angle from the camera axis
      (+ = from the image's right), raised by ``light_elevation``; ``light_intensity`` and
      ``ambient`` as :func:`backend.lighting.sh_directional`.
    - ``gains``: per frame RGB factors (exposure / white balance) applied after shading.
    - ``background``: grey level of the background, plus pixel noise σ ``noise`` everywhere.
    - ``seed``: noise seed.
    - ``trusted_weight``: the source head's albedo is kept where its summed view weight
      (``head.view_weights``) reaches this, and fades (smoothstep from half of it) to its median
      seen skin colour elsewhere: the grazing rim of a single photo is stretched and smeared,
      which no real photo of the side would show. 0 keeps the albedo as is.
    """

    yaws_deg: tuple[float, ...] = (-50.0, 0.0, 50.0)
    size: int = 400
    face_fraction: float = 0.42
    light_azimuths_deg: tuple[float, ...] = (40.0, -35.0, 10.0)
    light_elevation: float = 0.35
    light_intensity: float = 0.7
    ambient: float = 0.45
    gains: tuple[tuple[float, float, float], ...] = ((1.08, 0.98, 0.90), (0.94, 1.0, 1.07), (1.0, 1.05, 0.95))
    background: float = 0.42
    noise: float = 0.012
    seed: int = 0
    trusted_weight: float = 0.7


@dataclass(frozen=True)
class RenderedFrames:
    """Frames from :func:`render_frames`.

    - ``images``: V (S,S,3) uint8 RGB photos; ``masks`` (V,S,S) bool head pixels;
    - ``landmarks68``: V (68,2) float64 projected model landmarks, photo pixels (jaw 0–16 on
      the silhouette, as the fit defines them);
    - ``poses`` (V,7) orthographic, ``sh`` (V,27), ``gains`` (V,3).
    """

    images: list[np.ndarray]
    masks: np.ndarray
    landmarks68: list[np.ndarray]
    poses: torch.Tensor
    sh: torch.Tensor
    gains: torch.Tensor


def render_frames(head: Head, model: FaceModel, settings: FrameSettings | None = None) -> RenderedFrames:
    """Render ``head`` (albedo, detailed geometry when present) as the "photos" of a multi-view set.

    model: the face model the head was fitted with (its landmark vertices and jaw contour rows).
    Raises ValueError when the head has no albedo or the per-frame settings disagree in length.
    """
    s = settings or FrameSettings()
    V = len(s.yaws_deg)
    if head.albedo is None:
        raise ValueError("render_frames needs a textured head (head.albedo): reconstruct with the albedo stage")
    if not (len(s.light_azimuths_deg) == len(s.gains) == V):
        raise ValueError(f"{V} yaws but {len(s.light_azimuths_deg)} lights and {len(s.gains)} gains: give one each")
    coarse = torch.from_numpy(head.vertices).float()[None]  # (1,N,3) mm
    lm_ids = model.landmarks68.cpu()
    face_h = float(coarse[0, lm_ids, 1].max() - coarse[0, lm_ids, 1].min())  # brow to chin, mm
    centre = coarse[0, lm_ids].mean(0)  # (3,) mm
    f = s.face_fraction * s.size / face_h
    poses = torch.zeros(V, 7)
    poses[:, 0] = f
    poses[:, 2] = torch.tensor([math.radians(y) for y in s.yaws_deg])
    poses[:, 4:7] = -f * _rotate_y(centre, poses[:, 2])  # landmark centroid at the frame centre
    poses[:, 6] = 0.0
    az = torch.tensor([math.radians(a) for a in s.light_azimuths_deg])
    dirs = torch.stack([az.sin(), torch.full_like(az, s.light_elevation), az.cos()], -1)
    sh = sh_directional(dirs, s.light_intensity, s.ambient)
    gains = torch.tensor(s.gains, dtype=torch.float32)
    gen = torch.Generator().manual_seed(s.seed)
    cam = Camera(s.size, s.size)
    source = trusted_albedo(head, s.trusted_weight)
    with torch.no_grad():
        image, mask = render_head(replace(head, albedo=source), poses, cam, sh, background=(0.0, 0.0, 0.0))
        a = mask[..., None].float()
        rows = torch.linspace(-1.0, 1.0, s.size).view(1, s.size, 1, 1)
        bg = s.background * (1.0 + 0.15 * rows)  # a soft vertical gradient
        img = image * gains.view(V, 1, 1, 3) * a + bg * (1 - a) + s.noise * torch.randn(image.shape, generator=gen)
        images = [(im.clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8) for im in img]
        screen = project(coarse.expand(V, -1, -1), poses, cam)[..., :2]  # (V,N,2)
        vid = model.landmarks68.cpu()[None].repeat(V, 1)
        vid[:, :17] = select_contour(screen, contour_candidates(model.mean.cpu(), model.landmarks68.cpu(),
                                                                model.face_vertex_mask.cpu()))
        lms = [screen[v, vid[v]].double().numpy() for v in range(V)]
    return RenderedFrames(images=images, masks=mask.numpy(), landmarks68=lms, poses=poses, sh=sh, gains=gains)


def trusted_albedo(head: Head, trusted_weight: float) -> np.ndarray:
    """``head.albedo`` (R,R·tiles,3) kept where Σ_v ``head.view_weights`` ≥ ``trusted_weight``,
    faded (smoothstep over [trusted_weight/2, trusted_weight]) to the median colour of those
    texels elsewhere. Unchanged without view weights or with ``trusted_weight`` ≤ 0."""
    albedo = np.asarray(head.albedo, np.float32)
    if head.view_weights is None or trusted_weight <= 0:
        return albedo
    w = np.asarray(head.view_weights, np.float32).sum(0)
    if w.shape != albedo.shape[:2]:
        raise ValueError(f"view weights {w.shape} do not match the albedo {albedo.shape[:2]}")
    trusted = w >= trusted_weight
    if not trusted.any():
        return albedo
    fill = np.median(albedo[trusted], axis=0)
    keep = smoothstep(torch.from_numpy((w - trusted_weight / 2) / (trusted_weight / 2))).numpy()[..., None]
    return (albedo * keep + fill * (1 - keep)).astype(np.float32)


def _rotate_y(p: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Points (3,) rotated by each yaw (B,) about +Y (as ``euler_to_rotation`` with rx=rz=0). Returns (B,3)."""
    c, s = yaw.cos(), yaw.sin()
    return torch.stack([c * p[0] + s * p[2], p[1].expand_as(c), -s * p[0] + c * p[2]], -1)


# -- seam visibility ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SeamStats:
    """Result of :func:`seam_stats` (gradient units: luminance per texel, albedo in [0,1]).

    - ``border``: mean |∇L| on texels within ``band`` texels of a dominant-view border;
    - ``interior``: mean |∇L| on the other measured face texels;
    - ``ratio`` = border / interior: ≈ 1 when the borders are invisible, > 1 with seams;
    - ``border_texels`` / ``interior_texels``: how many texels each mean is over.
    """

    border: float
    interior: float
    ratio: float
    border_texels: int
    interior_texels: int

    def as_dict(self) -> dict[str, float]:
        return {"border": self.border, "interior": self.interior, "ratio": self.ratio,
                "border_texels": self.border_texels, "interior_texels": self.interior_texels}


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Square dilation of a (H,W) bool mask by ``radius`` texels."""
    if radius <= 0:
        return mask
    k = 2 * radius + 1
    return Fn.max_pool2d(mask[None, None].float(), k, 1, radius)[0, 0] > 0


def luminance_gradient(image) -> torch.Tensor:
    """|∇L| of an (H,W,3) map: central differences of its Rec. 709 luminance, texels as the unit
    (0 on the outer rows/columns). Returns (H,W) float32."""
    lum = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image).float()
    lum = lum @ torch.tensor([0.2126, 0.7152, 0.0722], device=lum.device)
    gx = torch.zeros_like(lum)
    gy = torch.zeros_like(lum)
    gx[:, 1:-1] = (lum[:, 2:] - lum[:, :-2]) / 2
    gy[1:-1] = (lum[2:] - lum[:-2]) / 2
    return (gx * gx + gy * gy).sqrt()


def seam_stats(albedo, weights, region, band: int = 2, min_weight: float = 0.25, margin: int = 3,
               smooth=None) -> SeamStats:
    """Seam visibility of a blended albedo: mean gradient on the dominant-view borders vs. elsewhere.

    albedo (H,W,3) in [0,1] (or any colour map, e.g. a residual); weights (V,H,W) per-view
    blending weights; region (H,W) bool the texels to measure (e.g.
    :func:`backend.texture.face_region_mask`). Measured texels: in the region, total weight >
    ``min_weight``, more than ``margin`` texels from the region's and the seen area's edges (UV
    island borders are not seams) and, when given, in ``smooth`` (H,W) bool (e.g. plain skin:
    dominant-view borders follow the nose, eyes and lips, whose own texture would otherwise
    dominate the border mean). The dominant view is argmax_v w; "border" texels lie within
    ``band`` texels of a 4-neighbour change of the dominant view, "interior" texels farther than
    2·``band``+1. Gradient: :func:`luminance_gradient`. Returns :class:`SeamStats`.
    """
    a = torch.as_tensor(np.asarray(albedo)).float()
    w = torch.as_tensor(np.asarray(weights)).float()
    r = torch.as_tensor(np.asarray(region)).bool()
    if a.dim() != 3 or w.dim() != 3 or a.shape[:2] != w.shape[1:] or r.shape != a.shape[:2]:
        raise ValueError(f"albedo (H,W,3), weights (V,H,W) and region (H,W) must agree, got "
                         f"{tuple(a.shape)}, {tuple(w.shape)}, {tuple(r.shape)}")
    grad = luminance_gradient(a)
    seen = r & (w.sum(0) > min_weight)
    measured = ~_dilate(~seen, margin)
    if smooth is not None:
        measured &= torch.as_tensor(np.asarray(smooth)).bool()
    dom = w.argmax(0)
    change = torch.zeros_like(seen)
    dx = (dom[:, 1:] != dom[:, :-1]) & seen[:, 1:] & seen[:, :-1]
    dy = (dom[1:] != dom[:-1]) & seen[1:] & seen[:-1]
    change[:, 1:] |= dx
    change[:, :-1] |= dx
    change[1:] |= dy
    change[:-1] |= dy
    border = measured & _dilate(change, band)
    interior = measured & ~_dilate(change, 2 * band + 1)
    nb, ni = int(border.sum()), int(interior.sum())
    if nb == 0 or ni == 0:
        raise ValueError(f"no texels to compare ({nb} on view borders, {ni} elsewhere): are there several views?")
    b, i = float(grad[border].mean()), float(grad[interior].mean())
    return SeamStats(border=b, interior=i, ratio=b / max(i, 1e-12), border_texels=nb, interior_texels=ni)


def view_maps(head: Head, model: FaceModel, resolution: int | None = None, detailed: bool = True):
    """Per-view delit UV albedos of a multi-view head, recomputed from its photos, fitted poses
    and lights with :func:`backend.texture.delight_views`, the de-lighting the pipeline's albedo uses
    (without the photo-space face mask the pipeline weights its crops with).

    Geometry: with ``detailed``, a dense mesh and one expression shared by all views (the
    default fit), the fit's dense face tile with the coarse rest of the head (its normals
    delight the wrinkles, as the pipeline does); otherwise each view's coarse mesh (neutral +
    its expression). resolution: texels per tile (default: the head's albedo's). Needs
    ``view.image`` on every view. Returns :class:`backend.texture.DelitViews` ((V,H,W,3) maps,
    0 where the view does not see the texel; (V,H,W) weights ...).
    """
    R = resolution or head.albedo.shape[0]
    u_range = (0.0, float(head.uv_tiles))
    exps = np.stack([np.asarray(v.exp, np.float32) for v in head.views])
    shared = bool(np.allclose(exps, exps[:1], atol=1e-6))
    if detailed and shared and head.dense_vertices is not None:
        # the fit's dense face tile with the coarse rest of the head, as the pipeline delights
        dense = (torch.from_numpy(np.asarray(head.dense_vertices, np.float32))[None],
                 torch.from_numpy(np.asarray(head.dense_faces, np.int64)),
                 torch.from_numpy(np.asarray(head.dense_uv, np.float32)))
        coarse = (torch.from_numpy(np.asarray(head.vertices, np.float32))[None], model.faces.cpu(), model.uv.cpu(),
                  model.faces_uv.cpu())
        verts, faces, uv, faces_uv = with_dense_face_tile(dense, coarse)
        meshes = [verts] * len(head.views)
    else:
        faces, uv, faces_uv = model.faces.cpu(), model.uv.cpu(), model.faces_uv.cpu()
        neutral = torch.from_numpy(head.neutral).float()
        basis = torch.from_numpy(head.exp_basis).float() if head.exp_basis is not None else None
        meshes = [(neutral if basis is None else neutral + torch.einsum("k,kvc->vc", torch.from_numpy(e), basis))[None]
                  for e in exps]
    parts = []
    for view, verts in zip(head.views, meshes):  # a loop over views (photo sizes may differ)
        if view.image is None:
            raise ValueError(f"{view.name}: view_maps needs the photo in view.image")
        w, h = view.image_size
        img = torch.from_numpy(view.image).float()[None] / 255.0
        parts.append(delight_views(img, verts, faces, uv, faces_uv, torch.from_numpy(view.pose).float()[None],
                                   Camera(w, h, view.projection), torch.from_numpy(view.sh).float()[None], R, R * head.uv_tiles,
                                   u_range).maps())
    return DelitViews(*(torch.cat([getattr(p, k) for p in parts]) for k in ("maps", "weights", "texture", "shading")))


def blend_comparison(head: Head, model: FaceModel, truth=None, smooth_quantile: float = 0.5) -> dict[str, dict]:
    """Seam statistics of the head's albedo and of other blends of the same views.

    All use the pipeline's weights ``head.view_weights`` (at the albedo's resolution; zero where
    the recomputed map has no data) and the face region of ``model``; per-view maps come from
    :func:`view_maps` (detailed normals when the head has them).
    Measured on plain skin only: texels whose structure gradient is at most its
    ``smooth_quantile`` over the seen face, the structure being ``truth`` (H,W,3) when given (the
    albedo the photos were rendered with), else the weight-averaged gradient of the per-view maps.
    Returns {blend: {"albedo": :meth:`SeamStats.as_dict`, "residual": ... (with ``truth``: of
    ``gain·blend − truth``, one least-squares gain per channel), "error": mean |residual|}} for
    - ``pipeline``: ``head.albedo`` as written (gain equalisation + multi-band, detail normals);
    - ``multiband_equalized``: :func:`~backend.blend.equalize_views` + :func:`~backend.blend.multiband_blend`;
    - ``average``: :func:`~backend.blend.weighted_average` of the raw maps (naive);
    - ``average_equalized``: weighted average after gain equalisation;
    - ``winner_take_all``: each texel from its dominant view (hard seams, for reference).
    """
    if head.view_weights is None or head.albedo is None or len(head.views) < 2:
        raise ValueError("blend_comparison needs a multi-view head with albedo and view_weights")
    V, H, W = head.view_weights.shape
    frags = rasterize_uv(model.uv.cpu(), model.faces_uv.cpu(), H, W, (0.0, float(head.uv_tiles)))
    region = face_region_mask(model.cpu(), frags)
    maps = view_maps(head, model, H).maps.clamp(0.0, 1.0)
    w = torch.from_numpy(head.view_weights).float() * (maps.sum(-1) > 0)  # where the recomputed map has data
    seen = region & (w.sum(0) > 0.25)
    if truth is not None:
        truth = torch.as_tensor(np.asarray(truth)).float()
        if truth.shape != (H, W, 3):
            raise ValueError(f"truth must be ({H},{W},3) like the albedo, got {tuple(truth.shape)}")
        structure = luminance_gradient(truth)
    else:
        per_view = torch.stack([luminance_gradient(m) for m in maps])  # (V,H,W)
        structure = (per_view * w).sum(0) / w.sum(0).clamp_min(1e-12)
    smooth = structure <= torch.quantile(structure[seen], smooth_quantile)
    eq = torch.as_tensor(equalize_views(maps, w).maps)
    covered = w.sum(0) > 0
    pick = w.argmax(0)[None, ..., None].expand(1, H, W, 3)
    blends = {
        "pipeline": torch.from_numpy(head.albedo).float(),
        "multiband_equalized": torch.as_tensor(multiband_blend(eq, w)[0]).clamp(0, 1),
        "average": fill_holes(weighted_average(maps, w)[0], covered),
        "average_equalized": fill_holes(weighted_average(eq, w)[0], covered),
        "winner_take_all": fill_holes(torch.gather(maps, 0, pick)[0], covered),
    }
    out = {}
    for name, img in blends.items():  # five blends
        entry = {"albedo": seam_stats(img, w, region, smooth=smooth).as_dict()}
        if truth is not None:
            gain = (img[seen] * truth[seen]).sum(0) / (img[seen] ** 2).sum(0).clamp_min(1e-12)
            residual = img * gain - truth
            entry["residual"] = seam_stats(residual, w, region, smooth=smooth).as_dict()
            entry["error"] = float(residual[seen].abs().mean())
        out[name] = entry
    return out


# -- same-person sets in a landmark dev set ------------------------------------------------------
@dataclass(frozen=True)
class DevDescriptors:
    """Per photo of a folder: ``names`` (N,), ``descriptors`` (N,128) float32 face descriptors
    (:mod:`backend.identity`), ``yaw_deg`` (N,) head yaw from the landmarks (:func:`landmark_yaw`),
    ``colourfulness`` (N,) mean max−min RGB channel spread in the landmark box ([0,1]; ≈ 0 for
    black-and-white photos)."""

    names: list[str]
    descriptors: np.ndarray
    yaw_deg: np.ndarray
    colourfulness: np.ndarray


def landmark_yaw(model: FaceModel, landmarks68: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Head yaw (degrees, ry of :mod:`backend.camera`) from 68 landmarks by the closed-form
    orthographic pose of the model's mean inner landmarks (17–67). landmarks68 (N,68,2) px."""
    ids = model.landmarks68.cpu()[list(INNER_LANDMARKS)]
    p3 = model.mean.cpu().double()[ids][None].expand(len(landmarks68), -1, -1)
    p2 = torch.from_numpy(np.asarray(landmarks68, np.float64)[:, list(INNER_LANDMARKS)])
    pose = fit_orthographic_pose(p3, p2, Camera(*image_size))
    return np.degrees(pose[:, 2].numpy())


def dev_descriptors(folder: str | Path, model: FaceModel, cache: str | Path | None = None,
                    batch: int = 32, names: list[str] | None = None) -> DevDescriptors:
    """Face descriptors, yaw and colourfulness of the photos of a landmark set laid out like
    faces_dev (``images/*.jpg`` + ``landmarks.json``): all listed photos, or only ``names``.
    Cached in ``cache`` (.npz; reused when it lists the same names). Reads the photos in place;
    writes only ``cache``. Raises FileNotFoundError when no listed photo exists."""
    folder = Path(folder)
    lms = read_landmarks_json(folder / "landmarks.json")
    names = sorted(n for n in (lms if names is None else names) if n in lms and (folder / "images" / n).exists())
    if not names:
        raise FileNotFoundError(f"{folder}: no photos listed in landmarks.json were found under images/")
    if cache is not None and Path(cache).exists():
        doc = np.load(cache)
        if list(doc["names"]) == names and "colourfulness" in doc:
            return DevDescriptors(names, doc["descriptors"], doc["yaw_deg"], doc["colourfulness"])
    net = load_identity_net()
    desc, yaws, colour = [], [], []
    for start in range(0, len(names), batch):  # a loop over photo batches
        chunk = names[start : start + batch]
        imgs = [np.asarray(Image.open(folder / "images" / n).convert("RGB")) for n in chunk]
        sizes = {im.shape[:2] for im in imgs}
        pts = np.stack([lms[n] for n in chunk])
        colour.extend(_colourfulness(im, p) for im, p in zip(imgs, pts))
        if len(sizes) == 1:
            x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255.0
            with torch.no_grad():
                desc.append(identity_features(x, torch.from_numpy(pts).float(), net).numpy())
            h, w = sizes.pop()
            yaws.append(landmark_yaw(model, pts, (w, h)))
        else:  # mixed sizes: one at a time
            for im, p in zip(imgs, pts):
                x = torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255.0
                with torch.no_grad():
                    desc.append(identity_features(x, torch.from_numpy(p[None]).float(), net).numpy())
                yaws.append(landmark_yaw(model, p[None], (im.shape[1], im.shape[0])))
    out = DevDescriptors(names, np.concatenate(desc).astype(np.float32), np.concatenate(yaws).astype(np.float32),
                         np.asarray(colour, np.float32))
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, names=np.array(names), descriptors=out.descriptors, yaw_deg=out.yaw_deg,
                 colourfulness=out.colourfulness)
    return out


def _colourfulness(image: np.ndarray, landmarks68: np.ndarray) -> float:
    """Mean (max − min) over RGB of the pixels in the landmarks' box, image (H,W,3) uint8 → [0,1]."""
    h, w = image.shape[:2]
    x0, y0 = np.clip(np.floor(landmarks68.min(0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(landmarks68.max(0)).astype(int) + 1, 1, [w, h])
    box = image[y0:y1, x0:x1].astype(np.float32) / 255.0
    return float((box.max(-1) - box.min(-1)).mean()) if box.size else 0.0


def _photo_id(name: str) -> str:
    """``helen_train_<photoid>_<face>.jpg`` → ``<photoid>`` (faces of one photo are different people)."""
    stem = Path(name).stem
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def same_person_sets(dev: DevDescriptors, threshold: float = 0.5, min_views: int = 3,
                     min_spread_deg: float = 30.0, min_colourfulness: float = 0.0) -> list[dict]:
    """Groups of photos of one person with clearly different yaw.

    Photos are linked when their descriptor distance is below ``threshold`` (stricter than
    :data:`backend.multiview.SAME_PERSON_THRESHOLD` = 0.6 by default, to avoid look-alikes), they
    come from different photos (faces of one photo are different people) and both reach
    ``min_colourfulness`` (e.g. 0.02 leaves out black-and-white photos). Each connected group keeps
    one face per source photo and, of those, ``min_views`` photos spread over its yaw range (the
    most negative, the most positive and those nearest to evenly spaced yaws between); the kept
    photos must all be pairwise closer than 0.6 and span at least ``min_spread_deg``.
    dev: :class:`DevDescriptors`. Returns dicts ``{"names", "yaw_deg", "max_distance",
    "spread_deg"}``, widest spread first.
    """
    d = np.linalg.norm(dev.descriptors[:, None] - dev.descriptors[None], axis=-1)  # (N,N)
    pid = np.array([_photo_id(n) for n in dev.names])
    ok = dev.colourfulness >= min_colourfulness
    link = (d < threshold) & (pid[:, None] != pid[None]) & ok[:, None] & ok[None]
    n_comp, label = connected_components(link, directed=False)
    sets = []
    for c in range(n_comp):  # a loop over groups
        idx = np.flatnonzero(label == c)
        if len(idx) < min_views or not ok[idx].all():
            continue
        # one face per source photo: keep the one closest to the group
        idx = idx[np.argsort(d[np.ix_(idx, idx)].mean(1))]
        _, first = np.unique(pid[idx], return_index=True)
        idx = idx[np.sort(first)]
        if len(idx) < min_views:
            continue
        order = idx[np.argsort(dev.yaw_deg[idx])]
        targets = np.linspace(dev.yaw_deg[order[0]], dev.yaw_deg[order[-1]], min_views)
        pick = [int(np.argmin(np.abs(dev.yaw_deg[order] - t))) for t in targets]
        chosen = order[sorted(set(pick))]
        if len(chosen) < min_views:
            continue
        sub = d[np.ix_(chosen, chosen)]
        if sub.max() >= SAME_PERSON_THRESHOLD:
            continue
        spread = float(dev.yaw_deg[chosen].max() - dev.yaw_deg[chosen].min())
        if spread < min_spread_deg:
            continue
        sets.append({"names": [dev.names[i] for i in chosen], "yaw_deg": [float(dev.yaw_deg[i]) for i in chosen],
                     "max_distance": float(sub.max()), "spread_deg": spread})
    return sorted(sets, key=lambda s: -s["spread_deg"])
