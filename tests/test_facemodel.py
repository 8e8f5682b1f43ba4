"""The default (ICT) face model: landmark placement, evaluation, sampling, a clear error when missing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.errors import ModelNotFoundError

# iBUG-68 mirror pairs, subject's right first (the lower lips run left → right), and midline points
MIRROR = (
    [(i, 16 - i) for i in range(8)] + [(17 + i, 26 - i) for i in range(5)]
    + [(31, 35), (32, 34), (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    + [(48, 54), (49, 53), (50, 52), (59, 55), (58, 56), (60, 64), (61, 63), (67, 65)]
)
MIDLINE = [8, 27, 28, 29, 30, 33, 51, 57, 62, 66]


@pytest.fixture(scope="module")
def lm(face_model):
    return face_model.mean[face_model.landmarks68].double().numpy()  # (68,3) mm


def test_landmarks_mirror_symmetric(lm):
    pairs = np.array(MIRROR)
    right, left = lm[pairs[:, 0]], lm[pairs[:, 1]]
    np.testing.assert_allclose(right[:, 0], -left[:, 0], atol=0.05)   # x ≈ −x
    np.testing.assert_allclose(right[:, 1:], left[:, 1:], atol=0.05)  # same height and depth
    assert np.all(right[:, 0] < -3.0)  # iBUG's first of each pair is the subject's right (−X, image left)
    np.testing.assert_allclose(lm[MIDLINE, 0], 0.0, atol=0.05)


def test_landmarks_vertical_order_and_features(lm):
    brows, eyes, mouth = lm[17:27], lm[36:48], lm[48:68]
    nose_tip, chin = lm[30], lm[8]
    assert brows[:, 1].min() > eyes[:, 1].max()          # brows above eyes
    assert eyes[:, 1].min() > nose_tip[1]                # eyes above the nose tip
    assert nose_tip[1] > mouth[:, 1].max()               # nose tip above the mouth
    assert mouth[:, 1].min() > chin[1]                   # mouth above the chin
    assert nose_tip[2] > lm[27, 2] and nose_tip[2] >= lm[:, 2].max() - 1e-3  # nose tip: most forward landmark
    # plausible adult distances (mm): outer eye corners, mouth corners, jaw width
    assert 80 < np.linalg.norm(lm[36] - lm[45]) < 105
    assert 40 < np.linalg.norm(lm[48] - lm[54]) < 65
    assert 120 < np.linalg.norm(lm[0] - lm[16]) < 170
    # the eye landmarks encircle each eye: upper lid above lower lid
    assert lm[37, 1] > lm[41, 1] and lm[44, 1] > lm[46, 1]


def test_winding_outward_at_nose_tip(face_model):
    from backend.lighting import vertex_normals

    normals = vertex_normals(face_model.mean[None], face_model.faces)[0]
    tip = normals[face_model.landmarks68[30]]
    assert tip[2] > 0.9  # +Z out of the face


def test_forward_batched_equals_manual_sum(face_model):
    g = torch.Generator().manual_seed(0)
    ident = torch.randn(3, face_model.n_id, generator=g)
    exp = torch.rand(3, face_model.n_exp, generator=g) * 0.5
    out = face_model(ident, exp)
    assert out.shape == (3, face_model.n_verts, 3)
    ib = face_model.id_basis.reshape(face_model.n_id, -1).double()
    eb = face_model.exp_basis.reshape(face_model.n_exp, -1).double()
    manual = face_model.mean.double().reshape(1, -1) + ident.double() @ ib + exp.double() @ eb
    np.testing.assert_allclose(out.reshape(3, -1).double().numpy(), manual.numpy(), atol=1e-3)
    # one coefficient moves exactly its basis vector
    one = torch.zeros(1, face_model.n_id)
    one[0, 5] = 1.0
    np.testing.assert_allclose((face_model(one) - face_model.mean)[0].numpy(), face_model.id_basis[5].numpy(), atol=1e-5)
    assert torch.equal(face_model(None, None)[0], face_model.mean)


def test_restricted_model_is_forward_on_those_vertices(face_model):
    g = torch.Generator().manual_seed(1)
    ident = torch.randn(2, face_model.n_id, generator=g)
    exp = torch.rand(2, face_model.n_exp, generator=g) * 0.5
    ids = torch.tensor([face_model.n_verts - 1, 0, 17, 5000])
    sub = face_model.restricted(ids)(ident, exp)
    assert sub.shape == (2, 4, 3)
    # the same linear map: equal up to the last bits of BLAS's summation order
    np.testing.assert_allclose(sub.numpy(), face_model(ident, exp)[:, ids].numpy(), atol=1e-4)
    assert not torch.equal(sub[:, 0], sub[:, 1])


def test_sample_plausible_and_reproducible(face_model):
    s1 = face_model.sample(4, torch.Generator().manual_seed(1))
    s2 = face_model.sample(4, torch.Generator().manual_seed(1))
    assert torch.equal(s1["verts"], s2["verts"])
    v = s1["verts"]
    assert torch.isfinite(v).all() and v.shape == (4, face_model.n_verts, 3)
    ext = (v.amax(1) - v.amin(1)).numpy()  # (4,3) mm, head + neck + shoulders
    assert np.all((ext[:, 0] > 200) & (ext[:, 0] < 320)), ext
    assert np.all((ext[:, 1] > 280) & (ext[:, 1] < 420)), ext
    assert np.all((ext[:, 2] > 180) & (ext[:, 2] < 280)), ext
    face = face_model.face_vertex_mask
    dev = (v[:, face] - face_model.mean[face]).norm(dim=-1)
    assert 0.5 < float(dev.mean()) < 15.0 and float(dev.max()) < 60.0  # different, but still a face
    assert float(s1["exp"].min()) >= 0.0 and float(s1["exp"].max()) <= 1.0


def test_missing_model_says_how_to_fetch(tmp_path, monkeypatch):
    from backend.facemodel import load_default

    monkeypatch.setenv("PHOTOHEAD_MODEL_PATH", str(tmp_path / "nowhere"))
    monkeypatch.setenv("PHOTOHEAD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PHOTOHEAD_MODEL", raising=False)
    with pytest.raises(ModelNotFoundError, match=r"photohead models fetch ict") as info:
        load_default()
    assert str(tmp_path / "cache") in str(info.value)


def test_ict_landmarks_follow_the_300w_convention(face_model):
    """FaceModel re-assigns the table's ICT landmarks (and only those); the file keeps ICT's list."""
    from backend.facemodel import find_model, load_model_data
    from backend.facemodel.landmarks import ICT_300W, annotation_landmarks

    data = load_model_data(find_model("ict_facekit/ict_head.npz"))
    ict = np.asarray(data.landmarks68)
    used = face_model.landmarks68.numpy()
    changed = np.flatnonzero(used != ict)
    assert sorted(changed) == sorted(ICT_300W)
    assert all(ict[k] == old and used[k] == new for k, (old, new) in ICT_300W.items())
    # 300-W's nose-bridge top sits higher than ICT's (towards the brows), its inner-lip points nearer the midline
    mean = face_model.mean.numpy()
    assert mean[used[27], 1] - mean[ict[27], 1] > 3.0
    for inner_lip in (61, 63, 65, 67):
        assert abs(mean[used[inner_lip], 0]) < abs(mean[ict[inner_lip], 0]) - 3.0
    # a model that is not the converted ICT head keeps its own list, whatever its ids
    assert np.array_equal(annotation_landmarks(ict, len(mean), "BFM"), ict)
    assert np.array_equal(annotation_landmarks(ict, len(mean) + 1, data.source), ict)
    other = ict.copy()
    other[27] += 1  # an ICT variant with different landmark vertices
    assert np.array_equal(annotation_landmarks(other, len(mean), data.source), other)
    # a list from a user's side file is used as given, even ICT's own ids
    from dataclasses import replace

    from backend.facemodel import FaceModel

    own = FaceModel(replace(data, landmarks_file="ict_head.landmarks68.json"))
    assert np.array_equal(own.landmarks68.numpy(), ict)


def test_projected_uv_keeps_the_sides_and_back_off_the_face_tile(face_model):
    """A model without UVs (here ICT's head without its own) gets two tiles whose triangles do
    not pile up: the texels a tile's triangles cover ≈ their summed UV area (one front projection
    of the whole head claimed 45 % of the face tile's texels twice)."""
    import torch

    from backend.facemodel.model import projected_uv
    from backend.render import rasterize_uv

    mean, faces = face_model.mean.numpy().astype(np.float64), face_model.faces.numpy()
    uv, faces_uv = projected_uv(mean, faces)
    assert uv.shape == (2 * len(mean), 2) and faces_uv.shape == faces.shape
    assert np.array_equal(faces_uv % len(mean), faces)  # the same corners, in one tile or the other
    tile_of = np.floor(uv[faces_uv][:, :, 0].mean(1)).astype(int)
    assert set(np.unique(tile_of)) == {0, 1} and np.all(np.floor(uv[faces_uv][..., 0]) == tile_of[:, None])
    nose_tip = int(face_model.landmarks68[30])
    assert np.all(tile_of[np.any(faces == nose_tip, 1)] == 0)  # the face is in the face tile
    back = int(np.argmin(mean[:, 2]))
    assert np.all(tile_of[np.any(faces == back, 1)] == 1)  # the back of the head is not
    for tile, limit in ((0, 0.01), (1, 0.06)):
        frags = rasterize_uv(torch.from_numpy(uv), torch.from_numpy(faces_uv), 512, 512, (float(tile), tile + 1.0))
        t = uv[faces_uv[tile_of == tile]]
        e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
        area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).sum() * 512 * 512  # texels
        assert 1.0 - float((frags.face_idx >= 0).sum()) / area < limit, tile


def test_uncompressed_cache_copy_gives_the_same_model(tmp_path, monkeypatch):
    """The face model's npz files are kept uncompressed in the cache folder after the first load
    (inflating them cost ≈ 0.3 s per process): the same arrays from the copy, and a damaged copy
    is read from the source again and rewritten."""
    import numpy as np

    from backend.facemodel import DEFAULT_MODEL, find_model, load_model_data

    monkeypatch.setenv("PHOTOHEAD_CACHE", str(tmp_path / "cache"))
    path = find_model(DEFAULT_MODEL)
    first = load_model_data(path)
    copies = sorted((tmp_path / "cache" / "npz").glob("*.npz"))
    assert [c.name.split("-")[0] for c in copies] == ["ict_head", "ict_parts"]
    assert all(c.stat().st_size > path.stat().st_size for c in copies)  # stored, not deflated

    def same(a, b):
        assert np.array_equal(a.mean, b.mean) and np.array_equal(a.id_basis, b.id_basis)
        assert np.array_equal(a.exp_basis, b.exp_basis) and np.array_equal(a.faces, b.faces)
        assert a.exp_names == b.exp_names and a.extras.keys() == b.extras.keys()
        assert np.array_equal(a.parts.mean, b.parts.mean) and list(a.parts.part_names) == list(b.parts.part_names)

    same(first, load_model_data(path))
    head_copy, full = copies[0], copies[0].stat().st_size
    head_copy.write_bytes(head_copy.read_bytes()[: full // 2])  # damaged
    same(first, load_model_data(path))
    assert head_copy.stat().st_size == full  # rewritten
