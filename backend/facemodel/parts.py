"""A face model's extra parts: eyeballs, eye and mouth sockets, gums, tongue, teeth, lashes.

ICT-FaceKit's whole model has 17 geometries; ``ict_head.npz`` keeps the skin (#0, #1) and
``ict_parts.npz`` beside it the other 15 (#2–#16). The parts move with the same identity and
expression coefficients as the skin, through their own bases:
``parts = mean + Σ_i α_i·id_basis_i + Σ_j β_j·exp_basis_j`` (mm). Their triangles index
``concatenate(skin, parts)`` (global ids): the mouth and eye sockets stitch onto the skin's
inner-lip and eyelid rims. File format: the ``ict_parts.npz`` section of the model folder's
README.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import ModelFormatError
from ..io_utils import atomic_savez
from .objio import fan_triangulate
from .npz_cache import read_cached, write_cached

__all__ = [
    "FacePartsData", "ICT_PARTS", "parts_file_for", "load_parts_npz", "save_parts_npz", "ict_parts_from_obj",
    "match_parts",
]

# ICT-FaceKit README, "Geometries" (#2–#16): name, [first, end) vertex ids, [first, end) polygon
# ids in the full 26,719-vertex / 26,384-polygon mesh, and ICT's material for it.
ICT_PARTS = (
    ("mouth_socket", (11248, 13294), (11144, 13226), "M_BackHead"),
    ("eye_socket_left", (13294, 13678), (13226, 13630), "M_BackHead"),
    ("eye_socket_right", (13678, 14062), (13630, 14034), "M_BackHead"),
    ("gums_and_tongue", (14062, 17039), (14034, 17006), "M_GumsTongue"),
    ("teeth", (17039, 21451), (17006, 21496), "M_Teeth"),
    ("eyeball_left", (21451, 23021), (21496, 23094), "M_ScleraLeft/M_IrisLeft"),
    ("eyeball_right", (23021, 24591), (23094, 24692), "M_ScleraRight/M_IrisRight"),
    ("lacrimal_fluid_left", (24591, 24795), (24692, 24855), "M_LacrimalFluid"),
    ("lacrimal_fluid_right", (24795, 24999), (24855, 25018), "M_LacrimalFluid"),
    ("eye_blend_left", (24999, 25023), (25018, 25033), "M_EyeBlend"),
    ("eye_blend_right", (25023, 25047), (25033, 25048), "M_EyeBlend"),
    ("eye_occlusion_left", (25047, 25199), (25048, 25176), "M_EyeOcclusion"),
    ("eye_occlusion_right", (25199, 25351), (25176, 25304), "M_EyeOcclusion"),
    ("eyelashes_left", (25351, 26035), (25304, 25844), "M_EyeLashes"),
    ("eyelashes_right", (26035, 26719), (25844, 26384), "M_EyeLashes"),
)
EYE_REGION_MATERIALS = ("M_ScleraLeft", "M_IrisLeft", "M_ScleraRight", "M_IrisRight")
EYE_REGION_NAMES = ("sclera_left", "iris_left", "sclera_right", "iris_right")
ICT_PARTS_FILE = "ict_parts.npz"


@dataclass
class FacePartsData:
    """Arrays of a model's parts (numpy, model space, mm). P part vertices, Fp triangles, n parts.

    - ``vertex_offset``: the skin's vertex count V; part vertex p has global id V + p.
    - ``mean`` (P,3) mm; ``id_basis`` (K_id,P,3) mm per unit (1 std) identity coefficient
      (float16 in ICT's file); ``exp_basis`` (K_exp,P,3) mm per unit blendshape weight, in
      ``exp_names`` order (the skin's).
    - ``faces`` (Fp,3) int global ids into ``concatenate(skin, parts)``, counter-clockwise from
      outside; ``faces_uv`` (Fp,3) into ``uv`` (Tp,2) (ICT's tiles, u up to 7).
    - ``part_names``, ``part_materials`` (n,); ``part_vertex_range`` (n,2) [start, end) global
      ids; ``part_face_range`` (n,2) [start, end) rows of ``faces``.
    - ``eye_region_of_face`` (Fp,) int8: index into ``eye_region_names`` (sclera/iris left/right), −1 elsewhere.
    """

    vertex_offset: int
    mean: np.ndarray
    id_basis: np.ndarray
    exp_basis: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    faces_uv: np.ndarray
    part_names: list[str]
    part_materials: list[str]
    part_vertex_range: np.ndarray
    part_face_range: np.ndarray
    eye_region_of_face: np.ndarray
    eye_region_names: list[str] = field(default_factory=lambda: list(EYE_REGION_NAMES))
    exp_names: list[str] = field(default_factory=list)
    face_polygon: np.ndarray | None = None
    source: str = ""
    license: str = ""


def parts_file_for(model_path: str | Path) -> Path:
    """Where a model file's parts live: ``ict_head.npz`` → ``ict_parts.npz`` beside it, any other
    ``<stem>.npz`` → ``<stem>_parts.npz``."""
    path = Path(model_path)
    stem = path.stem[: -len("_head")] if path.stem.endswith("_head") else path.stem
    return path.with_name(f"{stem}_parts.npz")


def load_parts_npz(path: str | Path) -> FacePartsData:
    """Read a parts file (the ``ict_parts.npz`` format). Raises :class:`ModelFormatError`."""
    path = Path(path)
    required = ("vertex_offset", "mean", "id_basis", "exp_basis", "faces", "uv", "faces_uv", "part_names",
                "part_vertex_range", "part_face_range")
    a = read_cached(path)  # an uncompressed copy from an earlier load (npz_cache), else the file
    if a is None:
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in required if k not in z.files]
                if missing:
                    raise ModelFormatError(f"{path}: not a face-model parts file: missing key(s) {', '.join(missing)}")
                a = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise ModelFormatError(f"{path}: not a readable parts .npz ({exc})") from exc
        write_cached(path, a)
    P = a["mean"].shape[0]
    offset = int(a["vertex_offset"])
    if a["mean"].shape != (P, 3) or a["id_basis"].shape[1:] != (P, 3) or a["exp_basis"].shape[1:] != (P, 3):
        raise ModelFormatError(f"{path}: mean/id_basis/exp_basis must be (P,3)/(K,P,3)")
    if a["faces"].size and (a["faces"].min() < 0 or a["faces"].max() >= offset + P):
        raise ModelFormatError(f"{path}: face ids outside 0..{offset + P - 1}")
    n_faces = a["faces"].shape[0]
    eye = a.get("eye_region_of_face", np.full(n_faces, -1, np.int8))
    return FacePartsData(
        vertex_offset=offset, mean=a["mean"].astype(np.float32), id_basis=a["id_basis"], exp_basis=a["exp_basis"],
        faces=a["faces"].astype(np.int64), uv=a["uv"].astype(np.float32), faces_uv=a["faces_uv"].astype(np.int64),
        part_names=[str(s) for s in a["part_names"]],
        part_materials=[str(s) for s in a.get("part_materials", a["part_names"])],
        part_vertex_range=a["part_vertex_range"].astype(np.int64), part_face_range=a["part_face_range"].astype(np.int64),
        eye_region_of_face=eye.astype(np.int8),
        eye_region_names=[str(s) for s in a.get("eye_region_names", np.array(EYE_REGION_NAMES))],
        exp_names=[str(s) for s in a.get("exp_names", np.array([], str))],
        face_polygon=a.get("face_polygon"),
        source=str(a.get("source", "")), license=str(a.get("license", "")),
    )


def save_parts_npz(parts: FacePartsData, path: str | Path) -> Path:
    """Write ``parts`` in the ``ict_parts.npz`` format, atomically. Returns the path."""
    arrays = {
        "vertex_offset": np.array(parts.vertex_offset, np.int32),
        "mean": np.asarray(parts.mean, np.float32),
        "id_basis": np.asarray(parts.id_basis),
        "exp_basis": np.asarray(parts.exp_basis, np.float32),
        "exp_names": np.array(parts.exp_names),
        "faces": np.asarray(parts.faces, np.int32),
        "faces_uv": np.asarray(parts.faces_uv, np.int32),
        "uv": np.asarray(parts.uv, np.float32),
        "part_names": np.array(parts.part_names),
        "part_materials": np.array(parts.part_materials),
        "part_vertex_range": np.asarray(parts.part_vertex_range, np.int32),
        "part_face_range": np.asarray(parts.part_face_range, np.int32),
        "eye_region_names": np.array(parts.eye_region_names),
        "eye_region_of_face": np.asarray(parts.eye_region_of_face, np.int8),
        "unit": np.array("mm"),
        "source": np.array(parts.source),
        "license": np.array(parts.license),
    }
    if parts.face_polygon is not None:
        arrays["face_polygon"] = np.asarray(parts.face_polygon, np.int32)
    path = Path(path)
    atomic_savez(path, arrays)
    return path


_MTL_OR_FACE = re.compile(rb"^(usemtl|f)[ \t]+([^\r\n]*)", re.M)


def _polygon_materials(obj_bytes: bytes) -> tuple[list[str], np.ndarray]:
    """ICT's ``usemtl`` names and, per polygon (``f`` line, in order), the index of the one in force (−1: none)."""
    names: list[str] = []
    current = -1
    per_polygon: list[int] = []
    for m in _MTL_OR_FACE.finditer(obj_bytes):
        if m.group(1) == b"usemtl":
            name = m.group(2).decode("utf-8", "replace").strip()
            if name not in names:
                names.append(name)
            current = names.index(name)
        else:
            per_polygon.append(current)
    return names, np.asarray(per_polygon, np.int64)


def ict_parts_from_obj(
    neutral, neutral_path: Path, mean_mm: np.ndarray, id_basis: np.ndarray, exp_basis: np.ndarray,
    exp_names: list[str], source: str, license: str,
) -> FacePartsData:
    """Topology, UVs and materials of ICT's parts from the neutral OBJ, with bases the converter read.

    ``neutral``: the :class:`~.objio.ObjMesh` of ``generic_neutral_mesh.obj`` (at ``neutral_path``,
    re-read for its ``usemtl`` lines); ``mean_mm`` (P,3), ``id_basis`` (K_id,P,3) float16,
    ``exp_basis`` (K_exp,P,3) float32 rows ``vertex_offset…`` of the full mesh, in mm.
    """
    first_vertex, first_polygon = ICT_PARTS[0][1][0], ICT_PARTS[0][2][0]
    start = int(neutral.offsets[first_polygon])
    counts = neutral.counts[first_polygon:]
    faces = fan_triangulate(counts, neutral.poly_v[start:])
    faces_uv_full = fan_triangulate(counts, neutral.poly_uv[start:])
    uv_used, faces_uv = np.unique(faces_uv_full, return_inverse=True)
    face_polygon = np.repeat(np.arange(first_polygon, first_polygon + counts.size), counts - 2)
    face_start = np.searchsorted(face_polygon, [p[2][0] for p in ICT_PARTS])
    face_end = np.searchsorted(face_polygon, [p[2][1] for p in ICT_PARTS])
    for (name, (v0, v1), _, _), f0, f1 in zip(ICT_PARTS, face_start, face_end):
        ids = faces[f0:f1]
        own = (ids >= v0) & (ids < v1)
        rim = ids < first_vertex  # sockets stitch onto the skin
        if not np.all(own | rim):
            raise ModelFormatError(f"{neutral_path}: ICT part {name} uses vertices outside its range (not ICT's layout)")
    names, material = _polygon_materials(neutral_path.read_bytes())
    material = material[face_polygon]
    eye = np.full(len(faces), -1, np.int8)
    for k, mat in enumerate(EYE_REGION_MATERIALS):
        if mat in names:
            eye[material == names.index(mat)] = k
    return FacePartsData(
        vertex_offset=first_vertex, mean=mean_mm, id_basis=id_basis, exp_basis=exp_basis, faces=faces,
        uv=neutral.uv[uv_used].astype(np.float32), faces_uv=faces_uv.reshape(faces.shape),
        part_names=[p[0] for p in ICT_PARTS], part_materials=[p[3] for p in ICT_PARTS],
        part_vertex_range=np.array([p[1] for p in ICT_PARTS], np.int64),
        part_face_range=np.stack([face_start, face_end], 1).astype(np.int64),
        eye_region_of_face=eye, exp_names=list(exp_names), face_polygon=face_polygon.astype(np.int64),
        source=source + " [geometries #2-#16]", license=license,
    )


def match_parts(parts: FacePartsData, n_verts: int, n_id: int, exp_names: list[str], where: str) -> FacePartsData:
    """``parts`` made to follow a skin model with ``n_verts`` vertices, ``n_id`` identity modes and
    expressions ``exp_names``: identity modes cut to ``n_id``, expressions reordered to the skin's.
    Raises :class:`ModelFormatError` when they cannot (another model's parts)."""
    if parts.vertex_offset != n_verts:
        raise ModelFormatError(f"{where}: parts start at vertex {parts.vertex_offset}, the skin has {n_verts} vertices")
    if parts.id_basis.shape[0] < n_id:
        raise ModelFormatError(f"{where}: parts have {parts.id_basis.shape[0]} identity modes, the skin {n_id}")
    names = list(parts.exp_names)
    missing = [n for n in exp_names if n not in names]
    if missing:
        raise ModelFormatError(f"{where}: parts lack the skin's expression(s) {', '.join(missing[:5])}")
    order = [names.index(n) for n in exp_names]

    return replace(parts, id_basis=parts.id_basis[:n_id], exp_basis=parts.exp_basis[order], exp_names=list(exp_names))
