"""The head's parts in Blender: one object per part parented to the head, materials, driven shape
keys; jawOpen = 1 and eyeBlink_L = 1 open a mouth with teeth and close the lid over the eye."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from .conftest import evaluated_coords  # noqa: E402


def _evaluated_mm(obj) -> np.ndarray:
    """(N,3) evaluated vertex positions of ``obj`` in model space (its parent's object space: a
    part's own transform, the eyeballs' gaze, applied), mm."""
    co = evaluated_coords(obj).astype(np.float64)
    if obj.parent is not None:
        local = np.array(obj.parent.matrix_world.inverted() @ obj.matrix_world)  # (4,4)
        co = co @ local[:3, :3].T + local[:3, 3]
    co = co * 1000.0
    return np.stack([co[:, 0], co[:, 2], -co[:, 1]], 1)  # Blender (x, y, z) m → model (x, z, −y)·1000


def _faces(obj) -> np.ndarray:
    faces = np.zeros(len(obj.data.polygons) * 3, np.int32)
    obj.data.polygons.foreach_get("vertices", faces)
    return faces.reshape(-1, 3)


def test_parts_are_objects_with_materials_and_driven_keys(scene_mod, fake_head):
    from backend.head_parts import EXPORTED_PARTS, part_meshes

    head_obj = scene_mod.build_head_objects(fake_head, scene_mod.BuildOptions(cameras=False))
    parts = {o["photohead_part"]: o for o in head_obj.children if "photohead_part" in o}
    assert sorted(parts) == sorted(EXPORTED_PARTS)
    assert all(o.name in bpy.context.scene.objects for o in parts.values())
    eye = parts["eyeball_left"]
    assert {m.name.split(" ", 1)[1] for m in eye.data.materials} == {"sclera", "iris", "pupil"}
    teeth = parts["teeth"].data.materials[0].node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value
    assert min(teeth[:3]) > 0.4  # a light tooth colour (linear)
    keys = parts["teeth"].data.shape_keys.key_blocks
    assert len(keys) == len(fake_head.exp_names) + 1
    head_keys = head_obj.data.shape_keys.key_blocks
    head_keys["jawOpen"].value = 0.9
    bpy.context.view_layer.update()
    assert keys["jawOpen"].value == pytest.approx(0.9)  # driven by the head's key
    # the socket's rim copies the skin's: same place at the fitted expression
    socket = _evaluated_mm(parts["mouth_socket"])
    skin = _evaluated_mm(head_obj)
    source = part_meshes(fake_head)[EXPORTED_PARTS.index("mouth_socket")].source  # rows of concatenate(skin, parts)
    rim = source < len(skin)
    assert rim.sum() > 50
    np.testing.assert_allclose(socket[rim], skin[source[rim]], atol=1e-3)


@pytest.fixture(scope="module", params=[None, pytest.param(3, marks=pytest.mark.slow)], ids=["mean", "random3"])
def mean_head(face_model, request):
    """The model's mean head (identity 0, neutral), or a random identity (std 1, seed ``param``;
    ICT's closed lid runs 2.9 mm into its cornea), with its parts."""
    import dataclasses

    import torch

    from backend.head import Head
    from backend.head_parts import attach_parts

    m = face_model
    ident, exp = torch.zeros(1, m.n_id), torch.zeros(1, m.n_exp)
    if request.param is not None:
        ident = torch.randn(1, m.n_id, generator=torch.Generator().manual_seed(request.param))
    with torch.no_grad():
        verts = m(ident, exp)[0].numpy()
    head = Head(model_name=m.name, vertices=verts, neutral=verts.copy(), faces=m.faces.numpy(), uv=m.uv.numpy(),
                faces_uv=m.faces_uv.numpy(), id_coeffs=ident[0].numpy(), exp_coeffs=np.zeros(m.n_exp, np.float32),
                exp_names=list(m.exp_names), exp_basis=m.exp_basis.numpy(), uv_tiles=m.uv_tiles)
    attach_parts(head, m, ident, exp)
    return dataclasses.replace(head)


def test_open_mouth_and_closed_lid_do_not_poke_through(scene_mod, mean_head):
    """With jawOpen = 1 and eyeBlink_L = 1 (set on the head; the parts' keys follow by driver):
    teeth, gums, tongue and eyeballs neither lie in the skin's tissue nor stick out through it by
    more than 1 mm (:func:`backend.head_parts.skin_depths`), and the closed left lid covers its
    eyeball seen from the front. ICT's own blink takes the lid 2.8 mm into the cornea and leaves
    a slit: the head's lid corrective (:mod:`backend.eye_clearance`) is what this checks, in the
    saved keys."""
    from backend.head_parts import first_skin_hit, skin_depths, vertex_normals_np

    head_obj = scene_mod.build_head_objects(mean_head, scene_mod.BuildOptions(cameras=False))
    for key in head_obj.data.shape_keys.key_blocks[1:]:
        key.value = 0.0
    head_obj.data.shape_keys.key_blocks["jawOpen"].value = 1.0
    head_obj.data.shape_keys.key_blocks["eyeBlink_L"].value = 1.0
    bpy.context.view_layer.update()
    skin, skin_faces = _evaluated_mm(head_obj), _faces(head_obj)
    depth = {}
    parts = {o["photohead_part"]: o for o in head_obj.children if "photohead_part" in o}
    for name, obj in parts.items():
        pts, faces = _evaluated_mm(obj), _faces(obj)
        depth[name] = skin_depths(pts, faces, skin, skin_faces)
    print({k: (round(float(v.through.max()), 2), round(float(v.buried.max()), 2)) for k, v in depth.items()})
    for name in ("teeth", "gums_and_tongue", "eyeball_left", "eyeball_right"):
        assert depth[name].buried.max() <= 1.0, name
        assert depth[name].through.max() <= 1.0, name
    # the mouth is open: the lower teeth moved down with the jaw, the upper ones stayed
    teeth = _evaluated_mm(parts["teeth"])
    assert teeth[:, 1].max() - teeth[:, 1].min() > 30.0
    # the closed lid: rays from the left eyeball's front towards the viewer all meet skin
    ball, ball_faces = _evaluated_mm(parts["eyeball_left"]), _faces(parts["eyeball_left"])
    normals = vertex_normals_np(ball, ball_faces)
    front = normals[:, 2] > 0.5
    t, _ = first_skin_hit(ball[front], np.tile([0.0, 0.0, 1.0], (int(front.sum()), 1)), skin, skin_faces, 60.0)
    seen = int((~np.isfinite(t)).sum())
    assert seen == 0, f"{seen} eyeball points seen through the closed lid"
    # and the open right eye shows its eyeball
    ball_r = _evaluated_mm(parts["eyeball_right"])
    normals_r = vertex_normals_np(ball_r, _faces(parts["eyeball_right"]))
    front_r = normals_r[:, 2] > 0.5
    t_r, _ = first_skin_hit(ball_r[front_r], np.tile([0.0, 0.0, 1.0], (int(front_r.sum()), 1)), skin, skin_faces, 60.0)
    assert (~np.isfinite(t_r)).sum() > 0.3 * front_r.sum()


def _mean_head_looking(m, gaze: np.ndarray, lid_margin: float | None):
    """The model's mean head (neutral) with its parts, eyeballs turned by ``gaze`` (2,2) radians."""
    import torch

    from backend.head import Head
    from backend.head_parts import attach_parts

    if not m.has_parts:
        pytest.skip("the ICT model has no ict_parts.npz beside it")
    ident, exp = torch.zeros(1, m.n_id), torch.zeros(1, m.n_exp)
    with torch.no_grad():
        verts = m(ident, exp)[0].numpy()
    head = Head(model_name=m.name, vertices=verts, neutral=verts.copy(), faces=m.faces.numpy(), uv=m.uv.numpy(),
                faces_uv=m.faces_uv.numpy(), id_coeffs=ident[0].numpy(), exp_coeffs=np.zeros(m.n_exp, np.float32),
                exp_names=list(m.exp_names), exp_basis=m.exp_basis.numpy(), uv_tiles=m.uv_tiles)
    attach_parts(head, m, ident, exp, gaze=gaze, lid_margin=lid_margin)
    return head


def test_gaze_turns_the_eyeball_objects_about_their_centres(scene_mod, face_model):
    """A head with a gaze (yaw 20°, pitch 10°): each eyeball object's origin is its centre and its
    rotation is the gaze (X pitch, Z yaw), its evaluated vertices are the turned eyeball's, the
    iris moved to +x and down, the eyeball stays in its socket (no vertex in the skin's tissue or
    through it by more than 1 mm, open and blinking) and a zero rotation gives the eyeball looking ahead."""
    from backend.head_parts import EYEBALLS, eye_pivots, part_meshes, skin_depths

    gaze = np.radians(np.array([[20.0, 10.0], [20.0, 10.0]], np.float32))
    head = _mean_head_looking(face_model, gaze, lid_margin=0.3)
    head_obj = scene_mod.build_head_objects(head, scene_mod.BuildOptions(cameras=False))
    for key in head_obj.data.shape_keys.key_blocks[1:]:
        key.value = 0.0
    bpy.context.view_layer.update()
    parts = {o["photohead_part"]: o for o in head_obj.children if "photohead_part" in o}
    turned = {p.name: p for p in part_meshes(head)}
    ahead = {p.name: p for p in part_meshes(head, turned=False)}
    pivots = eye_pivots(head)
    skin, skin_faces = _evaluated_mm(head_obj), _faces(head_obj)
    iris = head.part_material_names.index("iris")
    for e, name in enumerate(EYEBALLS):
        obj = parts[name]
        assert tuple(obj.rotation_euler) == pytest.approx((float(gaze[e, 1]), 0.0, float(gaze[e, 0])), abs=1e-6)
        np.testing.assert_allclose(np.array(obj.location), scene_mod.model_to_blender(pivots[name][0]), atol=1e-7)
        got = _evaluated_mm(obj)
        np.testing.assert_allclose(got, turned[name].neutral, atol=1e-3)  # keys at 0: the neutral, turned
        ring = np.unique(ahead[name].faces[ahead[name].material == iris])
        shift = got[ring].mean(0) - ahead[name].neutral[ring].mean(0)
        assert shift[0] > 3.0 and shift[1] < -1.5, shift  # the iris to +x (the head's left) and down, mm
        depth = skin_depths(got, _faces(obj), skin, skin_faces)
        assert max(depth.through.max(), depth.buried.max()) <= 1.0, (name, depth)
    # blinking over the turned eye: still inside
    head_obj.data.shape_keys.key_blocks["eyeBlink_L"].value = 1.0
    bpy.context.view_layer.update()
    skin = _evaluated_mm(head_obj)
    for name in EYEBALLS:
        got = _evaluated_mm(parts[name])
        depth = skin_depths(got, _faces(parts[name]), skin, skin_faces)
        assert max(depth.through.max(), depth.buried.max()) <= 1.0, name
    # the artist's control: a zero rotation looks ahead
    parts["eyeball_left"].rotation_euler = (0.0, 0.0, 0.0)
    bpy.context.view_layer.update()
    np.testing.assert_allclose(_evaluated_mm(parts["eyeball_left"]), ahead["eyeball_left"].neutral, atol=1e-3)


def test_glb_eyeballs_import_turned(face_model, tmp_path):
    """head.glb read back by Blender's glTF importer: each eyeball object sits at its centre with the
    gaze as its rotation, and its vertices are the turned eyeball's (model mm)."""
    import addon_utils
    from scipy.spatial import cKDTree

    from backend.export import write_glb
    from backend.head_parts import EYEBALLS, eye_pivots, part_meshes

    gaze = np.radians(np.array([[20.0, 10.0], [16.0, 10.0]], np.float32))
    head = _mean_head_looking(face_model, gaze, lid_margin=None)
    write_glb(head, tmp_path / "head.glb")
    addon_utils.enable("io_scene_gltf2", default_set=True)
    bpy.ops.import_scene.gltf(filepath=str(tmp_path / "head.glb"))
    bpy.context.view_layer.update()
    turned = {p.name: p for p in part_meshes(head)}
    pivots = eye_pivots(head)
    for e, name in enumerate(EYEBALLS):
        obj = bpy.data.objects[name]
        assert obj.parent is not None and obj.parent.name == "head"
        c = np.array(obj.location) * 1000.0
        np.testing.assert_allclose([c[0], c[2], -c[1]], pivots[name][0], atol=1e-3)  # Blender → model axes
        assert obj.rotation_quaternion.angle == pytest.approx(
            float(np.arccos(np.clip((np.trace(pivots[name][1]) - 1) / 2, -1, 1))), abs=1e-5)
        world = evaluated_coords(obj).astype(np.float64) @ np.array(obj.matrix_world)[:3, :3].T + np.array(obj.matrix_world)[:3, 3]
        model = np.stack([world[:, 0], world[:, 2], -world[:, 1]], 1) * 1000.0
        dist, _ = cKDTree(turned[name].neutral).query(model)
        assert dist.max() < 1e-2, (name, dist.max())
