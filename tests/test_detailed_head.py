"""The exported whole-head detailed mesh: lattice subdivision (closed, manifold, oriented, seams
kept), the Phong surface, the map lookup, and the displacement where the map says."""
import numpy as np
import pytest
import torch

from backend.geometry import detailed_head_mesh, lattice_subdivision, sample_map, subdivision_levels
from backend.head import Head


def _octahedron(radius: float = 100.0):
    verts = radius * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    faces = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    return verts, faces


def _edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    _, counts = np.unique(np.sort(directed, 1), axis=0, return_counts=True)
    return directed, counts


@pytest.mark.parametrize("levels", [0, 1, 2, 3])
def test_closed_mesh_stays_closed_manifold_and_oriented(levels):
    verts, faces = _octahedron()
    # a UV seam: the four lower faces use their own UV copies of the equator vertices
    faces_uv = faces.copy()
    faces_uv[4:] = np.where(faces[4:] < 4, faces[4:] + 6, faces[4:])
    sub = lattice_subdivision(faces, faces_uv, levels)
    n = 2 ** levels
    E, F, V = 12, 8, 6
    assert sub["faces"].shape == (F * n * n, 3)
    n_verts = sub["faces"].max() + 1
    assert n_verts == V + E * (n - 1) + F * (n - 1) * (n - 2) // 2
    directed, counts = _edges(sub["faces"])
    assert (counts == 2).all()  # every edge shared by exactly two triangles: closed, manifold
    assert len(np.unique(directed, axis=0)) == len(directed)  # each directed edge once: one orientation
    assert n_verts - len(counts) + len(sub["faces"]) == 2  # Euler characteristic of a sphere
    # the UV seam: the 4 equator edges are cut, so their lattice points exist twice in UV
    assert sub["faces_uv"].max() + 1 == n_verts + 4 + 4 * (n - 1)
    _, uv_counts = _edges(sub["faces_uv"])
    assert (uv_counts == 1).sum() == 2 * 4 * n
    if levels == 0:
        np.testing.assert_array_equal(sub["faces"], faces)


def test_lattice_points_lie_on_the_phong_surface_of_a_sphere():
    """An octahedron with radial normals: the subdivided points are far closer to the sphere
    than the flat triangles' points (Phong tessellation at α = ½)."""
    from backend.geometry import phong_points

    verts, faces = _octahedron()
    sub = lattice_subdivision(faces, faces, 3)
    corners = faces[sub["vert_face"]]
    flat = (sub["vert_bary"][..., None] * verts[corners]).sum(1)
    curved = phong_points(flat, verts[corners], verts[corners] / 100.0, sub["vert_bary"])
    flat_err = np.abs(np.linalg.norm(flat, axis=1) - 100.0).mean()
    curved_err = np.abs(np.linalg.norm(curved, axis=1) - 100.0).mean()
    assert flat_err > 15.0 and curved_err < 0.5 * flat_err


def test_sample_map_is_the_renderers_bilinear_lookup():
    from backend.render import sample_texture

    rng = np.random.default_rng(1)
    image = rng.normal(size=(16, 32))
    uv = rng.uniform(-0.1, 1.1, (500, 2)) * [2.0, 1.0]  # out-of-range values clamp to the edge
    ref = sample_texture(torch.from_numpy(image)[..., None], torch.from_numpy(uv)[None, None], u_range=(0.0, 2.0))
    np.testing.assert_allclose(sample_map(image, uv, (0.0, 2.0)), ref[0, 0, :, 0].numpy(), atol=1e-12)


def test_head_is_displaced_where_and_as_far_as_the_map_says(face_model):
    S = 64
    rows = np.arange(S)[:, None]
    disp = np.zeros((S, 2 * S))
    disp[:, :S] = 0.8 * np.sin(2 * np.pi * rows / 16.0)  # bands along v, face tile only
    head = Head(model_name="ict", vertices=face_model.mean.numpy(), neutral=face_model.mean.numpy(),
                faces=face_model.faces.numpy(), uv=face_model.uv.numpy(), faces_uv=face_model.faces_uv.numpy(),
                id_coeffs=np.zeros(1), exp_coeffs=np.zeros(1), exp_names=[], uv_tiles=face_model.uv_tiles,
                displacement=disp)
    flat = detailed_head_mesh(Head(**{**head.__dict__, "displacement": np.zeros_like(disp)}), levels=1)
    mesh = detailed_head_mesh(head, levels=1)
    uv, fuv = face_model.uv.numpy(), face_model.faces_uv.numpy()
    # ICT's face-tile edges span 1.2 / 2.3 / 4.7 texels at 128² / 256² / 512²; a 4× denser
    # UV layout (the same mesh, edges a quarter as long in UV) needs two levels fewer
    assert [subdivision_levels(uv, fuv, s) for s in (64, 128, 256, 512)] == [0, 1, 2, 2]
    assert subdivision_levels(uv, fuv, 512, max_levels=3) == 3
    assert subdivision_levels(uv / 4.0, fuv, 256) == 0
    np.testing.assert_array_equal(mesh.faces, flat.faces)
    moved = np.linalg.norm(mesh.verts - flat.verts, axis=1)
    np.testing.assert_allclose(moved, np.abs(mesh.displacement), atol=1e-9)  # along a unit direction
    # every UV a vertex has (a vertex on a seam has several): the tile(s) it belongs to
    corner_u = mesh.uv[mesh.faces_uv.ravel(), 0]
    u_min = np.full(len(mesh.verts), np.inf)
    u_max = np.full(len(mesh.verts), -np.inf)
    np.minimum.at(u_min, mesh.faces.ravel(), corner_u)
    np.maximum.at(u_max, mesh.faces.ravel(), corner_u)
    face_only, scalp_only = u_max < 1.0, u_min > 1.0
    assert face_only.sum() > 0.6 * len(mesh.verts) and scalp_only.sum() > 1000
    vert_uv = np.zeros((len(mesh.verts), 2))
    vert_uv[mesh.faces.ravel()] = mesh.uv[mesh.faces_uv.ravel()]
    close = np.abs(mesh.displacement - sample_map(disp, vert_uv, (0.0, 2.0))) < 1e-9
    # each vertex moved by the map at its UV (a seam vertex inside the face tile may read its other UV)
    assert close[face_only].mean() > 0.97
    assert np.abs(mesh.displacement[scalp_only]).max() == 0.0  # the scalp tile carries no detail
    assert np.abs(mesh.displacement[face_only]).max() > 0.75
    # outward: a positive value moves the vertex away from the head's centre
    centre = flat.verts.mean(0)
    pos = mesh.displacement > 0.5
    grow = np.linalg.norm(mesh.verts[pos] - centre, axis=1) - np.linalg.norm(flat.verts[pos] - centre, axis=1)
    assert np.median(grow) > 0.2


def test_bad_arguments_are_refused():
    faces = np.array([[0, 1, 2]])
    with pytest.raises(ValueError, match="levels"):
        lattice_subdivision(faces, faces, -1)
    with pytest.raises(ValueError, match="3 at most"):
        lattice_subdivision(faces, faces, 4)
    with pytest.raises(ValueError, match=r"\(F,3\)"):
        lattice_subdivision(faces, faces[:, :2], 1)
    with pytest.raises(ValueError, match="no displacement"):
        detailed_head_mesh(Head(model_name="x", vertices=np.zeros((3, 3)), neutral=np.zeros((3, 3)), faces=faces,
                                uv=np.zeros((3, 2)), faces_uv=faces, id_coeffs=np.zeros(1), exp_coeffs=np.zeros(1),
                                exp_names=[]))


def test_detailed_mesh_is_built_once_per_head_and_rebuilt_when_it_changes(face_model):
    """The previews and head_detailed.obj share one build (backend.geometry's digest cache); a
    head whose map changes in place gets a new mesh, equal to an uncached build."""
    from backend.geometry import _detailed_head_mesh

    S = 32
    disp = np.zeros((S, 2 * S))
    disp[:, :S] = 0.5
    head = Head(model_name="ict", vertices=face_model.mean.numpy(), neutral=face_model.mean.numpy(),
                faces=face_model.faces.numpy(), uv=face_model.uv.numpy(), faces_uv=face_model.faces_uv.numpy(),
                id_coeffs=np.zeros(1), exp_coeffs=np.zeros(1), exp_names=[], uv_tiles=face_model.uv_tiles,
                displacement=disp)
    first = detailed_head_mesh(head, levels=0)
    assert detailed_head_mesh(head, levels=0) is first
    assert detailed_head_mesh(head, levels=1) is not first  # another lattice
    disp[:, :S] = -0.5  # the same array, changed in place
    changed = detailed_head_mesh(head, levels=0)
    assert changed is not first and np.abs(changed.displacement).max() == 0.5
    assert np.abs(changed.verts - first.verts).max() > 0.9  # moved 1 mm inwards where the map covers
    np.testing.assert_array_equal(changed.verts, _detailed_head_mesh(head, 0, face_model.uv_tiles).verts)
