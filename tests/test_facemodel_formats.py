"""Face-model loaders on small synthetic files written in each format's exact layout
(keys, dtypes, index bases, units), plus one foreign/corrupt file per loader."""
from __future__ import annotations

import json
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.io
import scipy.sparse

from backend.errors import ModelFormatError
from backend.facemodel import FaceModel, load_model_data
from backend.facemodel.common import orient_outward
from backend.facemodel.objio import write_obj

K_ID, K_EXP, K_TEX = 3, 2, 2


def _cap(nu: int = 14, nv: int = 12):
    """A face-like ellipsoid cap looking along +Z, 150 mm wide: (N,3) mm, outward (F,3), quads (Q,4)."""
    theta = np.linspace(-1.2, 1.2, nu)
    phi = np.linspace(-1.0, 1.0, nv)
    t, p = np.meshgrid(theta, phi)  # rows: phi (bottom → top), cols: theta (right → left of the viewer)
    verts = np.stack([75 * np.sin(t) * np.cos(p), 100 * np.sin(p), 60 * np.cos(t) * np.cos(p)], -1).reshape(-1, 3)
    idx = np.arange(nu * nv).reshape(nv, nu)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]
    quads = np.stack([a, b, c, d], -1).reshape(-1, 4)
    faces = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    faces = orient_outward(verts, faces)
    return verts, faces, quads


def _outward(verts, faces) -> bool:
    """Every triangle's normal points away from the cap's axis (z component of n·p > 0 overall)."""
    v = np.asarray(verts, np.float64)
    f = np.asarray(faces)
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    centre = v[f].mean(1) - v.mean(0)
    return bool((np.einsum("ij,ij->i", n, centre) > 0).mean() > 0.95)


@pytest.fixture(scope="module")
def cap():
    verts, faces, quads = _cap()
    rng = np.random.default_rng(0)
    n = verts.shape[0]
    return {
        "verts": verts, "faces": faces, "quads": quads, "n": n,
        "id": rng.normal(size=(K_ID, n, 3)), "exp": rng.normal(size=(K_EXP, n, 3)),
        "tex_mean": rng.uniform(0.2, 0.8, size=(n, 3)), "tex": rng.normal(size=(K_TEX, n, 3)) * 0.05,
        "landmarks": rng.choice(n, 68, replace=False),
    }


def _cols(basis: np.ndarray) -> np.ndarray:
    """(K,N,3) → (3N,K) xyz-interleaved columns, the BFM/Deep3D layout."""
    return basis.reshape(basis.shape[0], -1).T


# --- Deep3D BFM_model_front.mat ---------------------------------------------------------------
def _write_deep3d(path, cap):
    dm = 0.01  # Deep3D's decimetres
    scipy.io.savemat(path, {
        "meanshape": (cap["verts"] * dm).reshape(1, -1).astype(np.float32),
        "idBase": _cols(cap["id"] * dm).astype(np.float32),
        "exBase": _cols(cap["exp"] * dm).astype(np.float32),
        "meantex": (cap["tex_mean"] * 255).reshape(1, -1).astype(np.float32),
        "texBase": _cols(cap["tex"] * 255).astype(np.float32),
        "tri": (cap["faces"][:, ::-1] + 1).astype(np.float64),  # 1-based, clockwise: the loader must flip
        "keypoints": (cap["landmarks"] + 1).reshape(1, 68).astype(np.float64),
        "point_buf": np.ones((cap["n"], 8)),
        "skinmask": (np.arange(cap["n"]) % 5 != 0).reshape(1, -1).astype(np.float64),
    })


def test_deep3d_mat(tmp_path, cap):
    path = tmp_path / "BFM_model_front.mat"
    _write_deep3d(path, cap)
    data = load_model_data(path)
    assert float(data.extras["unit_scale"]) == 100.0  # decimetres from the data's extent
    np.testing.assert_allclose(data.mean, cap["verts"], atol=1e-3)
    np.testing.assert_allclose(data.id_basis, cap["id"], atol=1e-4)
    np.testing.assert_allclose(data.exp_basis, cap["exp"], atol=1e-4)
    np.testing.assert_allclose(data.tex_mean, cap["tex_mean"], atol=1e-5)
    np.testing.assert_allclose(data.tex_basis, cap["tex"], atol=1e-5)
    np.testing.assert_array_equal(data.landmarks68, cap["landmarks"])
    assert _outward(data.mean, data.faces) and sorted(map(tuple, np.sort(data.faces, 1))) == sorted(
        map(tuple, np.sort(cap["faces"], 1)))
    assert data.region is not None and data.region.sum() == (np.arange(cap["n"]) % 5 == 0).sum()
    model = FaceModel(data)
    assert model.has_texture and model.n_id == K_ID and model.n_exp == K_EXP


def test_deep3d_missing_key(tmp_path, cap):
    path = tmp_path / "BFM_model_front.mat"
    scipy.io.savemat(path, {"meanshape": np.zeros((1, 30)), "tri": np.ones((2, 3))})
    with pytest.raises(ModelFormatError, match=r"BFM_model_front\.mat.*'idBase'"):
        load_model_data(path)


def test_foreign_mat(tmp_path):
    path = tmp_path / "other.mat"
    scipy.io.savemat(path, {"something": np.eye(3)})
    with pytest.raises(ModelFormatError, match=r"other\.mat.*'meanshape'.*'shapeMU'"):
        load_model_data(path)
    bad = tmp_path / "corrupt.mat"
    bad.write_bytes(b"\x00garbage" * 20)
    with pytest.raises(ModelFormatError, match=r"corrupt\.mat"):
        load_model_data(bad)


# --- raw BFM2009 + Exp_Pca.bin + front crop ----------------------------------------------------
def test_bfm2009_with_expressions_and_front_crop(tmp_path, cap):
    um = 1000.0
    n = cap["n"]
    rng = np.random.default_rng(1)
    pcs = np.linalg.qr(rng.normal(size=(3 * n, K_ID)))[0]  # orthonormal columns, like BFM
    ev = np.array([30.0, 20.0, 10.0]) * um  # std in micrometres
    scipy.io.savemat(tmp_path / "01_MorphableModel.mat", {
        "shapeMU": (cap["verts"] * um).reshape(-1, 1).astype(np.float32),
        "shapePC": pcs.astype(np.float32), "shapeEV": ev.reshape(-1, 1).astype(np.float32),
        "texMU": (cap["tex_mean"] * 255).reshape(-1, 1).astype(np.float32),
        "texPC": pcs[:, :K_TEX].astype(np.float32), "texEV": np.array([[20.0], [10.0]], np.float32),
        "tl": (cap["faces"] + 1).astype(np.int32),
    })
    trim = np.sort(rng.choice(n, n - 20, replace=False))          # "53215 of 53490"
    front = np.sort(rng.choice(trim.size, trim.size - 30, replace=False))  # "35709 of 53215"
    keep = trim[front]
    exp_pc = (cap["exp"][:, trim] * um).astype(np.float32)        # (K, n_trim, 3), µm
    with open(tmp_path / "Exp_Pca.bin", "wb") as fh:
        np.array([K_EXP], "<i4").tofile(fh)
        np.zeros(3 * trim.size, "<f4").tofile(fh)                 # expMU (unused)
        exp_pc.reshape(K_EXP, -1).astype("<f4").tofile(fh)
    np.savetxt(tmp_path / "std_exp.txt", np.array([2.0, 0.5]))
    scipy.io.savemat(tmp_path / "BFM_exp_idx.mat", {"trimIndex": (trim + 1).reshape(-1, 1).astype(np.float64)})
    scipy.io.savemat(tmp_path / "BFM_front_idx.mat", {"idx": (front + 1).reshape(-1, 1).astype(np.float64)})
    lms = np.arange(68) + 10
    (tmp_path / "landmarks68.txt").write_text(" ".join(map(str, lms)))

    data = load_model_data(tmp_path / "01_MorphableModel.mat")
    np.testing.assert_allclose(data.mean, cap["verts"][keep], atol=1e-3)
    model = FaceModel(data)
    assert model.n_verts == keep.size and model.n_exp == K_EXP and model.n_tex == K_TEX
    # identity 1 std of mode 0 = 30 mm × unit column
    one = torch_eye(K_ID)[:1]
    delta = (model(one) - model.mean).numpy()[0]
    np.testing.assert_allclose(delta, 30.0 * pcs[:, 0].reshape(n, 3)[keep], atol=1e-3)
    exp_delta = (model(None, torch_eye(K_EXP)[1:2]) - model.mean).numpy()[0]
    np.testing.assert_allclose(exp_delta, 0.5 * cap["exp"][1][keep], atol=1e-3)
    np.testing.assert_array_equal(data.landmarks68, lms)
    # only triangles whose three corners survive, renumbered, outward
    kept = np.isin(cap["faces"], keep).all(1)
    assert data.faces.shape[0] == kept.sum() and _outward(data.mean, data.faces)
    np.testing.assert_allclose(data.tex_mean, cap["tex_mean"][keep], atol=1e-5)
    # Deep3D's facemodel_info.mat keypoints (1-based into the front face) win over the side file
    scipy.io.savemat(tmp_path / "facemodel_info.mat", {"keypoints": (np.arange(68) + 3).reshape(1, 68).astype(np.float64)})
    np.testing.assert_array_equal(load_model_data(tmp_path / "01_MorphableModel.mat").landmarks68, np.arange(68) + 2)


def test_bfm2009_missing_key_and_missing_expression_index(tmp_path, cap):
    path = tmp_path / "01_MorphableModel.mat"
    scipy.io.savemat(path, {"shapeMU": np.zeros((30, 1)), "shapePC": np.zeros((30, 2)), "shapeEV": np.ones((2, 1))})
    with pytest.raises(ModelFormatError, match=r"01_MorphableModel\.mat.*'tl'"):
        load_model_data(path)
    scipy.io.savemat(path, {"shapeMU": (cap["verts"] * 1000).reshape(-1, 1), "shapePC": np.zeros((3 * cap["n"], 1)),
                            "shapeEV": np.ones((1, 1)), "tl": cap["faces"] + 1})
    (tmp_path / "Exp_Pca.bin").write_bytes(np.array([1], "<i4").tobytes())
    with pytest.raises(ModelFormatError, match=r"Exp_Pca\.bin: needs BFM_exp_idx\.mat"):
        load_model_data(path)


def torch_eye(k: int):
    import torch

    return torch.eye(k)


# --- BFM2017/2019 h5 -----------------------------------------------------------------------------
def _write_h5(path, cap, drop: str | None = None):
    h5py = pytest.importorskip("h5py")
    n = cap["n"]
    rng = np.random.default_rng(2)
    basis = np.linalg.qr(rng.normal(size=(3 * n, K_ID)))[0]
    ebasis = np.linalg.qr(rng.normal(size=(3 * n, K_EXP)))[0]
    entries = {
        "shape/model/mean": cap["verts"].reshape(-1).astype(np.float32),
        "shape/model/pcaBasis": basis.astype(np.float32),
        "shape/model/pcaVariance": np.array([400.0, 100.0, 25.0], np.float32),
        "shape/representer/points": cap["verts"].T.astype(np.float32),  # (3, N)
        "shape/representer/cells": cap["faces"].T.astype(np.uint32),     # (3, F), 0-based
        "expression/model/mean": np.zeros(3 * n, np.float32),
        "expression/model/pcaBasis": ebasis.astype(np.float32),
        "expression/model/pcaVariance": np.array([9.0, 4.0], np.float32),
        "color/model/mean": cap["tex_mean"].reshape(-1).astype(np.float32),
        "color/model/pcaBasis": basis[:, :K_TEX].astype(np.float32),
        "color/model/pcaVariance": np.array([0.01, 0.0025], np.float32),
    }
    with h5py.File(path, "w") as fh:
        for key, value in entries.items():
            if key != drop:
                fh.create_dataset(key, data=value)
    return basis, ebasis


def test_bfm_h5(tmp_path, cap):
    path = tmp_path / "model2019_face12.h5"
    basis, ebasis = _write_h5(path, cap)
    (tmp_path / "model2019_face12.landmarks68.json").write_text(json.dumps({"landmarks68": cap["landmarks"].tolist()}))
    data = load_model_data(path)
    model = FaceModel(data)
    np.testing.assert_allclose(data.mean, cap["verts"], atol=1e-4)
    delta = (model(torch_eye(K_ID)[1:2]) - model.mean).numpy()[0]
    np.testing.assert_allclose(delta, 10.0 * basis[:, 1].reshape(-1, 3), atol=1e-4)  # sqrt(100) mm
    exp_delta = (model(None, torch_eye(K_EXP)[:1]) - model.mean).numpy()[0]
    np.testing.assert_allclose(exp_delta, 3.0 * ebasis[:, 0].reshape(-1, 3), atol=1e-4)
    np.testing.assert_array_equal(data.faces, cap["faces"])
    np.testing.assert_array_equal(data.landmarks68, cap["landmarks"])
    assert model.n_tex == K_TEX and np.allclose(data.tex_std, [0.1, 0.05])


def test_landmark_side_file_replaces_the_models_list(tmp_path, cap):
    """<model>.landmarks68.json beside a model replaces the list the model carries (here Deep3D's
    built-in keypoints); a generic landmarks68.txt does not; a bad side file names itself."""
    path = tmp_path / "BFM_model_front.mat"
    _write_deep3d(path, cap)
    (tmp_path / "landmarks68.txt").write_text(" ".join(map(str, np.arange(68) + 5)))  # a fallback only
    assert np.array_equal(load_model_data(path).landmarks68, cap["landmarks"])
    assert load_model_data(path).landmarks_file == ""
    mine = (cap["landmarks"] + 1) % cap["n"]
    side = tmp_path / "BFM_model_front.landmarks68.json"
    side.write_text(json.dumps({"model": "BFM_model_front", "landmarks68": mine.tolist()}))
    data = load_model_data(path)
    assert np.array_equal(data.landmarks68, mine) and data.landmarks_file == str(side)
    assert np.array_equal(FaceModel(data).landmarks68.numpy(), mine)
    side.write_text(json.dumps({"landmarks68": mine[:67].tolist()}))
    with pytest.raises(ModelFormatError, match=r"BFM_model_front\.landmarks68\.json: expected 68"):
        load_model_data(path)
    side.write_text(json.dumps({"landmarks68": [cap["n"]] * 68}))
    with pytest.raises(ModelFormatError, match="out of range"):
        load_model_data(path)


def test_bfm_h5_missing_key(tmp_path, cap):
    path = tmp_path / "bfm.h5"
    _write_h5(path, cap, drop="shape/model/pcaBasis")
    with pytest.raises(ModelFormatError, match=r"bfm\.h5.*'shape/model/pcaBasis'"):
        load_model_data(path)
    bad = tmp_path / "corrupt.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(ModelFormatError, match=r"corrupt\.h5"):
        load_model_data(bad)


def test_bfm_h5_without_landmarks_says_what_to_add(tmp_path, cap):
    path = tmp_path / "bfm.h5"
    _write_h5(path, cap)
    with pytest.raises(ModelFormatError, match=r"bfm\.landmarks68\.txt"):
        load_model_data(path)


# --- FLAME pkl without chumpy ----------------------------------------------------------------------
@pytest.fixture
def fake_chumpy(monkeypatch):
    """A throw-away ``chumpy.ch.Ch`` class for writing pickles; removed before loading."""
    pkg, mod = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:  # like chumpy: pickles its __dict__, the array under 'x'
        def __init__(self, x):
            self.x = x
            self._dirty_vars = set()

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    mod.Ch = Ch
    pkg.ch = mod
    monkeypatch.setitem(sys.modules, "chumpy", pkg)
    monkeypatch.setitem(sys.modules, "chumpy.ch", mod)
    return Ch


def _write_flame(path, cap, Ch, n_comp=400, keys=None):
    n = cap["n"]
    rng = np.random.default_rng(3)
    dirs = rng.normal(size=(n, 3, n_comp)) * 1e-3  # metres
    model = {
        "v_template": cap["verts"] / 1000.0,
        "shapedirs": Ch(dirs),
        "f": cap["faces"].astype(np.uint32),
        "J_regressor": scipy.sparse.csc_matrix(np.eye(5, n)),
        "weights": np.full((n, 5), 0.2),
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.int64),
        "posedirs": rng.normal(size=(n, 3, 36)) * 1e-4,
        "bs_style": "lbs", "bs_type": "lrotmin",
    }
    if keys is not None:
        model = {k: v for k, v in model.items() if k in keys}
    with open(path, "wb") as fh:
        pickle.dump(model, fh, protocol=2)
    return dirs


def test_flame_pkl(tmp_path, cap, fake_chumpy, monkeypatch):
    path = tmp_path / "generic_model.pkl"
    dirs = _write_flame(path, cap, fake_chumpy)
    rng = np.random.default_rng(4)
    tri = rng.choice(cap["faces"].shape[0], 68)
    bary = rng.dirichlet([1, 1, 1], 68)
    np.save(tmp_path / "landmark_embedding.npy",
            np.array({"full_lmk_faces_idx": tri[None], "full_lmk_bary_coords": bary[None]}, dtype=object), allow_pickle=True)
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    monkeypatch.delitem(sys.modules, "chumpy")
    data = load_model_data(path)
    np.testing.assert_allclose(data.mean, cap["verts"], atol=1e-4)
    assert data.id_basis.shape == (300, cap["n"], 3) and data.exp_basis.shape == (100, cap["n"], 3)
    np.testing.assert_allclose(data.id_basis[7], dirs[:, :, 7] * 1000, atol=1e-5)
    np.testing.assert_allclose(data.exp_basis[3], dirs[:, :, 303] * 1000, atol=1e-5)
    np.testing.assert_array_equal(data.landmarks68, cap["faces"][tri, bary.argmax(1)])
    assert _outward(data.mean, data.faces)
    assert data.extras["J_regressor"].shape == (5, cap["n"]) and data.extras["posedirs"].shape == (cap["n"], 3, 36)
    assert FaceModel(data).n_exp == 100


def test_flame_landmark_options(tmp_path, cap, fake_chumpy, monkeypatch):
    from backend.facemodel.flame import load_flame_pkl

    path = tmp_path / "generic_model.pkl"
    _write_flame(path, cap, fake_chumpy, n_comp=6)
    static = tmp_path / "flame_static_embedding.pkl"
    with open(static, "wb") as fh:
        pickle.dump({"lmk_face_idx": np.arange(51), "lmk_b_coords": np.full((51, 3), 1 / 3)}, fh, protocol=2)
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    monkeypatch.delitem(sys.modules, "chumpy")
    with pytest.raises(ModelFormatError, match="no 68-point landmarks built in"):
        load_flame_pkl(path)
    with pytest.raises(ModelFormatError, match="51-point static embedding"):
        load_flame_pkl(path, landmark_embedding=static)
    (tmp_path / "lm.txt").write_text("\n".join(map(str, cap["landmarks"])))
    data = load_flame_pkl(path, landmark_embedding=tmp_path / "lm.txt", n_shape=4)
    assert data.id_basis.shape[0] == 4 and data.exp_basis.shape[0] == 2
    np.testing.assert_array_equal(data.landmarks68, cap["landmarks"])


def test_flame_missing_key_and_foreign_pickle(tmp_path, cap, fake_chumpy):
    path = tmp_path / "generic_model.pkl"
    _write_flame(path, cap, fake_chumpy, n_comp=4, keys={"v_template", "f"})
    with pytest.raises(ModelFormatError, match=r"generic_model\.pkl.*'shapedirs'"):
        load_model_data(path)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(ModelFormatError, match=r"evil\.pkl.*unexpected class os.system"):
        load_model_data(evil)


# --- folder of OBJ blendshapes ----------------------------------------------------------------------
def _uv_for(quads, n):
    uv = np.random.default_rng(5).uniform(size=(n, 2))
    return uv, quads  # UV index = vertex index


def test_obj_folder(tmp_path, cap):
    folder = tmp_path / "shapes"
    folder.mkdir()
    uv, quads_uv = _uv_for(cap["quads"], cap["n"])
    write_obj(folder / "neutral.obj", cap["verts"], cap["quads"], uv, quads_uv)
    for i in (0, 1, 2, 10):  # natural order: 0, 1, 2, 10
        write_obj(folder / f"identity{i}.obj", cap["verts"] + cap["id"][i % K_ID] * (i + 1), cap["quads"])
    write_obj(folder / "expression_smile.obj", cap["verts"] + cap["exp"][0], cap["quads"])
    (folder / "landmarks68.txt").write_text(" ".join(map(str, cap["landmarks"])))
    data = load_model_data(folder)
    np.testing.assert_allclose(data.mean, cap["verts"], atol=1e-4)
    assert data.id_basis.shape[0] == 4 and data.exp_names == ["smile"]
    np.testing.assert_allclose(data.id_basis[3], cap["id"][10 % K_ID] * 11, atol=1e-3)  # identity10 is last
    np.testing.assert_allclose(data.exp_basis[0], cap["exp"][0], atol=1e-4)
    assert data.faces.shape[0] == 2 * cap["quads"].shape[0] and _outward(data.mean, data.faces)
    np.testing.assert_allclose(data.uv, uv, atol=1e-6)
    np.testing.assert_array_equal(data.faces_uv, data.faces)  # UV indices follow the (possibly flipped) winding
    np.testing.assert_array_equal(data.landmarks68, cap["landmarks"])


def test_obj_folder_manifest_in_cm(tmp_path, cap):
    folder = tmp_path / "m"
    folder.mkdir()
    write_obj(folder / "base.obj", cap["verts"] / 10, cap["quads"][:, ::-1])  # cm, clockwise
    write_obj(folder / "a.obj", (cap["verts"] + cap["id"][0]) / 10, cap["quads"])
    write_obj(folder / "s.obj", (cap["verts"] + cap["exp"][1]) / 10, cap["quads"])
    (folder / "manifest.json").write_text(json.dumps({
        "neutral": "base.obj", "identity": ["a.obj"], "expression": {"smile": "s.obj"}, "unit": "cm",
        "identity_std": [2.0], "landmarks68": cap["landmarks"].tolist(), "name": "toy"}))
    data = load_model_data(folder)
    assert data.name == "toy" and data.exp_names == ["smile"] and _outward(data.mean, data.faces)
    model = FaceModel(data)
    delta = (model(torch_eye(1)) - model.mean).numpy()[0]
    np.testing.assert_allclose(delta, 2.0 * cap["id"][0], atol=1e-3)


def test_obj_folder_errors(tmp_path, cap):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFormatError, match=r"empty: no neutral\.obj"):
        load_model_data(empty)
    folder = tmp_path / "nolm"
    folder.mkdir()
    write_obj(folder / "neutral.obj", cap["verts"], cap["quads"])
    with pytest.raises(ModelFormatError, match="landmarks68.json or landmarks68.txt"):
        load_model_data(folder)
    beside = tmp_path / "nolm.landmarks68.json"  # the folder's own side file, next to it
    beside.write_text(json.dumps({"landmarks68": cap["landmarks"].tolist()}))
    data = load_model_data(folder)
    assert np.array_equal(data.landmarks68, cap["landmarks"]) and data.landmarks_file == str(beside)
    beside.unlink()
    (folder / "landmarks68.txt").write_text(" ".join(map(str, cap["landmarks"])))
    write_obj(folder / "identity0.obj", cap["verts"][:-1], cap["quads"][:10])
    with pytest.raises(ModelFormatError, match=r"identity0\.obj: .* vertices"):
        load_model_data(folder)


def test_foreign_npz(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ModelFormatError, match=r"weights\.npz.*missing key\(s\) mean"):
        load_model_data(path)
