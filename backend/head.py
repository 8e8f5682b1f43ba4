"""The reconstruction result every front door consumes (CLI writers, Blender add-on, evaluation)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .quality import DEFAULT


@dataclass
class ViewResult:
    """What was fitted for one photo. Pixel quantities are in the *original* photo.

    - ``image`` (H,W,3) uint8 RGB of the photo (after EXIF orientation), may be None once written.
    - ``pose`` (7,) (f, rx, ry, rz, tx, ty, tz) for ``projection`` at the photo's full size
      (see ``backend.camera``); ``sh`` (27,); ``exp`` (K_exp,) this view's expression.
    - ``landmarks68`` (68,2) fitted model landmarks projected into the photo; ``detected68``
      (68,2) the detector's (``detector``: "dlib", "face_alignment", "mediapipe", "auto" (a blend),
      or "given" when the caller passed landmarks); ``face_box`` (4,) x0,y0,x1,y1.
    - ``landmarks68_3d`` (68,2) the same 68 points as fixed model vertices (AFLW2000-3D style: the
      jaw is the 3-D jaw line, hidden or not, where ``landmarks68``'s jaw is the 2-D silhouette
      of the 300-W convention), projected into the photo; None in heads from older versions.
    - ``face_detector``: what found the face ("hog", "mmod", "sfd", "blazeface-short",
      "blazeface-weak", "hog+mesh", ...; "" for given landmarks), ``face_score`` its confidence
      (comparable only within one detector), ``presence`` Face Mesh's face-presence probability
      (None where Face Mesh did not run).
    - ``crop_from_image`` (2,3) similarity mapping photo pixels → the 224² crop.
    - ``focal_35mm``: the lens the fit saw the photo through (mm, 35-mm equivalent; None:
      orthographic) and ``focal_source`` where it came from (given, exif, estimated, standard, none); with a lens
      ``projection`` is ``perspective`` and ``pose[0]`` its focal length in pixels.
    """

    name: str
    image_size: tuple[int, int]  # (width, height) pixels
    pose: np.ndarray
    sh: np.ndarray
    exp: np.ndarray
    landmarks68: np.ndarray
    detected68: np.ndarray
    projection: str = "orthographic"
    face_box: np.ndarray | None = None
    crop_from_image: np.ndarray | None = None
    image: np.ndarray | None = None
    label: str = ""
    detector: str = ""
    landmarks68_3d: np.ndarray | None = None
    focal_35mm: float | None = None
    focal_source: str = ""
    face_detector: str = ""
    face_score: float | None = None
    presence: float | None = None


@dataclass
class Head:
    """A reconstructed head in model space (mm, +Y up, +Z out of the face).

    Coarse mesh: ``vertices`` (V,3) = identity + the first view's expression; ``neutral``
    (V,3) identity only (the Blender shape-key basis); ``exp_basis`` (K_exp,V,3) mm per unit
    weight and ``exp_names`` so expressions stay editable. ``faces`` (F,3), ``uv`` (T,2),
    ``faces_uv`` (F,3); UVs span ``uv_tiles`` unit tiles along u (ICT: 2; exporters divide u
    by ``uv_tiles`` so one square-per-tile image covers them).

    UV images are stored top row = v 1, float32:
    - ``albedo`` (Ht, Ht·uv_tiles, 3) in [0,1] linear-ish sRGB values as photographed;
    - ``displacement`` (Hd, Hd·uv_tiles) mm along the coarse normal (zero outside the face tile),
    - ``normal_map`` (Hd, Hd·uv_tiles, 3) tangent-space normals in [0,1] (OpenGL, +Y up).
    Dense mesh (detail stage; the fit's UV render layer, one vertex per face-tile texel):
    ``dense_vertices`` (N,3) mm, ``dense_faces`` (M,3), ``dense_uv`` (N,2) in the model's tile
    layout like ``uv`` (the face tile: u ∈ [0,1]). Kept in ``head.npz`` and used by the previews;
    ``head_detailed.obj`` and Blender's dense option are the whole head instead
    (:mod:`backend.geometry`, built from ``vertices`` and ``displacement``).
    """

    model_name: str
    vertices: np.ndarray
    neutral: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    faces_uv: np.ndarray
    id_coeffs: np.ndarray
    exp_coeffs: np.ndarray
    exp_names: list[str]
    exp_basis: np.ndarray | None = None
    uv_tiles: int = 1
    albedo: np.ndarray | None = None
    displacement: np.ndarray | None = None
    displacement_scale_mm: float = 1.0
    normal_map: np.ndarray | None = None
    dense_vertices: np.ndarray | None = None
    dense_faces: np.ndarray | None = None
    dense_uv: np.ndarray | None = None
    tex_coeffs: np.ndarray | None = None
    views: list[ViewResult] = field(default_factory=list)
    mode: str = "fit"
    quality: str = DEFAULT
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    view_weights: np.ndarray | None = None  # (V, Ht, Ht·uv_tiles) per-view albedo blending weights
    warnings: list[str] = field(default_factory=list)
    # parts (eyes, sockets, teeth, lashes; backend.head_parts), None for a skin-only model. P part
    # vertices, Fp triangles indexing concatenate(vertices, parts_vertices); flat materials.
    parts_vertices: np.ndarray | None = None   # (P,3) mm, posed like ``vertices``
    parts_neutral: np.ndarray | None = None    # (P,3) mm, identity only
    parts_exp_basis: np.ndarray | None = None  # (K_exp,P,3) mm per unit weight
    parts_faces: np.ndarray | None = None      # (Fp,3) int32
    parts_uv: np.ndarray | None = None         # (Tp,2) in [0,1]²
    parts_faces_uv: np.ndarray | None = None   # (Fp,3) int32
    parts_material: np.ndarray | None = None   # (Fp,) int16 into part_material_names
    part_names: list[str] = field(default_factory=list)
    part_face_range: np.ndarray | None = None  # (n,2) int32 [start, end) rows of parts_faces
    part_material_names: list[str] = field(default_factory=list)
    part_material_colors: np.ndarray | None = None  # (M,3) float32 sRGB [0,1], albedo-like (the exports)
    # (M,3) float32 sRGB [0,1]: the materials as the photo shows them (the sclera at the photo's
    # brightness; head_parts.swatch_tile paints them for the previews); None: part_material_colors
    part_seen_colors: np.ndarray | None = None
    # (2,2) float32 radians: (yaw, pitch) of eyeball_left, eyeball_right (head_parts.EYEBALLS), each
    # turned about its centre (head_parts.eye_rotation); None: looking ahead. parts_* look ahead.
    gaze: np.ndarray | None = None
    # the iris's radius the eyeballs were made for (mm; head_parts.slide_iris), measured in the photo
    # by backend.gaze with MediaPipe's Iris model; None: the model's own (ICT: about 5.8 mm) or no parts
    iris_radius_mm: float | None = None

    @property
    def export_uv(self) -> np.ndarray:
        """(T,2) UVs squeezed into [0,1]² (u divided by the tile count)."""
        uv = self.uv.astype(np.float32).copy()
        uv[:, 0] /= self.uv_tiles
        return uv
