"""The landmark trust from the photometric residual (backend/fit/photo_trust.py)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from backend.camera import Camera
from backend.fit.coarse import CoarseFitConfig, fit_coarse
from backend.fit.photo_trust import (PhotoTrustSettings, for_detectors, landmark_weight, photo_scale, photo_trust,
                                     switched_lens)
from backend.focal_search import STANDARD_FOCAL_35MM, fallback_views, lens_fell_back
from backend.prepare import PreparedView

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_scale_falls_as_a_power_below_ref_and_is_none_when_nothing_changes():
    s = PhotoTrustSettings(ref=6.5, power=3.0)
    assert photo_trust(s, torch.tensor([3.25, 6.5, 13.0])).tolist() == pytest.approx([0.125, 1.0, 1.0])
    assert photo_trust(s, torch.tensor([6.5, 11.0])) is None
    assert photo_trust(PhotoTrustSettings(ref=None), torch.tensor([1.0])) is None


def test_landmark_weight_is_the_gap_trust_times_the_photo_trust():
    hist = [{"stage": "landmarks", "landmark_trust": 0.5}, {"stage": "photo112", "photo_trust": 0.2}, {"stage": "photo224"}]
    assert landmark_weight(hist) == pytest.approx(0.1) and photo_scale(hist) == pytest.approx(0.2)
    assert landmark_weight(hist[2:]) == 1.0 and landmark_weight([]) == 1.0


def _render(face_model):
    from evaluation.synthetic import SyntheticSettings, make_faces

    face = make_faces(face_model, 1, seed=3, settings=SyntheticSettings(size=96))[0]
    noisy = torch.from_numpy(face.contour68).float()[None] + torch.randn(1, 68, 2, generator=torch.Generator().manual_seed(0)) * 2.0
    return torch.from_numpy(face.image).float()[None] / 255.0, noisy


CFG = CoarseFitConfig(landmark_iterations=6, photo_schedule=((48, 20),), identity=False)


def test_a_render_the_model_explains_leans_on_its_shading(face_model):
    """Our own render leaves an L_pixel far below a real photo's: its landmarks (2 px noise) lose
    weight by (L_pixel/ref)³, the warm-up and the first stage run again, and the identity the
    noise wrote shrinks."""
    img, lms = _render(face_model)
    mask = torch.ones(1, 96, 96)
    off = fit_coarse(face_model, img, lms, mask, replace(CFG, photo_trust=PhotoTrustSettings(ref=None)))
    on = fit_coarse(face_model, img, lms, mask, CFG)
    stages = [h["stage"] for h in on.history if h["stage"].startswith("photo")]
    assert stages == ["photo48", "photo48"]
    first = next(h for h in on.history if h["stage"] == "photo48")
    ref, power = CFG.photo_trust.ref, CFG.photo_trust.power
    assert first["pixel"] < ref and first["photo_trust"] == pytest.approx((first["pixel"] / ref) ** power, rel=1e-5)
    assert [h["stage"] for h in off.history if h["stage"].startswith("photo")] == ["photo48"]
    assert float(on.id.norm()) < 0.9 * float(off.id.norm())


def test_a_photo_explained_no_better_than_ref_is_fitted_as_before(face_model):
    img, lms = _render(face_model)
    mask = torch.ones(1, 96, 96)
    off = fit_coarse(face_model, img, lms, mask, replace(CFG, photo_trust=PhotoTrustSettings(ref=None)))
    low = fit_coarse(face_model, img, lms, mask, replace(CFG, photo_trust=PhotoTrustSettings(ref=0.5)))  # below its L_pixel
    assert torch.equal(low.id, off.id) and torch.equal(low.verts, off.verts) and torch.equal(low.pose, off.pose)
    assert not any("photo_trust" in h for h in low.history)


def test_given_landmarks_are_followed_as_given():
    s = PhotoTrustSettings()
    assert for_detectors(s, ["given", "given"]).ref is None
    assert for_detectors(s, ["given", "auto"]) == s and for_detectors(s, ["dlib"]) == s


def test_the_first_stage_runs_again_with_rerun_steps_times_its_steps(face_model):
    img, lms = _render(face_model)
    seen: list[str] = []
    cfg = replace(CFG, photo_trust=PhotoTrustSettings(rerun_steps=2.5))
    fit_coarse(face_model, img, lms, torch.ones(1, 96, 96), cfg, progress=lambda f, msg: seen.append(msg))
    finals = [m for m in seen if m.startswith("photometric 48px") and m.split()[-1].split("/")[0] == m.split("/")[-1]]
    assert finals == ["photometric 48px 20/20", "photometric 48px 50/50"]


def test_a_lowered_view_takes_the_fallback_lens_and_the_others_keep_theirs():
    inf = float("inf")
    cam = Camera(96, 96, focal=torch.tensor([inf, 500.0, 300.0]), principal=torch.tensor([[47.5, 47.5], [40.0, 50.0], [47.5, 47.5]]))
    fallback = Camera(96, 96, focal=torch.tensor([200.0, 200.0, 300.0]), principal=torch.tensor([[10.0, 20.0]] * 3))
    out, switched = switched_lens(cam, fallback, torch.tensor([True, False, True]))
    assert switched.tolist() == [True, False, False]  # the third view's lens is the fallback already
    assert out.focal.tolist() == [200.0, 500.0, 300.0]
    assert out.principal.tolist() == [[10.0, 20.0], [40.0, 50.0], [47.5, 47.5]]
    same, none = switched_lens(cam, fallback, torch.tensor([False, False, False]))
    assert same is cam and not none.any()
    ortho, switched = switched_lens(Camera(96, 96), fallback, torch.tensor([False, True, False]))  # no lens at all
    assert ortho.focal.tolist() == [inf, 200.0, inf] and switched.tolist() == [False, True, False]


def test_only_an_estimated_lens_falls_back_to_the_standard_one():
    def view(source: str, focal: float) -> PreparedView:
        return PreparedView(name=source, image=None, detected68=None, face_box=None, crop_from_image=None,
                            image_from_crop=None, crop=None, crop_landmarks=None, face_mask=None, skin_mask=None,
                            focal_35mm=focal, focal_source=source)

    views = fallback_views([view("estimated", 135.0), view("exif", 26.0), view("given", 85.0), view("none", float("inf"))])
    assert [(v.focal_35mm, v.focal_source) for v in views] == [
        (STANDARD_FOCAL_35MM, "standard"), (26.0, "exif"), (85.0, "given"), (float("inf"), "none")]
    assert lens_fell_back([{"stage": "photo48", "lens_fallback": 1.0}]) and not lens_fell_back([{"stage": "photo48"}])


def test_a_render_whose_shading_overrules_its_landmarks_is_refitted_through_the_fallback_lens(face_model):
    """The orthographic render, fitted through a long lens the landmarks 'picked': once the photo
    trust lowers them, the fit switches to the fallback lens, says so, and returns that camera."""
    img, lms = _render(face_model)
    mask = torch.ones(1, 96, 96)
    fallback = Camera(96, 96, focal=torch.tensor([400.0]), principal=torch.tensor([[47.5, 47.5]]))
    fit = fit_coarse(face_model, img, lms, mask, CFG, fallback_camera=fallback)
    assert lens_fell_back(fit.history)
    assert fit.camera is not None and fit.camera.focal.tolist() == [400.0]
    kept = fit_coarse(face_model, img, lms, mask, replace(CFG, photo_trust=PhotoTrustSettings(ref=0.5)),
                      fallback_camera=fallback)  # the trust never lowered: the lens stays
    assert not lens_fell_back(kept.history) and kept.camera is None


def test_in_a_batch_only_the_item_whose_trust_fell_takes_the_fallback_lens(face_model):
    """Two items, the same render, one under heavy pixel noise (its L_pixel stays above ref):
    only the clean one falls back, and each item's split history and camera say which."""
    from backend.fit.batch import split_coarse

    img, lms = _render(face_model)
    noisy = (img + torch.randn(img.shape, generator=torch.Generator().manual_seed(1)) * 0.15).clamp(0, 1)
    fallback = Camera(96, 96, focal=torch.tensor([400.0, 400.0]), principal=torch.tensor([[47.5, 47.5]] * 2))
    groups = torch.arange(2)
    fit = fit_coarse(face_model, torch.cat([img, noisy]), lms.expand(2, -1, -1), torch.ones(2, 96, 96), CFG,
                     groups=groups, fallback_camera=fallback)
    one, two = split_coarse(fit, groups)
    assert lens_fell_back(one.history) and not lens_fell_back(two.history)
    assert one.camera.focal.tolist() == [400.0] and two.camera.focal.tolist() == [float("inf")]
    assert photo_scale(one.history) < 1.0 and photo_scale(two.history) == 1.0
