"""Hair over the forehead in the albedo (backend.hair_fill): on a synthetic face with dark strands
painted over its forehead, the strands' texels take the surrounding skin's colour; the zone
stays above the brows and the eyes' level; a beard below it is never touched."""
from __future__ import annotations

import numpy as np
import torch

from backend.align import canonical_landmarks
from backend.hair_fill import HairFillSettings, donor_reach, hair_zone, mix_fill, remove_hair, upsampled_at

HAIR = (0.10, 0.07, 0.05)  # dark brown strands


def _synthetic_view(model, paint=None, yaw: float = 0.0):
    """A synthetic face (frontal, or turned by ``yaw`` degrees; its 224² render is the crop) and
    the fit that made it; ``paint`` (image (224,224,3), landmarks (68,2)) → image draws on the
    photo before it is prepared."""
    from backend.align import face_mask
    from backend.camera import Camera, project
    from backend.fit.coarse import CoarseFitResult
    from backend.prepare import PreparedView
    from backend.skin import skin_mask
    from evaluation.multiview_scene import synthetic_views

    scene = synthetic_views(model, (yaw,), size=224, tex_res=128, seed=3, noise=0.0)
    lm = project(scene.verts, scene.poses, Camera(224, 224))[:, model.landmarks68, :2].float()
    lm0 = lm[0].double().numpy()
    image = scene.images[0].clamp(0, 1).numpy()
    if paint is not None:
        image = paint(image.copy(), lm0)
    rgb = np.round(image * 255).astype(np.uint8)
    crop = rgb.astype(np.float32) / 255
    eye = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    view = PreparedView(name="synthetic", image=rgb, detected68=lm0, face_box=np.r_[lm0.min(0), lm0.max(0)],
                        crop_from_image=eye, image_from_crop=eye, crop=crop, crop_landmarks=lm0,
                        face_mask=face_mask(lm0, 224, 224, soft_px=1.0), skin_mask=skin_mask(crop, lm0, 224))
    fit = CoarseFitResult(id=torch.zeros(1, model.n_id), exp=torch.zeros(1, model.n_exp), pose=scene.poses, sh=scene.sh,
                          albedo=None, tex=None, verts=scene.verts, landmarks=lm)
    return view, fit


def _strands(image: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Five slanted dark strands, 3 px wide, over the forehead between the brows and the face
    mask's top (a fringe: on both halves, so no mirror helps)."""
    brow_y = lm[17:27, 1].min()
    top = brow_y - 0.3 * (lm[8, 1] - lm[17:27, 1].mean())
    v, u = np.mgrid[0:224, 0:224].astype(np.float64)
    band = (v > top) & (v < brow_y - 4.0)
    xs = np.linspace(lm[18, 0], lm[25, 0], 5)
    hit = np.zeros((224, 224), bool)
    for x0 in xs:
        hit |= band & (np.abs(u - (x0 + 0.35 * (v - brow_y))) < 1.5)
    image[hit] = HAIR
    return image


def _beard(image: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """A dark beard over the chin and jaw below the mouth."""
    v, u = np.mgrid[0:224, 0:224].astype(np.float64)
    chin = lm[8]
    hit = ((u - chin[0]) / 40.0) ** 2 + ((v - chin[1] + 8.0) / 22.0) ** 2 < 1.0
    image[hit & (v > lm[57, 1] + 3.0)] = HAIR
    return image


def test_hair_zone_lies_above_the_brows_and_the_eyes():
    lm = canonical_landmarks()
    zone = hair_zone(lm, 224)
    forehead = np.round(lm[17:27].mean(0) - [0.0, 20.0]).astype(int)
    temple = np.round(lm[17] + [-8.0, -6.0]).astype(int)
    assert zone[forehead[1], forehead[0]] == 1.0 and zone[temple[1], temple[0]] == 1.0
    for i in (8, 3, 13, 30, 33, 48, 54, 57, 36, 45, 39, 42):  # chin, jaw, nose, mouth, eye corners
        x, y = np.round(lm[i]).astype(int)
        assert zone[y, x] == 0.0, i
    below = np.round(lm[2]).astype(int)  # the outline below the eyes' level: sideburns, beards
    assert zone[below[1], below[0]] == 0.0


def test_remove_hair_fills_hair_in_the_zone_only():
    """Dark blobs on a smooth skin map: in the zone they take the skin's colour and the view's
    confidence; below it (a beard) colours and confidences stay the same values."""
    H = W = 128
    skin = torch.tensor([0.75, 0.55, 0.45])
    maps = skin.expand(1, H, W, 3).clone()
    maps[0, 20:23, 40:90] = torch.tensor(HAIR)  # a strand in the zone
    maps[0, 100:110, 40:90] = torch.tensor(HAIR)  # a beard below it
    zone = torch.zeros(1, H, W)
    zone[:, :64] = 1.0
    weight = torch.ones(1, H, W)
    weight[0, 20:23, 40:90] = 0.1  # the skin term took most of the strand's confidence
    skin_w = (maps - skin).abs().amax(-1).lt(0.05).float()
    out, w = remove_hair(maps, weight, torch.ones(1, H, W), zone, skin_w, torch.zeros(1, H, W),
                         HairFillSettings(noise=False))
    assert float((out[0, 20:23, 40:90] - skin).abs().max()) < 0.02
    assert float(w[0, 20:23, 40:90].min()) > 0.9
    assert torch.equal(out[:, 64:], maps[:, 64:]) and torch.equal(w[:, 64:], weight[:, 64:])
    assert torch.equal(out[0, :10], maps[0, :10])  # skin in the zone keeps its values


def test_with_several_views_each_fills_its_own_hair_at_half_weight():
    """Two views: the one with a strand fills it from its own skin at ½ its confidence, so the view
    that sees skin there weighs twice as much in the blend; the other view's maps stay the same."""
    H = W = 128
    skin = torch.tensor([0.75, 0.55, 0.45])
    maps = skin.expand(2, H, W, 3).clone()
    maps[1] *= 0.9  # the second photo's exposure
    maps[0, 20:23, 40:90] = torch.tensor(HAIR)
    zone = torch.zeros(2, H, W)
    zone[:, :64] = 1.0
    skin_w = (maps - maps[:, :1, :1]).abs().amax(-1).lt(0.05).float()
    out, w = remove_hair(maps, torch.ones(2, H, W), torch.ones(2, H, W), zone, skin_w, torch.zeros(2, H, W),
                         HairFillSettings(noise=False))
    assert float((out[0, 20:23, 40:90] - skin).abs().max()) < 0.02  # its own skin, not the other view's
    assert 0.45 < float(w[0, 20:23, 40:90].mean()) <= 0.5
    assert torch.equal(out[1], maps[1]) and torch.equal(w[1], torch.ones(H, W))


def test_fill_reach_fades_far_from_the_skin():
    H = W = 64
    donors = torch.zeros(1, H, W)
    donors[:, 40:] = 1.0
    reach = donor_reach(donors, 4.0, 0.3)
    assert float(reach[0, 41:, :].min()) == 1.0 and float(reach[0, 0, :].max()) < 0.01
    own, fill = torch.tensor([[0.1, 0.1, 0.1]] * 3), torch.tensor([[0.7, 0.5, 0.4]] * 3)
    colour, w = mix_fill(own, torch.ones(3), torch.ones(3), torch.tensor([1.0, 1.0, 0.5]), fill,
                         torch.tensor([0.0, 1.0, 1.0]))
    assert w.tolist() == [0.0, 1.0, 1.0]  # hair far from any skin: no confidence left, so the fill colour shows
    torch.testing.assert_close(colour[1], fill[1])
    torch.testing.assert_close(colour[2], 0.5 * (own[2] + fill[2]))


def test_upsampled_at_matches_interpolate():
    coarse = torch.rand(2, 5, 7, 3, generator=torch.Generator().manual_seed(1))
    H, W = 10, 13  # not multiples of the blocks: the last ones are cut
    full = torch.nn.functional.interpolate(coarse.permute(0, 3, 1, 2), scale_factor=2, mode="bilinear",
                                           align_corners=False)[..., :H, :W].permute(0, 2, 3, 1)
    at = torch.arange(2 * H * W)
    torch.testing.assert_close(upsampled_at(coarse, 2, at, H, W), full.reshape(-1, 3))


def test_strands_over_the_forehead_leave_the_albedo(face_model):
    """The strands' texels (those the strands change by > 0.04 without this step) come close to
    the clean face's albedo; the others stay within 0.01 (mean) of their values without it."""
    from backend.texture import delit_albedo

    cpu = torch.device("cpu")
    view, fit = _synthetic_view(face_model)
    clean, w_clean = delit_albedo(face_model, fit, [view], 128, cpu)
    view, fit = _synthetic_view(face_model, _strands)
    before, w_before = delit_albedo(face_model, fit, [view], 128, cpu, hair=False)
    after, w_after = delit_albedo(face_model, fit, [view], 128, cpu)
    strands = np.abs(before - clean).max(-1) > 0.04
    assert strands.sum() > 60
    err_before = np.abs(before - clean)[strands].mean()
    err_after = np.abs(after - clean)[strands].mean()
    assert err_after < 0.5 * err_before, (err_after, err_before)  # 0.051 → 0.022: a smooth fill on blotchy, freckled skin
    seen = (w_before[0] > 0.3) & ~strands
    from scipy.ndimage import binary_dilation

    far = seen & ~binary_dilation(strands, iterations=6)  # off the strands and their rim
    assert np.abs(after - before)[far].mean() < 0.01
    assert float(w_after[0][strands].mean()) > float(w_before[0][strands].mean())  # no fade to the fill colour


def test_a_beard_stays(face_model):
    """Below the zone nothing changes: a dark beard's texels keep their values, but for the fill
    (a continuation of the seen skin, which the hair step changes above) at the texture's faded rim."""
    from backend.texture import delit_albedo

    cpu = torch.device("cpu")
    view, fit = _synthetic_view(face_model, _beard)
    before, _ = delit_albedo(face_model, fit, [view], 128, cpu, hair=False)
    after, _ = delit_albedo(face_model, fit, [view], 128, cpu)
    view, fit = _synthetic_view(face_model)
    clean, _ = delit_albedo(face_model, fit, [view], 128, cpu, hair=False)
    beard = np.abs(before - clean).max(-1) > 0.1
    assert beard.sum() > 100
    change = np.abs(after - before)[beard]  # only where the texture fades into the fill
    # 7.6e-3, 8.8e-4: the face's sides (backend.side_hair) move the fill's sources at the rim
    assert change.max() < 0.01 and change.mean() < 1e-3, (change.max(), change.mean())


def _grey_fringe_and_wrinkle(image: np.ndarray, lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grey photo: dark hair above the forehead with three strands hanging from it over the
    forehead's left half, and a crease (skin × 0.6) across its right half touching no strand.
    Returns (image, strands (224,224) bool, crease (224,224) bool)."""
    grey = image @ np.array([0.299, 0.587, 0.114])
    image = np.repeat(grey[..., None], 3, 2)
    brow_y = lm[17:27, 1].min()
    top = brow_y - 0.3 * (lm[8, 1] - lm[17:27, 1].mean())
    v, u = np.mgrid[0:224, 0:224].astype(np.float64)
    mid = lm[27, 0]
    image[v <= top] = 0.08  # the hair
    strands = np.zeros((224, 224), bool)
    for x0 in np.linspace(lm[18, 0], mid - 12.0, 3):
        strands |= (v > top) & (v < brow_y - 4.0) & (np.abs(u - (x0 + 0.3 * (v - top))) < 1.5)
    image[strands] = 0.1
    y_crease = 0.5 * (top + brow_y)
    crease = (np.abs(v - y_crease) < 1.0) & (u > mid + 8.0) & (u < lm[25, 0])
    image[crease] *= 0.6
    return image, strands, crease


def test_strands_hanging_from_the_hair_leave_the_detail_skin_and_a_crease_stays(face_model):
    """On a grey photo no colour tells a strand from skin: the strands that reach the hair are
    taken out of the detail stage's skin mask (backend.hair_strands), the crease is not."""
    from backend.hair_strands import strand_mask
    from backend.prepare import detail_inputs

    marks = {}

    def paint(image, lm):
        image, marks["strands"], marks["crease"] = _grey_fringe_and_wrinkle(image, lm)
        return image

    view, _ = _synthetic_view(face_model, paint)
    strands, crease = marks["strands"], marks["crease"]
    in_skin = view.skin_mask > 0.5
    assert (strands & in_skin).sum() > 40 and (crease & in_skin).sum() > 15  # the skin mask kept both
    mask = strand_mask(view.crop, view.crop_landmarks, view.skin_mask, view.face_mask)
    assert mask[strands & in_skin].mean() > 0.8
    assert mask[crease].max() == 0.0
    _, skins, _ = detail_inputs([view], 224)
    assert float(skins[0].numpy()[strands & in_skin].max()) < 0.1
    assert np.array_equal(skins[0].numpy()[crease], view.skin_mask[crease])
