"""Training data: image folders with a cached preprocessing step, and a synthetic face set.

Every dataset item is a dict of tensors (S = crop side):

- ``image`` (3,S,S) float32 RGB in [0,1], the aligned crop (:mod:`backend.align` template);
- ``landmarks`` (68,2) float32 detected landmarks in crop pixels (x right, y down);
- ``mask`` (S,S) float32 in {0,1}: skin (landmark hull minus eyes, inner mouth, brows and lips, weighted
  by the skin colour likelihood: :func:`backend.skin.skin_mask`) inside the photo;
- synthetic faces only (:class:`SyntheticFaceDataset`, a cache made by ``photohead train synth``):
  their true ``id`` (K_id,) and ``exp`` (K_exp,) coefficients (plus ``pose``, ``sh`` for the former).

Preprocessing (:func:`preprocess_folder`) runs once per folder: detection + 68 landmarks
(:mod:`backend.detect`), similarity crop (:mod:`backend.align`), skin mask. It is
resumable (work is split into shards; a shard whose ``.json`` exists is done and skipped) and
multiprocess (one worker per shard), and it rejects non-faces with a reason:
``unreadable``, ``no_face``, ``too_small`` (landmark box < ``min_face_px``), ``low_score``
(detector score < ``min_score``). ``report.json`` counts images kept and rejected per reason.

Cache layout (``cache/``): ``manifest.json`` (root, file list, settings), per shard
``shard_NNNNN.crops.npy`` (n,S,S,3) uint8, ``.masks.npy`` (n,S,S) uint8, ``.meta.npz``
(landmarks (n,68,2) float32, source index, score, crop_from_image (n,2,3)) and ``.json``
(rejects; written last), and ``report.json`` and ``rejects.json`` (photo, reason). The
command ``photohead train prepare`` (:mod:`training.prepare`) builds the cache from a folder,
CelebA's or FFHQ's splits, over several processes or torchrun ranks (one writer per shard).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset, Subset

from backend.align import (AlignSettings, align_face, crop_valid_mask, face_mask, photo_content_box, points_to_crop,
                           warp_to_crop)
from backend.camera import Camera, project
from backend.detect import detect
from backend.errors import PhotoheadError
from backend.io_utils import atomic_path, atomic_write_text
from backend.lighting import sh_ambient
from backend.render.renderer import render
from backend.skin import skin_mask

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
REJECT_REASONS = ("unreadable", "no_face", "too_small", "low_score")
#: known coefficients a cache of synthetic faces carries per item (``photohead train synth``)
TRUTH_KEYS = ("id", "exp")

# detect_fn(image (H,W,3) uint8) -> list of (landmarks (68,2) image px, score), most confident first
DetectFn = Callable[[np.ndarray], list[tuple[np.ndarray, float]]]


@dataclass(frozen=True)
class PreprocessSettings:
    """- ``crop_size``: aligned crop side (px); ``min_face_px``/``min_score``: rejection limits;
    ``detector``: :func:`backend.detect.detect` backend; ``shard_size``: images per shard (the
    resume granularity); ``workers``: processes (1 = in this process); ``limit``: only the
    first N images (0 = all)."""

    crop_size: int = 224
    min_face_px: float = 60.0
    min_score: float = 0.0
    detector: str = "dlib"
    shard_size: int = 500
    workers: int = 2
    limit: int = 0


class TrainingDataError(PhotoheadError):
    """The training data folder is missing, holds no photos, or yields no usable face."""


def find_images(root: str | Path) -> list[Path]:
    """Photos under ``root`` (recursive, sorted). CelebA: ``root/img_align_celeba`` when present."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} not found")
    if (root / "img_align_celeba").is_dir():
        root = root / "img_align_celeba"
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _default_detect(backend: str) -> DetectFn:
    def run(image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        return [(f.landmarks, float(f.score)) for f in detect(image, backend=backend)]

    return run


def process_image(image: np.ndarray, detect_fn: DetectFn, settings: PreprocessSettings) -> dict | str:
    """One photo → ``{"crop", "mask", "landmarks", "score", "crop_from_image"}`` or a reject reason."""
    faces = detect_fn(image)
    if not faces:
        return "no_face"
    landmarks, score = faces[0]
    landmarks = np.asarray(landmarks, np.float64)
    if float(np.ptp(landmarks, axis=0).max()) < settings.min_face_px:
        return "too_small"
    if score < settings.min_score:
        return "low_score"
    S = settings.crop_size
    align = align_face(landmarks, AlignSettings(size=S))
    crop = warp_to_crop(image, align.crop_from_image, S)
    lm_crop = points_to_crop(landmarks, align.crop_from_image)
    shown = crop_valid_mask(image.shape, align.crop_from_image, S, box=photo_content_box(image), margin_px=1.0)
    mask = skin_mask(crop, lm_crop, S) * shown  # not outside the photo or in its black bars
    return {
        "crop": np.clip(np.rint(crop * 255.0), 0, 255).astype(np.uint8),  # warp_to_crop: float [0,1]
        "mask": (mask > 0.5).astype(np.uint8) * 255,
        "landmarks": lm_crop.astype(np.float32),
        "score": float(score),
        "crop_from_image": np.asarray(align.crop_from_image, np.float32),
    }


def _read_image(path: Path) -> np.ndarray | None:
    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def _shard_paths(cache: Path, shard: int) -> dict[str, Path]:
    stem = cache / f"shard_{shard:05d}"
    return {k: Path(f"{stem}.{k}") for k in ("crops.npy", "masks.npy", "meta.npz", "json")}


def _process_shard(args: tuple, tick: Callable[[], None] | None = None) -> dict:
    """Worker: process files[start:stop] into one shard (skipped when already complete);
    ``tick()`` after each photo (in-process runs only)."""
    cache, shard, files, start, settings, detect_fn = args
    paths = _shard_paths(cache, shard)
    if paths["json"].exists():
        return json.loads(paths["json"].read_text())
    detect_fn = detect_fn or _default_detect(settings.detector)
    results = []
    for i, f in enumerate(files):
        image = _read_image(Path(f))
        results.append((start + i, "unreadable" if image is None else process_image(image, detect_fn, settings)))
        if tick:
            tick()
    return write_shard(cache, shard, settings.crop_size, results)


def write_shard(cache: Path, shard: int, crop_size: int, results: list[tuple[int, dict | str]],
                extra: dict[str, np.ndarray] | None = None) -> dict:
    """Write one cache shard (layout in the module doc), its ``.json`` completion marker last.

    ``results``: (source index, :func:`process_image` output or a reject reason) per photo, in
    order; ``extra``: more per-kept-item arrays for ``meta.npz`` (e.g. a synthetic face's true
    ``id``, ``exp``). Returns the shard summary."""
    paths = _shard_paths(cache, shard)
    S = crop_size
    kept = [(i, out) for i, out in results if not isinstance(out, str)]
    rejects: dict[str, list[int]] = {r: [] for r in REJECT_REASONS}
    for i, out in results:
        if isinstance(out, str):
            rejects[out].append(i)
    n = len(kept)
    stack = lambda key, empty: np.stack([o[key] for _, o in kept]) if n else empty  # noqa: E731
    arrays = {"crops.npy": stack("crop", np.zeros((0, S, S, 3), np.uint8)),
              "masks.npy": stack("mask", np.zeros((0, S, S), np.uint8))}
    for key, arr in arrays.items():
        with atomic_path(paths[key]) as tmp:
            with tmp.open("wb") as fh:
                np.save(fh, arr)
    with atomic_path(paths["meta.npz"]) as tmp:
        with tmp.open("wb") as fh:
            np.savez(fh, landmarks=stack("landmarks", np.zeros((0, 68, 2), np.float32)),
                     source=np.asarray([i for i, _ in kept], np.int64),
                     score=np.asarray([o["score"] for _, o in kept], np.float32),
                     crop_from_image=stack("crop_from_image", np.zeros((0, 2, 3), np.float32)), **(extra or {}))
    summary = {"shard": shard, "kept": n, "rejected": rejects}
    atomic_write_text(paths["json"], json.dumps(summary))  # completion marker, written last
    return summary


def preprocess_folder(
    root: str | Path,
    cache: str | Path,
    settings: PreprocessSettings = PreprocessSettings(),
    detect_fn: DetectFn | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> dict:
    """Detect, align and mask every photo under ``root`` into ``cache`` (resumable, one process
    or ``settings.workers``). Returns the report. :func:`training.prepare.prepare_cache` does the
    work (CelebA / FFHQ splits and several ranks: :mod:`training.prepare`).

    ``detect_fn`` replaces :func:`backend.detect.detect` (must be picklable when ``workers`` > 1).
    A cache made with other photos or another crop size raises ``ValueError``.
    """
    from .prepare import prepare_cache  # lazy: training.prepare imports this module

    files = [str(p) for p in find_images(root)]
    if settings.limit:
        files = files[: settings.limit]
    tell = (lambda done, total: progress(done / max(total, 1), f"preprocessed {done}/{total} photos")) if progress else None
    return prepare_cache(files, cache, settings, detect_fn=detect_fn, progress=tell,
                         source={"root": str(Path(root).resolve()), "layout": "folder", "split": "all"})


class CachedFaceDataset(Dataset):
    """Faces from a preprocessing cache (memory-mapped crops and masks). Items: see module doc."""

    def __init__(self, cache: str | Path):
        cache = Path(cache)
        mpath = cache / "manifest.json"
        if not mpath.exists():
            raise FileNotFoundError(f"{cache} is not a preprocessing cache (no manifest.json): run preprocess_folder first")
        manifest = json.loads(mpath.read_text())
        n_shards = math.ceil(len(manifest["files"]) / manifest["settings"]["shard_size"])
        self.files = manifest["files"]
        self.shards = []
        index = []
        for s in range(n_shards):
            p = _shard_paths(cache, s)
            if not p["json"].exists():
                raise FileNotFoundError(f"cache {cache}: shard {s} is incomplete; rerun preprocessing (it resumes)")
            meta = np.load(p["meta.npz"])
            entry = {"paths": p, "landmarks": meta["landmarks"], "source": meta["source"], "crops": None, "masks": None,
                     "truth": {k: meta[k] for k in TRUTH_KEYS if k in meta.files}}
            self.shards.append(entry)
            index += [(s, i) for i in range(len(entry["source"]))]
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        s, i = self.index[k]
        sh = self.shards[s]
        if sh["crops"] is None:  # opened lazily, per worker process
            sh["crops"] = np.load(sh["paths"]["crops.npy"], mmap_mode="r")
            sh["masks"] = np.load(sh["paths"]["masks.npy"], mmap_mode="r")
        crop = torch.from_numpy(np.array(sh["crops"][i])).permute(2, 0, 1).float() / 255.0
        mask = torch.from_numpy(np.array(sh["masks"][i])).float() / 255.0
        item = {"image": crop, "landmarks": torch.from_numpy(sh["landmarks"][i].copy()), "mask": mask}
        item.update({k: torch.from_numpy(v[i].astype(np.float32)) for k, v in sh["truth"].items()})
        return item

    def source_path(self, k: int) -> str:
        s, i = self.index[k]
        return self.files[int(self.shards[s]["source"][i])]


def split_train_val(dataset: Dataset, val_count: int, seed: int = 0) -> tuple[Subset, Subset]:
    """Hold out ``val_count`` items chosen by a seeded permutation (paper: 1,000 of CelebA train)."""
    n = len(dataset)
    val_count = min(max(0, val_count), max(0, n - 1))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, sorted(perm[val_count:])), Subset(dataset, sorted(perm[:val_count]))


# -- synthetic faces ---------------------------------------------------------------------------------
def aligned_crop_pose(crop_size: int) -> tuple[float, ...]:
    """The orthographic pose that puts the face model's mean landmarks on :mod:`backend.align`'s
    crop template (frontal, ``px_per_mm·S/224`` px/mm, template shifted down by ``shift_y_mm``)."""
    st = AlignSettings(size=crop_size)
    k = st.px_per_mm * crop_size / 224.0
    return (k, 0.0, 0.0, 0.0, 0.0, -st.shift_y_mm * k, 0.0)


class SyntheticFaceDataset(Dataset):
    """Faces rendered from the face model with known parameters (for tests and smoke runs).

    ``n`` faces at ``size``² pixels, rendered once at construction with the project renderer
    (seeded: the same arguments give the same images). Identity ~ N(0, id_scale²), expressions
    as :meth:`FaceModel.sample`, yaw/pitch/roll ~ U(±max_angle), translation ±jitter px, scale
    ×(1 ± 0.05), a per-face skin tint and a random low-order SH light. Items carry the module-doc
    keys plus ground truth ``id``, ``exp``, ``pose`` (7,), ``sh`` (27,).
    """

    def __init__(self, face_model, n: int = 32, size: int = 64, seed: int = 0, id_scale: float = 0.7,
                 exp_scale: float = 0.15, max_angle: float = 0.25, jitter: float = 0.04, chunk: int = 16):
        g = torch.Generator().manual_seed(seed)
        cam = Camera(size, size)
        base = torch.tensor(aligned_crop_pose(size))
        images, lms, masks, params = [], [], [], {"id": [], "exp": [], "pose": [], "sh": []}
        with torch.no_grad():
            for start in range(0, n, chunk):
                b = min(chunk, n - start)
                coeffs = face_model.sample(b, generator=g, id_scale=id_scale, exp_scale=exp_scale)
                pose = base.expand(b, -1).clone()
                pose[:, 0] *= 1 + 0.05 * (2 * torch.rand(b, generator=g) - 1)
                pose[:, 1:4] = max_angle * (2 * torch.rand(b, 3, generator=g) - 1)
                pose[:, 3] *= 0.4  # less roll than yaw/pitch
                pose[:, 4:6] += jitter * size * (2 * torch.rand(b, 2, generator=g) - 1)
                sh = sh_ambient(0.8, b).view(b, 3, 9)
                sh[:, :, 1:4] += 0.5 * torch.randn(b, 1, 3, generator=g)  # grey directional part
                sh = sh.reshape(b, 27)
                tint = torch.tensor([0.78, 0.57, 0.47]) * (1 + 0.1 * torch.randn(b, 1, 1, generator=g)) \
                    * (1 + 0.03 * torch.randn(b, 1, 3, generator=g))
                colors = tint.expand(b, face_model.n_verts, 3)
                r = render(coeffs["verts"], face_model.faces, pose, cam, sh, vertex_colors=colors)
                lm = project(coeffs["verts"], pose, cam)[:, face_model.landmarks68, :2]
                for j in range(b):
                    skin = face_mask(lm[j].numpy(), size, size)
                    masks.append(torch.from_numpy(skin) * r.alpha[j])
                images.append(r.image.clamp(0, 1).permute(0, 3, 1, 2))
                lms.append(lm)
                for k, v in (("id", coeffs["id"]), ("exp", coeffs["exp"]), ("pose", pose), ("sh", sh)):
                    params[k].append(v)
        self.images = torch.cat(images).contiguous()
        self.landmarks = torch.cat(lms).float()
        self.masks = torch.stack(masks).float()
        self.params = {k: torch.cat(v).float() for k, v in params.items()}

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        item = {"image": self.images[k], "landmarks": self.landmarks[k], "mask": self.masks[k]}
        item.update({key: v[k] for key, v in self.params.items()})
        return item


def prepared_cache(data, crop_size: int, cache_dir: str | Path, detect_fn: DetectFn | None = None) -> dict:
    """The cache report for a :class:`~training.config.DataConfig`: an existing complete cache is
    used as it is when ``data.data`` is empty; otherwise the photos are listed (layout, split)
    and this rank's shards prepared (torchrun ranks each take their own shards, then wait for the
    others'), as ``photohead train prepare`` does."""
    # lazy: training.prepare imports this module
    from .prepare import PrepareError, distributed_share, list_photos, prepare_cache, settings_from

    cache_dir = Path(cache_dir)
    if not data.data:
        if not (cache_dir / "manifest.json").exists():
            raise PrepareError(f"no training data: pass --data DIR (photos), --data synthetic, or --cache of a cache "
                               f"made by `photohead train prepare` ({cache_dir} holds none)")
        manifest = json.loads((cache_dir / "manifest.json").read_text())
        files, settings = manifest["files"], PreprocessSettings(**manifest["settings"])
        if settings.crop_size != crop_size:
            raise PrepareError(f"cache {cache_dir} holds {settings.crop_size}² crops, the run asks for {crop_size}²: "
                               f"pass --data.crop_size={settings.crop_size} or prepare another cache")
    else:
        files = list_photos(data.data, data.layout, data.split)
        settings = settings_from(data, crop_size)
    rank, world = distributed_share()
    source = {"root": str(Path(data.data).resolve()) if data.data else "", "layout": data.layout, "split": data.split}
    return prepare_cache(files, cache_dir, settings, detect_fn=detect_fn, rank=rank, world=world, source=source,
                         wait=True)


def build_datasets(data, face_model, crop_size: int, seed: int, cache_dir: str | Path,
                   detect_fn: DetectFn | None = None) -> tuple[Dataset, Dataset, dict]:
    """Train/val datasets and a data summary (for the model card) from a :class:`DataConfig`."""
    if data.data == "synthetic":
        full = SyntheticFaceDataset(face_model, n=data.synthetic_count, size=crop_size, seed=seed)
        summary = {"source": "synthetic", "images": len(full)}
    else:
        report = prepared_cache(data, crop_size, cache_dir, detect_fn)
        if report["kept"] == 0:
            reasons = ", ".join(f"{k}: {v}" for k, v in report["rejected"].items() if v)
            raise TrainingDataError(f"{data.data or cache_dir}: none of the {report['images']} photos gave a usable "
                                    f"face ({reasons or 'no photos'})")
        full = CachedFaceDataset(cache_dir)
        summary = {"source": str(data.data or cache_dir), "images": report["images"], "kept": report["kept"],
                   "rejected": report["rejected"]}
    train, val = split_train_val(full, data.val_count, seed)
    summary.update(train=len(train), val=len(val))
    return train, val, summary


