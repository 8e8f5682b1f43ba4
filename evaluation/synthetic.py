"""Synthetic faces with known answers: random 3DMM heads rendered with random pose and light.

Used by ``photohead evaluate synthetic`` and by the coarse-fit tests. Each face draws:
- identity x_id ~ N(0, ``id_scale``²) (the model's unit-variance coefficients);
- expression: :meth:`FaceModel.sample` (|N(0, ``exp_scale``²)| blendshape weights in [0,1]);
- albedo: a UV texture (the model has no albedo basis): a random skin tone with smooth
  low-frequency variation, darker brows and redder lips along the model's landmark chains
  (``features``; an albedo edge that is not geometry, which the fit must not turn into shape);
- pose: yaw uniform in ±``yaw_max_deg``, pitch ±``pitch_max_deg``, roll ±``roll_max_deg``,
  orthographic scale so the face (landmark box) spans ``face_fraction`` of the image, centred
  with a small random shift;
- light: ambient + one directional SH light from the camera hemisphere;
- optional UV detail (``detail=True``): a displacement map (mm) of wrinkle-like bands and
  bumps (0.3–1.5 mm) inside the face tile (:func:`random_displacement`). The image renders the
  face tile as a dense mesh displaced by the map (:func:`backend.detail.displaced_mesh`, one
  vertex per texel), so detail finer than the model's mesh shows; ``vertices`` holds the
  model's vertices moved by the map sampled at their UVs.
The rendering call is isolated in :func:`render_face` (``backend.render``).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import map_coordinates, zoom

from backend.camera import Camera, euler_to_rotation, project
from backend.detail import dense_topology, displace, displaced_mesh
from backend.export import save_head
from backend.fit.contour import contour_candidates, select_contour
from backend.geometry import vertex_normals_np
from backend.head import Head, ViewResult
from backend.lens import FRAME_DIAGONAL_MM
from backend.lighting import sh_directional, vertex_normals
from backend.render import interpolate, rasterize, sample_texture
from backend.render.renderer import RenderSettings, render
from backend.texture import face_region_mask
from backend.uvmaps import face_tile_layout, face_tile_triangles, grid_normals, uv_position_map

from .metrics import apply_similarity
from .synthetic_cycles import render_cycles
from .synthetic_scene import Lights, busy_background, hair_tile, hair_uv, parts_mesh, perspective_pose, random_lights, scalp_faces

__all__ = ["SyntheticSettings", "SCENES", "SyntheticFace", "make_face", "make_faces", "render_face", "random_albedo", "feature_polylines",
           "random_displacement", "write_known_answer_scans", "KNOWN_SCANS_EXPECTED", "vertex_displacement", "visible_face_texels",
           "true_detail_surface", "resample_map", "displacement_in_image"]


@dataclass(frozen=True)
class SyntheticSettings:
    """How synthetic faces are drawn (see the module docstring). Image size in pixels, angles in degrees."""

    size: int = 256
    id_scale: float = 1.0
    exp_scale: float = 0.2
    yaw_max_deg: float = 40.0
    pitch_max_deg: float = 10.0
    roll_max_deg: float = 5.0
    face_fraction: float = 0.45
    texture_size: int = 256
    ambient: tuple[float, float] = (0.6, 1.0)
    directional: tuple[float, float] = (0.1, 0.5)
    detail: bool = False
    detail_amplitude_mm: float = 1.5
    background: tuple[float, float, float] | None = None  # None: random grey
    features: bool = True  # darker brows and lips in the albedo
    # less friendly renders (:mod:`.synthetic_scene`; all off: the classic suite, bit for bit)
    parts: bool = False  # eyes (sclera, iris, pupil), teeth, gums, tongue, mouth and eye sockets
    hair: bool = False  # a hair-coloured scalp (hairline 15–45 mm above the brows; 15 % stay bald)
    projection: str = "orthographic"  # or "perspective": a lens of ``focal_35mm`` at the framing distance
    focal_35mm: tuple[float, float] = (35.0, 85.0)  # 35-mm-equivalent focal length range (perspective)
    light_colour: float = 0.0  # each light's warm/cool tint: red ×(1+a), blue ×(1−a), |a| ≤ this
    second_light: bool = False  # a second directional light from anywhere, 20–70 % of the key's strength
    busy_background: bool = False  # a coloured gradient with blotches instead of a flat grey
    pixel_noise: float = 0.0  # Gaussian pixel noise, standard deviation in 8-bit levels
    renderer: str = "backend"  # or "cycles": Blender's path tracer through bpy (:mod:`.synthetic_cycles`)

    @property
    def friendly(self) -> bool:
        """True for the classic scene (none of the less friendly options)."""
        return not (self.parts or self.hair or self.projection != "orthographic" or self.light_colour
                    or self.second_light or self.busy_background or self.pixel_noise or self.renderer != "backend")


# The suite's scenes: ``classic`` (bald, eyeless, orthographic, one white light; the settings the
# true-landmark tables were measured with), ``realistic`` (eyes and teeth, hair, a 35–85 mm lens,
# coloured key + second light, a busy background, noise: the default with a detector) and
# ``realistic_cycles`` (the same heads, cameras and lights path-traced by Blender's Cycles).
SCENES: dict[str, SyntheticSettings] = {
    "classic": SyntheticSettings(),
    "realistic": SyntheticSettings(parts=True, hair=True, projection="perspective", light_colour=0.15,
                                   second_light=True, ambient=(0.4, 0.9), directional=(0.2, 0.8),
                                   busy_background=True, pixel_noise=2.0),
}
SCENES["realistic_cycles"] = replace(SCENES["realistic"], renderer="cycles")  # path-traced (bpy), same draws


@dataclass
class SyntheticFace:
    """One synthetic sample and its ground truth.

    - ``image`` (H,W,3) uint8 RGB; ``mask`` (H,W) bool pixels covered by the head.
    - ``id`` (K_id,), ``exp`` (K_exp,), ``pose`` (7,) (backend.camera, in ``projection``), ``sh`` (27,).
    - ``vertices`` (V,3) mm model space (identity + expression [+ detail]); ``neutral`` (V,3) mm
      identity only; ``landmarks68`` (68,2) pixels (projected model landmark vertices);
      ``contour68`` (68,2) the same with the jaw points 0–16 on the silhouette (sliding contour of
      ``backend.fit.contour``, what a 2-D annotator marks); ``yaw_deg`` (ry in degrees).
    - ``albedo`` (Ht, Ht·tiles, 3) float32 in [0,1] top row = v 1; ``displacement`` (Ht, Ht·tiles)
      mm or None; ``coarse_vertices`` (V,3) mm the shape before the detail.
    """

    image: np.ndarray
    mask: np.ndarray
    id: np.ndarray
    exp: np.ndarray
    pose: np.ndarray
    sh: np.ndarray
    vertices: np.ndarray
    landmarks68: np.ndarray
    yaw_deg: float
    albedo: np.ndarray
    displacement: np.ndarray | None = None
    neutral: np.ndarray | None = None
    contour68: np.ndarray | None = None
    coarse_vertices: np.ndarray | None = None
    projection: str = "orthographic"


def true_focal_35mm(face: SyntheticFace) -> float:
    """The render's lens as a photo's EXIF FocalLengthIn35mmFilm gives it (mm, over the image's
    diagonal, :mod:`backend.lens`); ∞ for an orthographic render."""
    if face.projection != "perspective":
        return math.inf
    h, w = face.image.shape[:2]
    return float(face.pose[0]) * FRAME_DIAGONAL_MM / math.hypot(w, h)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Bilinearly upsampled random grid: (h,w) smooth noise in about [−1,1]."""
    coarse = rng.uniform(-1.0, 1.0, (cells, max(1, cells * w // h)))
    out = zoom(coarse, (h / coarse.shape[0], w / coarse.shape[1]), order=1, mode="nearest")
    return out[:h, :w]


def random_albedo(rng: np.random.Generator, size: int, tiles: int, features_uv: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(size, size·tiles, 3) float32 skin-like albedo in [0,1], top row = v 1.

    ``features_uv`` (:func:`feature_polylines`) adds darker brows and redder, darker lips along
    those UV polylines, so an albedo edge that is not geometry exists, as in photos."""
    tone = rng.uniform(0.25, 0.85)
    base = np.array([0.80, 0.58, 0.47]) * tone + np.array([0.12, 0.08, 0.06])
    tint = rng.normal(0.0, 0.03, 3)
    noise = _smooth_noise(rng, size, size * tiles, 8)[..., None] * 0.06
    albedo = base + tint + noise
    if features_uv:
        v, u = np.mgrid[0:size, 0 : size * tiles].astype(np.float64)
        uv = np.stack([(u + 0.5) / size, 1.0 - (v + 0.5) / size], -1).reshape(-1, 1, 2)

        def near(points: np.ndarray, radius: float) -> np.ndarray:  # soft (size, size·tiles) mask
            d = np.sqrt(((uv - points[None]) ** 2).sum(-1)).min(1).reshape(size, size * tiles)
            return np.clip(1.5 - d / radius, 0.0, 1.0)

        brow = near(features_uv["brows"], 0.012)[..., None] * rng.uniform(0.35, 0.6)
        lips = near(features_uv["lips"], 0.008)[..., None] * rng.uniform(0.15, 0.3)
        albedo = albedo * (1.0 - brow) + np.array([0.18, 0.12, 0.09]) * brow
        albedo = albedo * (1.0 - lips) + np.array([0.62, 0.28, 0.28]) * tone * lips
    return np.clip(albedo, 0.0, 1.0).astype(np.float32)


def feature_polylines(model, samples: int = 6) -> dict[str, np.ndarray]:
    """UV points along the brows (landmarks 17–21, 22–26) and the outer lip contour (48–59,
    closed) of ``model``'s landmark vertices, densified ``samples`` per segment: {"brows": (P,2),
    "lips": (Q,2)}."""
    faces, faces_uv = model.faces.cpu().numpy().reshape(-1), model.faces_uv.cpu().numpy().reshape(-1)
    first = np.full(model.n_verts, -1, np.int64)
    first[faces[::-1]] = faces_uv[::-1]  # one UV per vertex (its first corner)
    lm_uv = model.uv.cpu().numpy()[first[model.landmarks68.cpu().numpy()]]
    t = np.linspace(0.0, 1.0, samples)[None, :, None]

    def dense(idx: list[int]) -> np.ndarray:
        p = lm_uv[idx]
        return (p[:-1, None] * (1 - t) + p[1:, None] * t).reshape(-1, 2)

    brows = np.concatenate([dense(list(range(17, 22))), dense(list(range(22, 27)))])
    lips = dense(list(range(48, 60)) + [48])
    return {"brows": brows, "lips": lips}


def random_displacement(rng: np.random.Generator, size: int, tiles: int, amplitude_mm: float = 1.5) -> np.ndarray:
    """(size, size·tiles) float32 mm: wrinkle-like bands and bumps in the face tile (u < 1).

    - 4–6 wrinkle bands: 2–4 parallel creases (cosine profile, wavelength 6–14 mm at the ICT
      face tile's ≈ 1.1 mm per 1/256 of UV) of random orientation under a Gaussian envelope
      (20–45 mm long, 8–18 mm wide);
    - 12–20 bumps and dimples: Gaussian, radius 2–5 mm;
    each with a peak height drawn in [0.2, 1] × ``amplitude_mm`` (0.3–1.5 mm at the default),
    spread over the face (an ellipse around u 0.5, v 0.53: forehead to chin, cheek to cheek).
    """
    mm = 1.0 / 256 / 1.1  # UV units per mm (ICT face tile)
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    u, v = (u + 0.5) / size, 1.0 - (v + 0.5) / size
    disp = np.zeros((size, size))

    def centre() -> tuple[float, float]:
        r, a = math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
        return 0.5 + 0.28 * r * math.cos(a), 0.53 + 0.3 * r * math.sin(a)

    for _ in range(int(rng.integers(4, 7))):
        cu, cv = centre()
        theta = rng.uniform(0, math.pi)
        along = (u - cu) * math.cos(theta) + (v - cv) * math.sin(theta)
        across = -(u - cu) * math.sin(theta) + (v - cv) * math.cos(theta)
        wavelength = rng.uniform(6.0, 14.0) * mm
        creases = int(rng.integers(2, 5))
        envelope = np.exp(-0.5 * (along / (rng.uniform(10, 22) * mm)) ** 2
                          - 0.5 * (across / (0.5 * creases * wavelength)) ** 2)
        height = rng.uniform(0.2, 1.0) * amplitude_mm * rng.choice([-1.0, 1.0])
        disp += height * np.cos(2 * math.pi * across / wavelength) * envelope
    for _ in range(int(rng.integers(12, 21))):
        cu, cv = centre()
        radius = rng.uniform(2.0, 5.0) * mm
        height = rng.uniform(0.2, 1.0) * amplitude_mm * rng.choice([-1.0, 1.0])
        disp += height * np.exp(-0.5 * ((u - cu) ** 2 + (v - cv) ** 2) / radius**2)
    out = np.zeros((size, size * tiles))
    out[:, :size] = np.clip(disp, -amplitude_mm, amplitude_mm)
    return out.astype(np.float32)


def _sample_map(image: np.ndarray, uv: np.ndarray, tiles: int) -> np.ndarray:
    """Bilinear lookup of an (H, W[,C]) UV map (top row = v 1, width spans u ∈ [0, tiles]) at uv (N,2)."""
    h, w = image.shape[:2]
    col = uv[:, 0] / tiles * w - 0.5
    row = (1.0 - uv[:, 1]) * h - 0.5
    return map_coordinates(image, [row, col], order=1, mode="nearest")


def render_face(
    model, verts: torch.Tensor, pose: torch.Tensor, sh: torch.Tensor, albedo: np.ndarray, size: int,
    background: tuple[float, float, float], mesh: tuple[torch.Tensor, ...] | None = None,
    projection: str = "orthographic", u_tiles: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one head with ``backend.render``: verts (1,V,3) mm, pose (1,7) in ``projection``,
    sh (1,27), albedo (Ht,Wt,3) UV map spanning u ∈ [0, ``u_tiles``] (default: the model's
    tiles); ``mesh`` (verts, faces, uv, faces_uv) replaces the model's mesh
    (:func:`backend.detail.displaced_mesh`, parts appended). Returns (image (size,size,3) uint8,
    mask (size,size) bool)."""
    verts, faces, uv, faces_uv = mesh if mesh is not None else (verts, model.faces, model.uv, model.faces_uv)
    camera = Camera(size, size, projection)
    settings = RenderSettings(background=background, u_range=(0.0, float(u_tiles or model.uv_tiles)))
    out = render(verts, faces, pose, camera, sh, texture=torch.from_numpy(albedo).to(verts),
                 uv=uv, faces_uv=faces_uv, settings=settings)
    image = (out.image[0].clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
    return image, out.mask[0].cpu().numpy()


def _scene_mesh(model, s: SyntheticSettings, rng: np.random.Generator, coeffs: dict[str, torch.Tensor],
                verts: torch.Tensor, albedo: np.ndarray) -> tuple[tuple[torch.Tensor, ...], np.ndarray, float]:
    """The skin with a hair-coloured scalp and the parts appended (``s.hair``, ``s.parts``), and
    the texture with the parts' swatch tile and the hair tile after the skin's
    (:mod:`.synthetic_scene`). verts (1,V,3) mm. Returns (mesh, texture, its u range)."""
    tiles, size = model.uv_tiles, albedo.shape[0]
    faces, uv, faces_uv = model.faces, model.uv, model.faces_uv
    swatch = hair = np.full((size, size, 3), 0.5, np.float32)
    if s.hair and rng.uniform() > 0.15:
        scalp = scalp_faces(model, verts[0], rng.uniform(15.0, 45.0))
        hair = hair_tile(rng, size)
        faces_uv = torch.where(scalp[:, None], faces + uv.shape[0], faces_uv)
        uv = torch.cat([uv, hair_uv(verts[0], tiles + 1)])
    mesh = (verts, faces, uv, faces_uv)
    if s.parts:
        parts, swatch = parts_mesh(model, coeffs["id"], coeffs["exp"], verts, tiles, rng, size)
        mesh = (torch.cat([verts, parts[0]], 1), torch.cat([faces, parts[1] + verts.shape[1]]),
                torch.cat([uv, parts[2]]), torch.cat([faces_uv, parts[3] + uv.shape[0]]))
    return mesh, np.concatenate([albedo, swatch, hair], 1), float(tiles + 2)


def make_face(model, rng: np.random.Generator, settings: SyntheticSettings | None = None) -> SyntheticFace:
    """Draw and render one synthetic face with ``model`` (a CPU :class:`FaceModel`).

    The classic scene (:attr:`SyntheticSettings.friendly`) draws exactly what it always drew; the
    less friendly options draw from a child generator seeded after the classic draws."""
    s = settings or SyntheticSettings()
    if s.projection not in ("orthographic", "perspective"):
        raise ValueError(f"unknown projection {s.projection!r}: use 'orthographic' or 'perspective'")
    if s.renderer not in ("backend", "cycles"):
        raise ValueError(f"unknown renderer {s.renderer!r}: use 'backend' or 'cycles'")
    if s.detail and (s.hair or s.projection != "orthographic"):
        raise ValueError("detail renders need the orthographic camera and no hair (their metrics assume both)")
    if s.parts and not model.has_parts:
        raise ValueError(f"parts=True needs a face model with parts; {model.name!r} has none (ict_parts.npz)")
    gen = torch.Generator().manual_seed(int(rng.integers(0, 2**31 - 1)))
    coeffs = model.sample(1, generator=gen, id_scale=s.id_scale, exp_scale=s.exp_scale)
    verts = coeffs["verts"].detach().float()  # (1,V,3)
    tiles = model.uv_tiles
    coarse_vertices = verts[0].numpy().copy()
    albedo = random_albedo(rng, s.texture_size, tiles, feature_polylines(model) if s.features else None)
    displacement = None
    mesh = None
    if s.detail:
        displacement = random_displacement(rng, s.texture_size, tiles, s.detail_amplitude_mm)
        # rendered: the face tile as a dense mesh at the map's resolution (detail finer than the
        # model's mesh shows); ``vertices``: the model's vertices moved by the map at their UVs
        mesh = displaced_mesh(model, verts, torch.from_numpy(displacement[:, : s.texture_size]))
        # behind it, the model's own face-tile triangles 2 mm inwards close the hairline cracks
        # between the dense tile and the rest of the head (the map is within ±1.5 mm there)
        tile = face_tile_triangles(model.uv, model.faces_uv)
        backing = verts - 2.0 * vertex_normals(verts, model.faces)
        n_mesh = mesh[0].shape[1]
        mesh = (torch.cat([mesh[0], backing], 1), torch.cat([mesh[1], model.faces[tile] + n_mesh]),
                torch.cat([mesh[2], model.uv]), torch.cat([mesh[3], model.faces_uv[tile] + mesh[2].shape[0]]))
        d_vert = vertex_displacement(model, displacement)
        n = vertex_normals(verts, model.faces)
        verts = verts + n * torch.from_numpy(d_vert).float()[None, :, None]

    deg = math.pi / 180.0
    angles = [rng.uniform(-s.pitch_max_deg, s.pitch_max_deg) * deg, rng.uniform(-s.yaw_max_deg, s.yaw_max_deg) * deg,
              rng.uniform(-s.roll_max_deg, s.roll_max_deg) * deg]
    lm = verts[0, model.landmarks68]
    extent = float((lm.max(0).values - lm.min(0).values)[:2].max())  # mm
    f = s.face_fraction * s.size / extent
    pose = torch.tensor([[f, *angles, 0.0, 0.0, 0.0]], dtype=torch.float32)
    # centre the landmarks, then jitter by up to 5 % of the image
    camera = Camera(s.size, s.size, "orthographic")
    centre = project(lm[None], pose, camera)[0, :, :2].mean(0)
    shift = rng.uniform(-0.05, 0.05, 2) * s.size
    pose[0, 4] = -(float(centre[0]) - (s.size - 1) / 2) + shift[0]
    pose[0, 5] = (float(centre[1]) - (s.size - 1) / 2) + shift[1]

    direction = np.array([rng.uniform(-1, 1), rng.uniform(-0.5, 1), rng.uniform(0.3, 1.0)])
    key, ambient = rng.uniform(*s.directional), rng.uniform(*s.ambient)
    sh = sh_directional(torch.tensor(direction[None], dtype=torch.float32), key, ambient)
    lights = Lights((ambient,) * 3, ((tuple(direction), (key,) * 3),))
    bg = s.background if s.background is not None else (float(rng.uniform(0.1, 0.9)),) * 3
    texture, u_tiles = albedo, None
    extra = None if s.friendly else np.random.default_rng(int(rng.integers(0, 2**63 - 1)))
    if extra is not None:
        if s.projection == "perspective":
            camera = Camera(s.size, s.size, "perspective")
            pose = perspective_pose(lm, angles, s.size, s.face_fraction, extra.uniform(*s.focal_35mm), shift)
        if s.light_colour or s.second_light:
            lights = random_lights(extra, s.ambient, s.directional, s.light_colour, s.second_light)
            sh = lights.sh()
        if s.hair or s.parts:
            mesh, texture, u_tiles = _scene_mesh(model, s, extra, coeffs, verts, albedo)
    if s.renderer == "cycles":
        v, f, uv, fuv = mesh if mesh is not None else (verts, model.faces, model.uv, model.faces_uv)
        image, mask = render_cycles(v[0].numpy(), f.numpy(), uv.numpy(), fuv.numpy(), texture,
                                    float(u_tiles or model.uv_tiles), pose[0].numpy(), s.projection, s.size, lights,
                                    seed=0)
        if not (extra is not None and s.busy_background):
            image = np.where(mask[..., None], image, np.round(np.asarray(bg) * 255.0).astype(np.uint8))
    else:
        image, mask = render_face(model, verts, pose, sh, texture, s.size, bg, mesh, s.projection, u_tiles)
    if extra is not None and s.busy_background:
        image = np.where(mask[..., None], image, (busy_background(extra, s.size) * 255.0 + 0.5).astype(np.uint8))
    if extra is not None and s.pixel_noise:
        image = np.clip(image + extra.normal(0.0, s.pixel_noise, image.shape) + 0.5, 0, 255).astype(np.uint8)
    screen = project(verts, pose, camera)[..., :2]  # (1,V,2)
    landmarks = screen[0, model.landmarks68].numpy().astype(np.float64)

    rows = contour_candidates(model.mean, model.landmarks68, model.face_vertex_mask)
    contour = landmarks.copy()
    contour[:17] = screen[0, select_contour(screen, rows)[0]].numpy()
    return SyntheticFace(
        image=image, mask=mask, id=coeffs["id"][0].numpy(), exp=coeffs["exp"][0].numpy(),
        pose=pose[0].numpy(), sh=sh[0].numpy(), vertices=verts[0].numpy(), landmarks68=landmarks,
        yaw_deg=float(angles[1] / deg), albedo=albedo, displacement=displacement,
        neutral=model(coeffs["id"], None)[0].detach().numpy(), contour68=contour, coarse_vertices=coarse_vertices,
        projection=s.projection,
    )


def make_faces(model, n: int, seed: int = 0, settings: SyntheticSettings | None = None) -> list[SyntheticFace]:
    """``n`` synthetic faces, deterministic for ``seed``."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        return [make_face(model, rng, settings) for _ in range(n)]



KNOWN_SCANS_EXPECTED = {
    "a_offset: point-to-plane median (mm)": 1.0, "a_offset: ICP scale": 1 / 1.1,
    "b_scaled: point-to-plane mean (mm)": 0.0, "b_scaled: ICP scale": 1 / 1.25,
}


def write_known_answer_scans(model, folder, seed: int = 0) -> dict[str, float]:
    """Write a ``photohead evaluate scans`` folder whose answers are known (checks the harness,
    not a reconstruction): two "scans" of the model's mean head under a known similarity
    (rotation ≈ 10° about z, translation (5, −20, 300) mm), each with ``scan.json`` landmarks
    and a ``head.npz`` prediction = the mean head.

    - ``a_offset``: scale 1.1, every vertex moved 1 mm along its normal with a random sign (a
      zero-mean offset the ICP's scale/translation cannot absorb) → point-to-plane ≈ 1 mm,
      ICP scale ≈ 1/1.1;
    - ``b_scaled``: scale 1.25, no offset → distances ≈ 0, ICP scale ≈ 1/1.25.

    Returns :data:`KNOWN_SCANS_EXPECTED`.
    """
    root = Path(folder)
    verts = model.mean.cpu().numpy().astype(np.float64)
    faces = model.faces.cpu().numpy()
    normals = vertex_normals_np(verts, faces).astype(np.float64)
    lm_idx = model.landmarks68.cpu().numpy()
    sign = np.random.default_rng(seed).choice([-1.0, 1.0], len(verts))[:, None]
    cases = {"a_offset": (1.1, verts + sign * normals), "b_scaled": (1.25, verts)}
    R, _ = np.linalg.qr(np.array([[0.98, -0.17, 0.0], [0.17, 0.98, 0.0], [0.0, 0.0, 1.0]]))
    R *= np.sign(np.diag(R))  # a proper rotation close to the one above
    view = ViewResult(name="mean", image_size=(64, 64), pose=np.zeros(7), sh=np.zeros(27), exp=np.zeros(model.n_exp),
                      landmarks68=np.zeros((68, 2)), detected68=np.zeros((68, 2)))
    head = Head(model_name=model.name, vertices=verts.astype(np.float32), neutral=verts.astype(np.float32),
                faces=faces, uv=model.uv.cpu().numpy(), faces_uv=model.faces_uv.cpu().numpy(),
                id_coeffs=np.zeros(model.n_id), exp_coeffs=np.zeros(model.n_exp), exp_names=list(model.exp_names),
                uv_tiles=model.uv_tiles, views=[view])
    for name, (s, shape) in cases.items():
        sub = root / name
        sub.mkdir(parents=True, exist_ok=True)
        scan = apply_similarity(shape, s, R, np.array([5.0, -20.0, 300.0]))
        text = "".join(f"v {x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in scan)
        text += "".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces)
        (sub / "scan.obj").write_text(text)
        (sub / "scan.json").write_text(json.dumps({"landmarks68": scan[lm_idx].tolist()}))
        save_head(head, sub / "head.npz")
    return dict(KNOWN_SCANS_EXPECTED)


def vertex_displacement(model, displacement: np.ndarray) -> np.ndarray:
    """Per-vertex displacement (V,) mm as :func:`make_face` applies it: the UV map sampled at each
    vertex's UV corners and averaged (a vertex on a seam has several)."""
    faces = model.faces.cpu().numpy().reshape(-1)
    d_corner = _sample_map(displacement, model.uv.cpu().numpy()[model.faces_uv.cpu().numpy().reshape(-1)], model.uv_tiles)
    return np.bincount(faces, d_corner, minlength=model.n_verts) / np.maximum(np.bincount(faces, minlength=model.n_verts), 1)


def visible_face_texels(model, face: SyntheticFace, size: int, min_cos: float = 0.3) -> np.ndarray:
    """(size, size) bool: face-tile texels of the face region (``model.face_mask_regions``) whose
    true surface faces the camera (cos > ``min_cos``) in ``face``'s pose — where a photo shows detail."""
    layout = face_tile_layout(model, size)
    verts = torch.from_numpy(face.coarse_vertices)[None].float()
    normals = grid_normals(uv_position_map(verts, model.faces, layout), layout.valid)[0]  # (S,S,3) model space
    R = euler_to_rotation(torch.from_numpy(face.pose[None, 1:4]).float())[0]
    facing = (normals @ R.T)[..., 2] > min_cos
    region = face_region_mask(model, layout.frags)
    return (layout.valid[0] & facing & region).numpy()


def photo_mask_at_texels(
    model, vertices: np.ndarray, pose: np.ndarray, width: int, height: int, mask: np.ndarray,
    crop_from_image: np.ndarray, size: int,
) -> np.ndarray:
    """A crop-space mask (h,w) (e.g. the fit's 224² skin mask; ``crop_from_image`` (2,3) maps
    photo pixels to its pixels) read at each face-tile texel (size²) of the mesh ``vertices``
    (V,3) mm seen in ``pose`` (7,) (orthographic, photo of ``width``×``height``): bilinear, 0 off
    the crop and on invalid texels. Occlusion is not tested (use with facing texels).
    Returns (size,size) float."""
    layout = face_tile_layout(model, size)
    pos = uv_position_map(torch.from_numpy(np.asarray(vertices, np.float32))[None], model.faces, layout)  # (1,S,S,3)
    xy = project(pos.reshape(1, -1, 3), torch.from_numpy(np.asarray(pose, np.float32))[None],
                 Camera(width, height))[0, :, :2].double().numpy()  # (S·S,2) photo px
    A = np.asarray(crop_from_image, np.float64)
    crop_xy = xy @ A[:, :2].T + A[:, 2]
    values = map_coordinates(np.asarray(mask, np.float64), [crop_xy[:, 1], crop_xy[:, 0]], order=1, cval=0.0)
    return (values.reshape(size, size) * layout.valid[0].numpy()).astype(np.float32)


def displacement_in_image(
    model, vertices: np.ndarray, pose: np.ndarray, width: int, height: int, displacement: np.ndarray,
    texel_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A face-tile displacement map (S,S) mm seen through a mesh in a photo: per pixel, the map
    sampled at the UV of the surface point ``vertices`` (V,3) mm show there in ``pose`` (7,)
    (orthographic, at the photo's ``width``×``height``). ``texel_mask`` (S,S) bool: pixels whose
    UV falls outside it are dropped. Returns (H,W) mm and (H,W) bool (face-tile pixels kept)."""
    verts = torch.from_numpy(np.asarray(vertices, np.float32))[None]
    screen = project(verts, torch.from_numpy(np.asarray(pose, np.float32))[None], Camera(width, height))
    frags = rasterize(screen, model.faces, height, width)
    uv = interpolate(model.uv, frags.face_idx, frags.bary, model.faces_uv)  # (1,H,W,2)
    tile = face_tile_triangles(model.uv, model.faces_uv)
    keep = (frags.face_idx >= 0) & tile[frags.face_idx.clamp_min(0)]
    values = sample_texture(torch.from_numpy(np.asarray(displacement, np.float32))[..., None], uv)[0, ..., 0]
    if texel_mask is not None:
        inside = sample_texture(torch.from_numpy(np.asarray(texel_mask, np.float32))[..., None], uv)[0, ..., 0]
        keep = keep & (inside > 0.99)
    return values.numpy(), keep[0].numpy()


def true_detail_surface(model, face: SyntheticFace, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The true coarse and detailed surfaces at the face tile's ``size``² texels: (coarse, detailed)
    (size, size, 3) mm model space (the displacement map resampled, applied along the normals)."""
    layout = face_tile_layout(model, size)
    verts = torch.from_numpy(face.coarse_vertices)[None].float()
    coarse = uv_position_map(verts, model.faces, layout)
    disp = torch.from_numpy(resample_map(face.displacement[:, : face.displacement.shape[0]], size))[None, None].float()
    surface = displace(coarse, disp * layout.valid[:, None], layout, dense_topology(layout, coarse))
    return coarse[0].numpy(), surface.positions[0].numpy()


def resample_map(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resampling of a square (H,H) map to (size,size) (texel centres aligned)."""
    t = torch.from_numpy(np.ascontiguousarray(image, np.float32))[None, None]
    return torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[0, 0].numpy()
