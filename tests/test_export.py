"""Head writers: OBJ/MTL/PNG, GLB, params.json, UV maps, head.npz, write_outputs (atomicity)."""
from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from backend import export
from backend.head import Head, ViewResult
from backend.head_parts import EXPORTED_PARTS, attach_parts, part_meshes


@pytest.fixture(scope="module")
def head(face_model) -> Head:
    rng = np.random.default_rng(0)
    neutral = face_model.mean.numpy().copy()
    basis = face_model.exp_basis.numpy()
    exp = rng.uniform(0.0, 0.5, face_model.n_exp).astype(np.float32)
    verts = neutral + np.einsum("k,kvc->vc", exp, basis)
    view = ViewResult(
        name="photo.jpg",
        image_size=(640, 480),
        pose=np.array([1.5, 0.1, -0.2, 0.05, 3.0, -4.0, 0.0], np.float32),
        sh=rng.normal(size=27).astype(np.float32),
        exp=exp,
        landmarks68=rng.uniform(0, 400, (68, 2)),
        detected68=rng.uniform(0, 400, (68, 2)),
        face_box=np.array([10.0, 20.0, 300.0, 310.0]),
        crop_from_image=np.array([[0.5, 0.0, -3.0], [0.0, 0.5, 4.0]]),
        image=rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
        label="front",
        face_detector="blazeface-short",
        face_score=0.87,
        presence=0.99,
    )
    disp = np.zeros((32, 64), np.float32)
    disp[8:24, 8:24] = rng.uniform(-0.8, 0.8, (16, 16))
    return Head(
        model_name=face_model.name,
        vertices=verts.astype(np.float32),
        neutral=neutral,
        faces=face_model.faces.numpy().astype(np.int32),
        uv=face_model.uv.numpy(),
        faces_uv=face_model.faces_uv.numpy().astype(np.int32),
        id_coeffs=np.zeros(face_model.n_id, np.float32),
        exp_coeffs=exp,
        exp_names=list(face_model.exp_names),
        exp_basis=basis,
        uv_tiles=face_model.uv_tiles,
        albedo=np.full((64, 128, 3), 0.5, np.float32),
        displacement=disp,
        displacement_scale_mm=1.0,
        normal_map=np.tile(np.array([0.5, 0.5, 1.0], np.float32), (32, 64, 1)),
        views=[view],
        timings={"total": 1.25},
        warnings=["test warning"],
    )


def read_obj(path):
    v, vt, vn, f = [], [], [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            v.append([float(x) for x in parts[1:4]])
        elif parts[0] == "vt":
            vt.append([float(x) for x in parts[1:3]])
        elif parts[0] == "vn":
            vn.append([float(x) for x in parts[1:4]])
        elif parts[0] == "f":
            f.append([[int(i) - 1 for i in c.split("/")] for c in parts[1:]])
    return np.array(v), np.array(vt), np.array(vn), np.array(f)


def test_obj_round_trip(head, tmp_path):
    out = export.write_obj(head, tmp_path / "head.obj")
    assert set(out) == {"obj", "mtl", "albedo", "normal"}
    v, vt, vn, f = read_obj(tmp_path / "head.obj")
    np.testing.assert_allclose(v, head.vertices, atol=1e-5)
    np.testing.assert_allclose(vt, head.export_uv, atol=1e-6)
    assert vt[:, 0].max() <= 1.0 and len(vt) == len(head.uv)  # two tiles squeezed into [0,1]
    np.testing.assert_array_equal(f[:, :, 0], head.faces)
    np.testing.assert_array_equal(f[:, :, 1], head.faces_uv)
    np.testing.assert_array_equal(f[:, :, 2], head.faces)
    np.testing.assert_allclose(np.linalg.norm(vn, axis=1), 1.0, atol=1e-5)
    nose = head.vertices[:, 2].argmax()
    assert vn[nose, 2] > 0.8  # outward normals
    mtl = (tmp_path / "head.mtl").read_text()
    assert "map_Kd albedo.png" in mtl and "normal.png" in mtl
    assert "mtllib head.mtl" in (tmp_path / "head.obj").read_text()
    assert np.asarray(Image.open(tmp_path / "albedo.png")).shape == (64, 128, 3)


def test_detailed_obj_is_the_whole_head_with_its_detail(head, tmp_path):
    """head_detailed.obj: every coarse triangle split in four (the fixture's map at 128²), closed
    where the coarse mesh is, the albedo's UV layout, the detail in the geometry."""
    from backend.geometry import detailed_head_mesh

    head = Head(**{**head.__dict__, "displacement": np.kron(head.displacement, np.ones((4, 4), np.float32))})
    with pytest.raises(export.ExportError, match="displacement"):
        export.write_obj(Head(**{**head.__dict__, "displacement": None}), tmp_path / "x.obj", dense=True)
    export.write_obj(head, tmp_path / "head_detailed.obj", dense=True)
    v, vt, _, f = read_obj(tmp_path / "head_detailed.obj")
    mesh = detailed_head_mesh(head)
    assert len(f) == 4 * len(head.faces) and len(v) == len(mesh.verts)
    np.testing.assert_allclose(v, mesh.verts, atol=2e-6 * np.abs(mesh.verts).max())
    assert vt.min() >= 0.0 and vt.max() <= 1.0  # u squeezed by the tile count, like head.obj
    coarse_edges = np.sort(np.concatenate([head.faces[:, [0, 1]], head.faces[:, [1, 2]], head.faces[:, [2, 0]]]), 1)
    dense_edges = np.sort(np.concatenate([f[:, [0, 1], 0], f[:, [1, 2], 0], f[:, [2, 0], 0]]), 1)
    border = lambda e: (np.unique(e, axis=0, return_counts=True)[1] == 1).sum()  # noqa: E731
    assert border(dense_edges) == 2 * border(coarse_edges)  # the same holes (eyes, mouth, neck), no new cuts
    assert np.abs(mesh.displacement).max() > 0.5  # the fixture's ±0.8 mm patch is in the geometry
    assert "normal.png" not in (tmp_path / "head_detailed.mtl").read_text()
    out = export.write_outputs(head, tmp_path / "o")
    assert out["dense_obj"].name == "head_detailed.obj" and out["dense_obj"].exists()


def parse_glb(path):
    blob = path.read_bytes()
    magic, version, total = struct.unpack_from("<III", blob, 0)
    assert (magic, version, total) == (0x46546C67, 2, len(blob))
    jlen, jtype = struct.unpack_from("<II", blob, 12)
    assert jtype == 0x4E4F534A and jlen % 4 == 0
    doc = json.loads(blob[20 : 20 + jlen])
    blen, btype = struct.unpack_from("<II", blob, 20 + jlen)
    assert btype == 0x004E4942 and blen % 4 == 0
    binary = blob[28 + jlen : 28 + jlen + blen]
    assert 28 + jlen + blen == len(blob)
    return doc, binary


def accessor_array(doc, binary, index):
    acc = doc["accessors"][index]
    bv = doc["bufferViews"][acc["bufferView"]]
    assert bv["byteOffset"] % 4 == 0
    ncomp = {"SCALAR": 1, "VEC2": 2, "VEC3": 3}[acc["type"]]
    dtype = {5126: np.float32, 5125: np.uint32}[acc["componentType"]]
    assert bv["byteLength"] == acc["count"] * ncomp * 4
    data = np.frombuffer(binary, dtype, acc["count"] * ncomp, bv["byteOffset"])
    return data.reshape(acc["count"], ncomp) if ncomp > 1 else data


def test_glb(head, tmp_path):
    path = export.write_glb(head, tmp_path / "head.glb")
    doc, binary = parse_glb(path)
    assert doc["asset"]["version"] == "2.0"
    assert doc["buffers"][0]["byteLength"] == len(binary)
    for bv in doc["bufferViews"]:
        assert bv["byteOffset"] + bv["byteLength"] <= len(binary)
    mesh = doc["meshes"][0]
    prim = mesh["primitives"][0]
    pos = accessor_array(doc, binary, prim["attributes"]["POSITION"])
    acc = doc["accessors"][prim["attributes"]["POSITION"]]
    np.testing.assert_allclose(acc["min"], pos.min(0), rtol=1e-6)
    np.testing.assert_allclose(acc["max"], pos.max(0), rtol=1e-6)
    uv = accessor_array(doc, binary, prim["attributes"]["TEXCOORD_0"])
    idx = accessor_array(doc, binary, prim["indices"]).reshape(-1, 3)
    # split at seams: one vertex per unique (position, uv) pair, at least one per UV coordinate
    assert len(pos) >= len(head.uv) and idx.max() == len(pos) - 1
    assert len(idx) == len(head.faces)
    # every triangle's corners match the source mesh (metres, v flipped)
    np.testing.assert_allclose(pos[idx] * 1000.0, head.neutral[head.faces], atol=1e-3)
    np.testing.assert_allclose(uv[idx][..., 0], head.export_uv[head.faces_uv][..., 0], atol=1e-6)
    np.testing.assert_allclose(1.0 - uv[idx][..., 1], head.export_uv[head.faces_uv][..., 1], atol=1e-6)
    # morph targets reproduce the fitted expression
    assert len(prim["targets"]) == 53 and len(mesh["extras"]["targetNames"]) == 53
    assert mesh["extras"]["targetNames"] == head.exp_names
    np.testing.assert_allclose(mesh["weights"], head.exp_coeffs, atol=1e-6)
    posed = pos.astype(np.float64).copy()
    for w, tgt in zip(mesh["weights"], prim["targets"]):
        posed += w * accessor_array(doc, binary, tgt["POSITION"])
    np.testing.assert_allclose(posed[idx] * 1000.0, head.vertices[head.faces], atol=2e-3)
    # embedded textures decode
    mat = doc["materials"][0]
    img = doc["images"][doc["textures"][mat["pbrMetallicRoughness"]["baseColorTexture"]["index"]]["source"]]
    bv = doc["bufferViews"][img["bufferView"]]
    import io

    png = Image.open(io.BytesIO(binary[bv["byteOffset"] : bv["byteOffset"] + bv["byteLength"]]))
    assert png.size == (128, 64)
    assert "normalTexture" in mat


def test_params_json(head, tmp_path):
    path = export.write_params_json(head, tmp_path / "params.json")
    doc = json.loads(path.read_text())
    for key in ("format", "version", "model", "mode", "quality", "timings", "displacement_scale_mm", "warnings",
                "coeffs", "views"):
        assert key in doc
    assert doc["format"] == "photohead.params" and doc["warnings"] == ["test warning"]
    assert len(doc["coeffs"]["exp"]) == 53 and set(doc["coeffs"]["exp"]) == set(head.exp_names)
    view = doc["views"][0]
    assert np.array(view["landmarks68"]).shape == (68, 2)
    np.testing.assert_allclose(view["landmarks68"], head.views[0].landmarks68)
    assert np.array(view["detected68"]).shape == (68, 2)
    assert list(view["pose"]) == ["f", "rx", "ry", "rz", "tx", "ty", "tz"]
    assert view["pose"]["ry"] == pytest.approx(-0.2)
    assert view["image_size"] == [640, 480] and view["projection"] == "orthographic"
    assert len(view["sh"]) == 27 and len(view["coeffs"]["id"]) == len(head.id_coeffs)
    assert view["coeffs"]["exp"]["jawOpen"] == pytest.approx(float(head.exp_coeffs[head.exp_names.index("jawOpen")]))


def test_params_json_rejects_nan_and_bad_shapes(head, tmp_path):
    bad = Head(**{**head.__dict__, "timings": {"total": float("nan")}})
    doc = json.loads(export.write_params_json(bad, tmp_path / "p.json").read_text())
    assert doc["timings"]["total"] is None
    view = ViewResult(**{**head.views[0].__dict__, "landmarks68": np.zeros((5, 2))})
    with pytest.raises(export.ExportError, match="landmarks68"):
        export.write_params_json(Head(**{**head.__dict__, "views": [view]}), tmp_path / "q.json")
    assert not (tmp_path / "q.json").exists()


def test_uv_maps(head, tmp_path):
    out = export.write_uv_maps(head, tmp_path)
    assert set(out) == {"albedo", "displacement", "normal"}
    disp = np.asarray(Image.open(out["displacement"]))
    assert disp.shape == (32, 64) and disp.dtype in (np.uint16, np.int32)
    assert disp[0, 0] == 32768
    back = export.uint16_to_displacement(disp, head.displacement_scale_mm)
    np.testing.assert_allclose(back, head.displacement, atol=1.0 / 32767)
    normal = np.asarray(Image.open(out["normal"]))
    assert normal.dtype == np.uint8 and tuple(normal[0, 0]) == (128, 128, 255)


def test_save_load_head_round_trip(head, tmp_path):
    path = export.save_head(head, tmp_path / "head.npz")
    back = export.load_head(path)
    for name, value in head.__dict__.items():
        other = getattr(back, name)
        if isinstance(value, np.ndarray):
            assert other.dtype == value.dtype, name
            np.testing.assert_array_equal(other, value, err_msg=name)
        elif name != "views":
            assert other == value, name
    v0, v1 = head.views[0], back.views[0]
    for name, value in v0.__dict__.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(v1, name), value, err_msg=name)
        else:
            assert getattr(v1, name) == value, name
    assert isinstance(v1.image_size, tuple)
    with np.load(path, allow_pickle=False) as data:  # readable without pickle
        assert "__meta__" in data.files


def test_load_head_rejects_foreign_file(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(export.ExportError, match="Photohead"):
        export.load_head(tmp_path / "x.npz")


def test_write_outputs(head, tmp_path):
    preview = np.zeros((20, 30, 3), np.uint8)
    out = export.write_outputs(head, tmp_path / "out", previews={"preview": preview})
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert names == {"head.obj", "head.mtl", "albedo.png", "displacement.png", "normal.png", "head.glb",
                     "params.json", "head.npz", "preview.png", "head_detailed.obj", "head_detailed.mtl"}
    assert all(p.exists() and p.parent == tmp_path / "out" for p in out.values())
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary leftovers
    np.testing.assert_array_equal(export.load_head(out["npz"]).vertices, head.vertices)


def test_write_outputs_failure_leaves_nothing(head, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "write_glb", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        export.write_outputs(head, tmp_path / "new")
    assert list(tmp_path.iterdir()) == []
    old = tmp_path / "old"
    old.mkdir()
    (old / "head.obj").write_text("old content")
    (old / "mine.txt").write_text("keep")
    with pytest.raises(RuntimeError):
        export.write_outputs(head, old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    assert sorted(p.name for p in old.iterdir()) == ["head.obj", "mine.txt"]
    assert (old / "head.obj").read_text() == "old content"
    monkeypatch.undo()
    (old / "head_detailed.obj").write_text("stale dense mesh of an earlier run")
    export.write_outputs(Head(**{**head.__dict__, "displacement": None}), old)
    assert (old / "mine.txt").read_text() == "keep" and (old / "head.obj").read_text() != "old content"
    assert not (old / "head_detailed.obj").exists()  # this head has no detail
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


def test_atomic_file_write_failure(head, tmp_path, monkeypatch):
    def bad_png(image):
        raise OSError("encoder failed")

    monkeypatch.setattr(export, "encode_png", bad_png)
    with pytest.raises(OSError):
        export.write_glb(head, tmp_path / "head.glb")
    assert list(tmp_path.iterdir()) == []


def test_preview_helpers():
    from backend.preview import compose_panels, draw_landmarks, resize_to_height

    img = np.zeros((40, 60, 3), np.uint8)
    out = draw_landmarks(img, np.array([[10.0, 20.0], [59.4, 0.0], [-50.0, 5.0], [np.nan, 1.0]]), (255, 0, 0), 2)
    assert img.max() == 0  # input untouched
    assert tuple(out[20, 10]) == (255, 0, 0) and tuple(out[20, 12]) == (255, 0, 0) and out[20, 13].max() == 0
    assert tuple(out[0, 59]) == (255, 0, 0)  # clipped at the border
    assert out[:, :5].max() == 0  # the point far outside draws nothing
    assert resize_to_height(np.zeros((20, 30, 3), np.uint8), 40).shape == (40, 60, 3)
    panels = [np.full((40, 60, 3), 200, np.uint8), np.zeros((20, 20, 3), np.float32), np.full((80, 40, 3), 255, np.uint8)]
    comp = compose_panels(panels, ["input", "render", ""])
    assert comp.shape == (40, 60 + 40 + 20, 3) and comp.dtype == np.uint8
    assert comp[:12, :30].min() < 50 and comp[:12, :30].max() > 240  # label box + text on the first panel
    assert (comp[20:, 100:] == 255).all()  # unlabelled panel untouched
    with pytest.raises(ValueError, match="label"):
        compose_panels(panels, ["a"])


def test_make_preview():
    from backend.preview import blend, make_preview

    photo = np.zeros((100, 80, 3), np.uint8)
    render = np.full((100, 80, 3), 200, np.uint8)
    alpha = np.zeros((100, 80))
    alpha[:50] = 1.0
    b = blend(photo, render, alpha, opacity=0.5)
    assert b[10, 10, 0] == 100 and b[80, 10, 0] == 0
    pts = np.full((68, 2), 40.0)
    prev = make_preview(photo, render, alpha, side=np.zeros((50, 50, 3), np.uint8), fitted68=pts, detected68=pts + 20)
    assert prev.shape == (100, 80 * 3 + 100, 3)
    assert tuple(prev[40, 160 + 40]) == (255, 64, 64) and tuple(prev[60, 160 + 60]) == (64, 255, 64)


def test_outputs_get_normal_permissions(head, tmp_path):
    import os

    umask = os.umask(0o022)
    os.umask(umask)
    out = export.write_outputs(head, tmp_path / "perm")
    assert (out["obj"].stat().st_mode & 0o777) == 0o666 & ~umask
    assert ((tmp_path / "perm").stat().st_mode & 0o777) == 0o777 & ~umask


def test_write_outputs_swap_failure_keeps_old(head, tmp_path, monkeypatch):
    """The finished folder replaces an earlier result in one swap; when it fails the old result
    stays as it was (every write step: tests/test_fault_injection.py)."""
    from backend import atomic_folder

    old = tmp_path / "old"
    export.write_outputs(head, old)
    (old / "head_detailed.obj").write_text("earlier dense mesh")
    before = {p.name: p.read_bytes() for p in old.iterdir()}

    def failing(a, b):
        raise OSError("rename failed")

    monkeypatch.setattr(atomic_folder, "exchange", failing)
    changed = Head(**{**head.__dict__, "vertices": head.vertices + 1.0})
    with pytest.raises(export.ExportError, match="rename failed"):
        export.write_outputs(changed, old)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


# -- parts (eyes, sockets, teeth, lashes: backend.head_parts) -----------------------------------
@pytest.fixture(scope="module")
def parts_head(head, face_model):
    if not face_model.has_parts:
        pytest.skip("the face model has no parts file (ict_parts.npz)")
    out = dataclasses.replace(head)
    attach_parts(out, face_model, torch.zeros(1, face_model.n_id), torch.from_numpy(head.exp_coeffs)[None])
    return out


def test_attach_parts_follows_the_head(parts_head, face_model):
    head = parts_head
    assert head.part_names == list(EXPORTED_PARTS)
    V = len(head.vertices)
    assert head.parts_faces.max() == V + len(head.parts_vertices) - 1 and head.parts_faces.min() < V
    expected = head.parts_neutral + np.einsum("k,kvc->vc", head.exp_coeffs, head.parts_exp_basis)
    np.testing.assert_allclose(head.parts_vertices, expected, atol=1e-3)
    names = head.part_material_names
    eye = slice(*head.part_face_range[head.part_names.index("eyeball_left")])
    assert {names[m] for m in np.unique(head.parts_material[eye])} == {"sclera", "iris", "pupil"}
    pupil = (head.parts_material[eye] == names.index("pupil")).sum()
    iris = (head.parts_material[eye] == names.index("iris")).sum()
    assert 0.2 < pupil / (pupil + iris) < 0.7
    meshes = part_meshes(head)
    socket = meshes[0]  # the mouth socket copies the skin's inner-lip rim: same positions
    rim = socket.source < V
    np.testing.assert_array_equal(socket.vertices[rim], head.vertices[socket.source[rim]])
    assert socket.exp_basis.shape == (len(head.exp_names), len(socket.vertices), 3)


def test_obj_has_part_groups_and_materials(parts_head, tmp_path):
    head = parts_head
    written = export.write_obj(head, tmp_path / "head.obj", textures=False)
    text = written["obj"].read_text()
    groups = [line.split()[1] for line in text.splitlines() if line.startswith("g ")]
    assert groups == list(EXPORTED_PARTS)
    v, vt, vn, f = read_obj(written["obj"])
    assert len(v) == len(head.vertices) + len(head.parts_vertices) == len(vn)
    assert len(f) == len(head.faces) + len(head.parts_faces)
    np.testing.assert_allclose(v[len(head.vertices):], head.parts_vertices, atol=1e-5)
    np.testing.assert_array_equal(f[len(head.faces):, :, 0], head.parts_faces)
    mtl = written["mtl"].read_text()
    used = {line.split()[1] for line in text.splitlines() if line.startswith("usemtl ")}
    assert used <= {line.split()[1] for line in mtl.splitlines() if line.startswith("newmtl ")}
    assert "part_teeth" in used and "part_iris" in used
    dense = export.write_obj(head, tmp_path / "dense.obj", dense=True, textures=False)["obj"].read_text()
    assert "\ng " not in dense and "part_" not in dense  # the detailed mesh stays skin-only


def _morph_target(doc, binary, index):
    """A (possibly sparse) VEC3 float accessor as a dense (N,3) array."""
    acc = doc["accessors"][index]
    if "sparse" not in acc:
        return accessor_array(doc, binary, index) if "bufferView" in acc else np.zeros((acc["count"], 3), np.float32)
    out = np.zeros((acc["count"], 3), np.float32)
    sp = acc["sparse"]
    iv, vv = doc["bufferViews"][sp["indices"]["bufferView"]], doc["bufferViews"][sp["values"]["bufferView"]]
    idx = np.frombuffer(binary, np.uint32, sp["count"], iv["byteOffset"])
    out[idx] = np.frombuffer(binary, np.float32, sp["count"] * 3, vv["byteOffset"]).reshape(-1, 3)
    np.testing.assert_allclose(out.min(0), acc["min"], atol=1e-7)
    return out


def test_glb_has_part_nodes_with_morphs(parts_head, tmp_path):
    head = parts_head
    doc, binary = parse_glb(export.write_glb(head, tmp_path / "head.glb"))
    nodes = doc["nodes"]
    assert [nodes[i]["name"] for i in nodes[0]["children"]] == list(EXPORTED_PARTS)
    teeth = doc["meshes"][nodes[nodes[0]["children"][EXPORTED_PARTS.index("teeth")]]["mesh"]]
    assert teeth["extras"]["targetNames"] == head.exp_names
    np.testing.assert_allclose(teeth["weights"], head.exp_coeffs, atol=1e-6)
    prim = teeth["primitives"][0]
    base = accessor_array(doc, binary, prim["attributes"]["POSITION"])
    jaw = _morph_target(doc, binary, prim["targets"][head.exp_names.index("jawOpen")]["POSITION"])
    blink = _morph_target(doc, binary, prim["targets"][head.exp_names.index("eyeBlink_L")]["POSITION"])
    assert np.abs(blink).max() < 1e-5  # still rows are stored as zeros (sparse or no data at all)
    assert any("sparse" in doc["accessors"][t["POSITION"]] for t in prim["targets"])
    assert -jaw[:, 1].min() > 0.005  # jawOpen lowers the lower teeth by more than 5 mm (metres here)
    assert base.shape[1] == 3
    material = doc["materials"][prim["material"]]
    assert material["name"] == "part_teeth" and min(material["pbrMetallicRoughness"]["baseColorFactor"][:3]) > 0.4
    eye = doc["meshes"][nodes[nodes[0]["children"][EXPORTED_PARTS.index("eyeball_left")]]["mesh"]]
    assert len(eye["primitives"]) == 3  # sclera, iris, pupil


def test_head_npz_keeps_parts(parts_head, tmp_path):
    head = parts_head
    back = export.load_head(export.save_head(head, tmp_path / "head.npz", compress=True))
    assert back.part_names == head.part_names and back.part_material_names == head.part_material_names
    np.testing.assert_array_equal(back.parts_faces, head.parts_faces)
    np.testing.assert_array_equal(back.parts_exp_basis, head.parts_exp_basis)


def test_previews_show_the_parts(head, parts_head):
    from backend.preview_render import head_mesh, preview_texture, turntable_renders

    v, f, uv, fuv = head_mesh(parts_head, detailed=False)
    eyeballs = sum(int(b - a) for name, (a, b) in zip(parts_head.part_names, parts_head.part_face_range)
                   if name.startswith("eyeball"))
    assert f.shape[0] == len(head.faces) + len(parts_head.parts_faces) + 3 * eyeballs  # eyeballs split 4 ways (shaded)
    tex, u_max = preview_texture(parts_head)
    assert u_max == head.uv_tiles + 1 and tex.shape[1] == head.albedo.shape[1] + head.albedo.shape[0]
    with_parts, _ = turntable_renders(parts_head, (0.0,), size=160)
    skin_only, _ = turntable_renders(head, (0.0,), size=160)
    changed = np.abs(with_parts.astype(int) - skin_only.astype(int)).max(-1) > 20
    assert changed.sum() > 30  # the eyes (and the lips' slit) now show the parts
    rows = np.flatnonzero(changed.any(1))
    assert rows.min() > 30 and rows.max() < 130  # in the face, not around the silhouette


def test_compressed_head_npz_is_deflated_and_reads_back(head, tmp_path):
    """save_head(compress=True) writes deflated members at NPZ_COMPRESS_LEVEL that np.load reads;
    every array comes back bit for bit and the file is smaller than the stored one."""
    import zipfile

    packed = export.save_head(head, tmp_path / "packed.npz", compress=True)
    stored = export.save_head(head, tmp_path / "stored.npz")
    with zipfile.ZipFile(packed) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
    with zipfile.ZipFile(stored) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    assert packed.stat().st_size < 0.9 * stored.stat().st_size
    back = export.load_head(packed)
    np.testing.assert_array_equal(back.vertices, head.vertices)
    np.testing.assert_array_equal(back.albedo, head.albedo)
