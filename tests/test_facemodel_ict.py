"""ICT-FaceKit converter (against the shipped ict_head.npz), the OBJ reader, `photohead models`."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from backend.errors import ModelFormatError
from backend.facemodel.ict_convert import ICTConvertSettings, convert_ict
from backend.facemodel.objio import fan_triangulate, read_obj, read_obj_vertices

ICT = Path(__file__).resolve().parents[2] / "shared" / "models" / "ict_facekit"
SAMPLE = ICT / "raw_sample"
EXPS = ["jawOpen", "eyeBlink_L"]


@pytest.fixture(scope="module")
def ict_ref():
    if not (ICT / "ict_head.npz").exists() or not SAMPLE.exists():
        pytest.skip("ICT model / raw_sample not present")
    with np.load(ICT / "ict_head.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def converted(ict_ref):
    return convert_ict(SAMPLE, ICTConvertSettings(n_identity=2, expressions=EXPS))


def test_convert_matches_shipped_npz(converted, ict_ref):
    d, r = converted, ict_ref
    np.testing.assert_allclose(d.mean, r["mean"], atol=1e-5)
    np.testing.assert_allclose(d.id_basis, r["id_basis"][:2], atol=1e-5)
    names = list(r["exp_names"])
    np.testing.assert_allclose(d.exp_basis, r["exp_basis"][[names.index(n) for n in EXPS]], atol=1e-5)
    for key in ("faces", "faces_uv", "landmarks68", "region"):
        np.testing.assert_array_equal(getattr(d, key), r[key], err_msg=key)
    np.testing.assert_allclose(d.uv, r["uv"], atol=1e-7)
    for key in ("quads", "quads_uv", "jawline_right", "jawline_left", "jawline_right_ext", "jawline_left_ext",
                "fitting_verts", "rigid_verts"):
        np.testing.assert_array_equal(d.extras[key], r[key], err_msg=key)
    assert d.exp_names == EXPS and list(d.region_names) == list(r["region_names"])
    assert str(r["source"]) in d.source and "partial" in d.source
    assert np.all(d.id_std == 1.0)


def test_landmarks_are_ict_multipie_list_unchanged(converted):
    index = json.loads((SAMPLE / "vertex_indices.json").read_text())
    np.testing.assert_array_equal(converted.landmarks68, index["idx_to_landmark_verts"])


def test_npz_round_trip(converted, tmp_path):
    from backend.facemodel import FaceModel, load_model
    from backend.facemodel.npz import save_npz

    path = save_npz(converted, tmp_path / "ict_small.npz")
    model = load_model(path)
    ref = FaceModel(converted)
    assert model.n_id == 2 and model.exp_names == EXPS and model.face_mask_regions == (0, 1)
    for name in ("mean", "id_basis", "exp_basis", "faces", "faces_uv", "uv", "landmarks68", "region"):
        assert np.array_equal(getattr(model, name).numpy(), getattr(ref, name).numpy()), name


def test_ict_folder_loads_through_dispatcher(ict_ref):
    from backend.facemodel import load_model_data

    data = load_model_data(SAMPLE)  # a FaceXModel folder → converter, whatever shapes it holds
    assert data.id_basis.shape[0] == 2 and set(data.exp_names) == set(EXPS)


def test_missing_and_foreign_inputs(tmp_path, ict_ref):
    with pytest.raises(ModelFormatError, match=r"missing ICT file\(s\) identity002\.obj"):
        convert_ict(SAMPLE, ICTConvertSettings(n_identity=3, expressions=[]))
    with pytest.raises(ModelFormatError, match=r"missing ICT file\(s\) identity000\.obj.*and 148 more"):
        convert_ict(_index_only(tmp_path))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "vertex_indices.json").write_text(json.dumps({"expressions": []}))
    with pytest.raises(ModelFormatError, match=r"vertex_indices\.json: missing key 'idx_to_landmark_verts'"):
        convert_ict(bad)


def _index_only(tmp_path: Path) -> Path:
    folder = tmp_path / "index_only"
    folder.mkdir()
    shutil.copy(SAMPLE / "vertex_indices.json", folder)
    shutil.copy(SAMPLE / "generic_neutral_mesh.obj", folder)
    return folder


# --- OBJ reader -------------------------------------------------------------------------------
def _slow_reference(path: Path):
    verts, uvs, counts, pv, pt = [], [], [], [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            verts.append([float(x) for x in parts[1:4]])
        elif parts[0] == "vt":
            uvs.append([float(x) for x in parts[1:3]])
        elif parts[0] == "f":
            counts.append(len(parts) - 1)
            for corner in parts[1:]:
                fields = corner.split("/")
                pv.append(int(fields[0]) - 1)
                if len(fields) > 1 and fields[1]:
                    pt.append(int(fields[1]) - 1)
    return np.array(verts), np.array(uvs), np.array(counts), np.array(pv), np.array(pt)


@pytest.mark.parametrize("corner", ["{v}", "{v}/{t}", "{v}/{t}/{v}", "{v}//{v}"])
def test_obj_reader_matches_reference(tmp_path, corner):
    rng = np.random.default_rng(0)
    verts, uv = rng.normal(size=(9, 3)), rng.uniform(size=(9, 2))
    polys = [[0, 1, 2, 3], [3, 4, 5], [5, 6, 7, 8, 0]]  # quad, triangle, pentagon
    lines = ["# comment", "o thing", "mtllib x.mtl"] + [f"v {a:.6f} {b:.6f} {c:.6f}" for a, b, c in verts]
    lines += [f"vt {a:.6f} {b:.6f}" for a, b in uv] + ["vn 0 0 1", "usemtl m", "s off"]
    lines += ["f " + " ".join(corner.format(v=i + 1, t=i + 1) for i in p) for p in polys]
    path = tmp_path / "t.obj"
    path.write_text("\r\n".join(lines) + "\r\n")  # CRLF too
    mesh = read_obj(path)
    rv, ruv, rc, rpv, rpt = _slow_reference(path)
    np.testing.assert_allclose(mesh.vertices, rv)
    np.testing.assert_array_equal(mesh.counts, rc)
    np.testing.assert_array_equal(mesh.poly_v, rpv)
    if "{t}" in corner:
        np.testing.assert_array_equal(mesh.poly_uv, rpt)
        np.testing.assert_allclose(mesh.uv, ruv)
    else:
        assert mesh.poly_uv is None
    tris = mesh.triangles()
    np.testing.assert_array_equal(tris, [[0, 1, 2], [0, 2, 3], [3, 4, 5], [5, 6, 7], [5, 7, 8], [5, 8, 0]])
    np.testing.assert_allclose(read_obj_vertices(path), rv)


def test_obj_reader_on_ict_and_errors(tmp_path, ict_ref):
    mesh = read_obj(SAMPLE / "generic_neutral_mesh.obj")
    assert mesh.vertices.shape == (26719, 3) and mesh.uv.shape == (28911, 2) and mesh.counts.size == 26384
    assert fan_triangulate(mesh.counts, mesh.poly_v).shape[0] == int((mesh.counts - 2).sum())
    bad = tmp_path / "bad.obj"
    bad.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n")
    with pytest.raises(ModelFormatError, match=r"bad\.obj: polygon vertex index out of range"):
        read_obj(bad)
    bad.write_text("hello\n")
    with pytest.raises(ModelFormatError, match=r"bad\.obj: no vertices"):
        read_obj(bad)


# --- CLI --------------------------------------------------------------------------------------
def test_cli_convert_and_list(tmp_path, monkeypatch, capsys, ict_ref):
    from backend.cli import main

    out = tmp_path / "models" / "ict_facekit" / "ict_head.npz"
    with pytest.raises(SystemExit):
        main(["models", "convert-ict", str(SAMPLE), str(out), "--bogus"])
    assert main(["models", "convert-ict", str(SAMPLE), str(out)]) == 2  # identity002 missing: clear error
    assert "identity002.obj" in capsys.readouterr().err and not out.exists()
    assert main(["models", "convert-ict", str(SAMPLE), str(out), "--allow-partial"]) == 0
    assert out.exists() and (out.parent / "ict_parts.npz").exists()  # the eyes, teeth, ... beside the head
    monkeypatch.setenv("PHOTOHEAD_MODEL_PATH", str(tmp_path / "models"))
    monkeypatch.setenv("PHOTOHEAD_CACHE", str(tmp_path / "cache"))
    capsys.readouterr()
    assert main(["models", "list", "--check"]) == 0
    text = capsys.readouterr().out
    assert f"{out} (default): 11248 verts, 22288 tris, id 2, exp 2" in text
    assert "ict_parts" not in text  # a parts file is not listed as a model


def test_cli_list_empty_search_path(tmp_path, monkeypatch, capsys):
    from backend.cli import main

    monkeypatch.setenv("PHOTOHEAD_MODEL_PATH", str(tmp_path / "none"))
    monkeypatch.setenv("PHOTOHEAD_CACHE", str(tmp_path / "cache"))
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "(missing)" in out and "photohead models fetch ict" in out
