"""Skin colour likelihood: shading stays skin, hair and hats do not, for any skin tone."""
import numpy as np
import pytest

from backend.skin import skin_likelihood


def _scene(skin_rgb, rng, hair_rgb=(0.12, 0.08, 0.06)):
    """A 120² crop: skin under a left-to-right shading ramp (×0.4…×1.1) with wrinkle-like
    stripes (±15 %) and noise, a dark hair fringe (top rows) and a red hat patch; mask = everything."""
    h = w = 120
    shade = np.linspace(0.4, 1.1, w)[None, :] * (1.0 + 0.15 * np.sin(np.arange(h) / 2.0))[:, None]
    crop = np.clip(np.asarray(skin_rgb)[None, None] * shade[..., None] + rng.normal(0, 0.01, (h, w, 3)), 0, 1)
    crop[:15] = hair_rgb
    crop[100:, :30] = [0.75, 0.12, 0.15]  # red hat
    return crop, np.ones((h, w), np.float32)


# Brown hair on dark skin differs too little in colour and brightness (×0.38) to be told
# apart by colour alone: the dark-skin case uses black hair.
@pytest.mark.parametrize("skin_rgb, hair_rgb", [((0.78, 0.58, 0.48), (0.12, 0.08, 0.06)),
                                                ((0.42, 0.27, 0.19), (0.04, 0.035, 0.035))], ids=["light", "dark"])
def test_skin_kept_hair_and_hat_rejected(skin_rgb, hair_rgb):
    crop, mask = _scene(skin_rgb, np.random.default_rng(0), hair_rgb)
    w = skin_likelihood(crop, mask)
    assert w.shape == mask.shape and w.dtype == np.float32
    skin = w[20:100, :]  # all shading levels and stripes
    assert skin.mean() > 0.97 and np.quantile(skin, 0.02) > 0.8
    assert w[:12].max() < 0.05  # hair: too dark (its last rows blur into the skin)
    assert w[103:, :27].max() < 0.05  # hat: wrong chroma


def test_too_few_pixels_gives_no_opinion():
    crop, _ = _scene((0.78, 0.58, 0.48), np.random.default_rng(1))
    mask = np.zeros(crop.shape[:2], np.float32)
    mask[:5, :5] = 1.0
    np.testing.assert_array_equal(skin_likelihood(crop, mask), 1.0)


def test_skin_coloured_islands_cut_off_from_the_face_are_dropped():
    """A gold cap badge above a dark brim has skin-like colour; only skin that joins the face's
    own skin (the seed) counts. A fringe gap that opens onto the forehead stays."""
    from backend.skin import connected_to_face

    weight = np.zeros((60, 60), np.float32)
    weight[25:, :] = 1.0  # the face's skin
    weight[24, :] = 0.3  # its soft rim
    weight[5:12, 20:30] = 0.9  # badge: skin-coloured, above a non-skin brim (rows 12-24)
    weight[15:25, 40:43] = 1.0  # a gap in a fringe that opens onto the forehead
    seed = np.zeros_like(weight, bool)
    seed[40:50, 20:40] = True
    out = connected_to_face(weight, seed)
    assert out.dtype == np.float32
    assert out[5:12, 20:30].max() == 0.0
    assert (out[15:24, 40:43] == 1.0).all() and (out[25:] == 1.0).all()
    np.testing.assert_array_equal(out[24], weight[24])  # the rim stays with the face
    np.testing.assert_array_equal(connected_to_face(weight, np.zeros_like(seed)), weight)  # no seed: no opinion


def test_blond_fringe_in_the_forehead_band_is_not_skin_but_the_same_tint_in_the_face_is():
    """Blond hair is within 3 robust σ of skin chroma: inside the face that width must stay (a
    yellower cheek is still skin), above the brows the stricter band limit drops it."""
    from backend.align import canonical_landmarks, face_mask
    from backend.skin import skin_weight

    rng = np.random.default_rng(0)
    lm = canonical_landmarks()
    skin = np.array([0.78, 0.58, 0.48])
    crop = skin[None, None] * rng.uniform(0.85, 1.1, (224, 224, 1)) + rng.normal(0, 0.01, (224, 224, 3))
    crop[..., 2] *= np.exp(0.08 * np.sin(np.arange(224) * 2 * np.pi / 40.0))[None, :]  # skin's own tint spread: σ ≈ 0.057
    crop = np.clip(crop, 0, 1)
    blond = np.array([0.78, 0.60, 0.436])  # log B/G 0.13 below the skin's: within 3 σ, beyond 1.5·√2 σ
    inner = face_mask(lm, 224, 224, forehead=0.0) > 0.5
    band = (face_mask(lm, 224, 224) > 0.5) & ~inner
    rows = np.nonzero(band.any(1))[0]
    fringe = band & (np.arange(224)[:, None] < rows.min() + 8)  # the band's top rows
    cheek = np.zeros_like(inner)
    cheek[int(lm[31, 1]) - 4 : int(lm[31, 1]) + 4, int(lm[2, 0]) + 10 : int(lm[2, 0]) + 20] = True
    crop[fringe] = blond
    crop[cheek] = blond
    w = skin_weight(crop, lm, 224)
    assert w[fringe].mean() < 0.2
    assert w[cheek].mean() > 0.8
    assert w[band & ~fringe & (np.arange(224)[:, None] > rows.min() + 12)].mean() > 0.9  # forehead skin stays
