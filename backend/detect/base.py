"""Detection result type, settings and backend-independent helpers."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

__all__ = ["Face", "WEAK_DETECTOR", "DetectSettings", "downscale_for_detection", "small_to_orig", "rank_faces"]


WEAK_DETECTOR = "blazeface-weak"  # Face.detector of a face only BlazeFace's weak candidates found


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face. All coordinates in ORIGINAL image pixels, x right, y down,
    0-based pixel centres (the centre of the top-left pixel is (0, 0)).

    - ``box`` (4,) float64 x0, y0, x1, y1: the detector's box (dlib: HOG-like box, roughly
      brows to chin; mmod boxes are mapped to HOG-like ones).
    - ``landmarks`` (68,2) float64 iBUG 68-point mark-up (0–16 jaw, 17–26 brows, 27–35 nose,
      36–47 eyes: 36–41 the subject's right eye, at image left; 48–67 mouth).
    - ``score``: the detector's confidence (HOG: SVM margin, > 0 typical for faces; mmod:
      CNN confidence). Only comparable between faces from the same ``detector``.
    - ``backend``: "dlib", "face_alignment", "mediapipe" or "auto" (a dlib–mesh blend): what gave
      ``landmarks``; ``detector``:
      "hog", "mmod", "sfd", "blazeface-short", :data:`WEAK_DETECTOR` (below BlazeFace's own threshold),
      "hog+mesh" (auto: dlib checked by Face Mesh), ...
    - ``index``: rank of this face in its image (0 = most confident from :func:`detect`, the
      largest confident one from ``detect_one``); ``count``: how many faces were found in the
      image (for messages like "3 faces found, using #0"); ``note``: ``detect_one``'s one-line
      report of every face when there are several ("" otherwise).
    - ``dense`` (468,3) float64 or None: MediaPipe Face Mesh points (x, y px; z relative depth,
      px scale, smaller = nearer); ``presence``: Face Mesh's face-presence probability or None.
    - ``disagreement``: ``auto`` only, when both ran: mean distance between dlib's and Face Mesh's
      68 points in the mesh's outer-eye distances (:func:`.combined.disagreement`), else None.
    """

    box: np.ndarray
    landmarks: np.ndarray
    score: float
    backend: str
    detector: str = ""
    index: int = 0
    count: int = 1
    note: str = ""
    dense: np.ndarray | None = None
    presence: float | None = None
    disagreement: float | None = None

    def __post_init__(self) -> None:
        box = np.asarray(self.box, np.float64).reshape(-1)
        lm = np.asarray(self.landmarks, np.float64)
        if box.shape != (4,) or lm.shape != (68, 2):
            raise ValueError(f"Face needs box (4,) and landmarks (68,2), got {box.shape} and {lm.shape}")
        box.flags.writeable = False  # a frozen result: copy before editing
        lm.flags.writeable = False
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "landmarks", lm)
        if self.dense is not None:
            dense = np.array(self.dense, np.float64)
            if dense.ndim != 2 or dense.shape[1] != 3:
                raise ValueError(f"Face.dense must be (P,3), got {dense.shape}")
            dense.flags.writeable = False
            object.__setattr__(self, "dense", dense)

    def to_dict(self) -> dict:
        """JSON-ready dict (lists of floats); :meth:`from_dict` restores it."""
        d = {"box": self.box.tolist(), "landmarks": self.landmarks.tolist(), "score": self.score,
             "backend": self.backend, "detector": self.detector, "index": self.index, "count": self.count}
        if self.dense is not None:
            d["dense"] = self.dense.tolist()
        if self.presence is not None:
            d["presence"] = self.presence
        if self.disagreement is not None:
            d["disagreement"] = self.disagreement
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Face":
        return cls(box=np.asarray(d["box"]), landmarks=np.asarray(d["landmarks"]), score=float(d["score"]),
                   backend=str(d["backend"]), detector=str(d.get("detector", "")), index=int(d.get("index", 0)),
                   count=int(d.get("count", 1)), dense=None if d.get("dense") is None else np.asarray(d["dense"]),
                   presence=None if d.get("presence") is None else float(d["presence"]),
                   disagreement=None if d.get("disagreement") is None else float(d["disagreement"]))

    @property
    def size(self) -> float:
        """Face size in pixels: the longer side of the landmarks' bounding box."""
        return float(np.ptp(self.landmarks, axis=0).max())

    def summary(self) -> str:
        """Human-readable choice, e.g. ``"3 faces found, using #0"``."""
        noun = "face" if self.count == 1 else "faces"
        return f"{self.count} {noun} found, using #{self.index}"


@dataclass(frozen=True)
class DetectSettings:
    """How faces are searched for. Defaults suit photos from phones and cameras.

    - ``max_detect_side``: the detector runs on a copy downscaled so its longer side is at
      most this many pixels (landmarks are still predicted at full resolution). 1000 px
      keeps a 4000×3000 photo under ~0.3 s of HOG time.
    - ``max_upsample``: HOG finds faces ≥ ~80 px at its working size; when it finds none,
      the working copy is upsampled ×2 per step up to this many steps (each ×4 the time).
    - ``hog_threshold``: minimum HOG score. 0 (dlib's default) drops the textured false
      positive on ``skimage.data.astronaut()`` (score −0.05 at native size).
    - ``mmod_fallback``: when HOG finds nothing, run dlib's CNN (mmod) detector, which
      finds more posed/occluded faces but costs 1–4 s; its boxes are mapped to HOG-like boxes
      before the landmark predictor (trained on HOG boxes) runs.
    - ``mmod_max_side``: working size for the mmod fallback (it finds faces ≥ ~80 px there).
    - ``subpixel_min_side``: dlib rounds landmarks to whole pixels; boxes smaller than this
      (px) are upscaled ×k (k ≤ 4) around the face before the predictor runs, giving 1/k px
      steps. 0 disables.
    - ``flip_average``: average the landmarks predicted on the photo and on its mirror image.
      dlib: two predictor runs, points averaged. face-alignment: its own ``flip_input`` (the
      network also sees the mirrored crop, heatmaps averaged). mediapipe: not used.
    - ``weights_dir``: face_alignment: a folder holding its checkpoints (``2DFAN4*.zip``/``.pth``
      and ``s3fd*.pth``; also searched: torch hub's ``checkpoints``). mediapipe: the folder holding
      its ``.tflite`` files (default: ``mediapipe/`` on the model search path).
    - ``max_faces``: mediapipe: at most this many detections get a mesh (best first).
    - ``mesh_passes``: mediapipe: Face Mesh runs on the detector's region, then (each further
      pass) on the region of its own previous points, as MediaPipe's tracking does.
    """

    max_detect_side: int = 1000
    max_upsample: int = 1
    hog_threshold: float = 0.0
    mmod_fallback: bool = True
    mmod_max_side: int = 640
    subpixel_min_side: int = 256
    flip_average: bool = True
    weights_dir: str | None = None
    max_faces: int = 4
    mesh_passes: int = 2

    def __post_init__(self) -> None:
        if self.max_detect_side < 64:
            raise ValueError(f"max_detect_side must be ≥ 64 px, got {self.max_detect_side}")
        if not 0 <= self.max_upsample <= 3:
            raise ValueError(f"max_upsample must be in 0..3, got {self.max_upsample}")
        if self.mmod_max_side < 64:
            raise ValueError(f"mmod_max_side must be ≥ 64 px, got {self.mmod_max_side}")
        if self.max_faces < 1:
            raise ValueError(f"max_faces must be ≥ 1, got {self.max_faces}")
        if not 1 <= self.mesh_passes <= 3:
            raise ValueError(f"mesh_passes must be in 1..3, got {self.mesh_passes}")


def downscale_for_detection(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Return ``(small, s)``: a copy with longer side ≤ ``max_side`` and the factor s ≤ 1 with
    ``small_px = s · (orig_px + 0.5) − 0.5`` (pixel-centre convention). s = 1 returns ``image``.

    image: (H,W,3) uint8. Uses an antialiased (area-weighted) resize.
    """
    h, w = image.shape[:2]
    longest = max(h, w)
    if longest <= max_side:
        return image, 1.0

    s = max_side / float(longest)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0))
    # the exact per-axis factors differ by rounding; use the mean (≤ 0.1 % error)
    s_eff = 0.5 * (nw / w + nh / h)
    return np.ascontiguousarray(small), s_eff


def small_to_orig(xy: np.ndarray, s: float) -> np.ndarray:
    """Map pixel coordinates from the downscaled copy back to the original (inverse of the
    mapping in :func:`downscale_for_detection`). xy: (...,2) pixels."""
    return (np.asarray(xy, np.float64) + 0.5) / s - 0.5


def rank_faces(faces: list[Face]) -> list[Face]:
    """Sort by detector score (ties: larger face first) and fill ``index``/``count``."""
    order = sorted(faces, key=lambda f: (-f.score, -f.size))
    return [replace(f, index=i, count=len(order)) for i, f in enumerate(order)]

