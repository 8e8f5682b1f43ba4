"""training.landmark_convention: the landmark-vertex calibration recovers a known convention."""
import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from backend.align import MIRROR_68
from training.landmark_convention import choose_landmark_vertices


def test_mirror_table_is_an_involution():
    assert sorted(MIRROR_68) == list(range(68)) and all(MIRROR_68[MIRROR_68[k]] == k for k in range(68))


def test_calibration_recovers_a_shifted_convention(face_model):
    """Annotations drawn at known other vertices (the nose-bridge top 4 mm up, a nostril pair
    moved together) are found again, through random heads, poses and 0.2 px of annotation noise;
    landmarks already at their annotation stay, and so do the jaw's silhouette rows."""
    from backend.camera import Camera, project
    from backend.fit.contour import contour_candidates, select_contour

    m = face_model
    mean = m.mean.double()
    current = m.landmarks68.numpy()
    up = np.flatnonzero((np.abs(mean[:, 0].numpy()) < 0.5) & (np.abs(mean[:, 1].numpy() - float(mean[current[27], 1]) - 4.0) < 1.5)
                        & (np.abs(mean[:, 2].numpy() - float(mean[current[27], 2])) < 3.0))
    truth = current.copy()
    truth[27] = up[0]
    # the nostril pair 31/35: 2–4 mm away on the subject's right, and its mirror vertex on the left
    mn = mean.numpy()
    dist, mirror = cKDTree(mn).query(mn * [-1.0, 1.0, 1.0])
    gap = np.linalg.norm(mn - mn[current[31]], axis=1)
    side = np.flatnonzero((gap > 2.0) & (gap < 4.0) & (dist < 1e-3) & m.face_vertex_mask.numpy())[0]
    truth[31], truth[35] = side, mirror[side]
    gen = torch.Generator().manual_seed(0)
    P = 12
    poses = torch.zeros(P, 7, dtype=torch.float64)
    poses[:, 0] = 2.0
    poses[:, 1:4] = (torch.rand(P, 3, generator=gen, dtype=torch.float64) - 0.5) * torch.tensor([0.2, 0.6, 0.1], dtype=torch.float64)
    verts = mean[None] + 0.5 * torch.einsum("pk,kvc->pvc", torch.randn(P, m.n_id, generator=gen, dtype=torch.float64),
                                             m.id_basis.double())
    xy = project(verts, poses, Camera(400, 400))[..., :2]  # (P,V,2) px
    ann = xy[:, truth]
    rows = contour_candidates(m.mean, m.landmarks68, m.face_vertex_mask)
    ann[:, :17] = torch.gather(xy, 1, select_contour(xy.float(), rows)[..., None].expand(-1, -1, 2))
    ann = ann + 0.2 * torch.randn(ann.shape, generator=gen, dtype=torch.float64)  # annotation noise, px
    io = (ann[:, 36] - ann[:, 45]).norm(dim=-1)[:, None, None]
    changes = choose_landmark_vertices(m, (xy / io).numpy(), (ann / io).numpy())
    assert changes == {27: (int(current[27]), int(up[0])), 31: (int(current[31]), int(side)),
                       35: (int(current[35]), int(mirror[side]))}, changes


def test_cli_refuses_a_folder_without_annotations(tmp_path, capsys):
    from training.landmark_convention import main

    out = tmp_path / "table.json"
    assert main([str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "no such folder" in capsys.readouterr().err and not out.exists()


def test_side_file_carries_the_whole_list_to_the_loader(face_model, tmp_path):
    """landmark_side_file: the model's 68 ids with the changes applied, in the format the loader
    reads; a change that does not start from the model's vertex is refused."""
    from backend.facemodel.common import read_landmarks_file
    from training.landmark_convention import landmark_side_file

    ids = face_model.landmarks68.numpy()
    changes = {27: (int(ids[27]), int(ids[27]) + 1), 61: (int(ids[61]), 7)}
    path = tmp_path / "ict_head.landmarks68.json"
    path.write_text(landmark_side_file(face_model, changes))
    got = read_landmarks_file(path)
    assert got[27] == ids[27] + 1 and got[61] == 7
    assert np.array_equal(np.delete(got, [27, 61]), np.delete(ids, [27, 61]))
    with pytest.raises(ValueError, match="landmark 27"):
        landmark_side_file(face_model, {27: (int(ids[27]) + 2, 5)})
