"""Per-landmark noise of the detected 68 points, as weights of the coarse fit's landmark term.

A detector is not equally sure of every point: an eye corner sits on a sharp edge, a jaw point on
a soft outline, a brow on a fuzzy band. L_lm is a Gaussian likelihood, so each point's squared
distance should count by 1/σ² of its own noise. Two parts make σ²:

- :data:`SIGMA_IO`: a table of the detector's per-point root mean squared error, in inter-ocular
  distances (outer eye corners), measured on dev photos outside the landmark suite and made
  mirror-symmetric (``python -m training.landmark_noise`` reproduces it). It is a model
  parameter, like a network weight; it holds no image or annotation data.
- when ``auto`` ran both dlib and Face Mesh, each point's own disagreement between them
  (``gap``, inter-ocular distances of the detection): where two detectors disagree, at least
  one of them is wrong, so ``gap_scale``·gap² is added to that point's variance.

The weights only move trust between the points of a view: L_lm is a weighted *mean* per view,
so their scale does not change the landmark term's strength against the other terms. That
strength is :func:`landmark_trust`'s: the whole term counts less when the two detectors disagree
more than they do on a typical photo (the same Gaussian model, one variance per view).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["SIGMA_IO", "AGREED_IO", "GAP_SLOPE", "TRUST_AGREED", "TRUST_SLOPE", "TRUST_TYPICAL_GAP", "TRUST_MESH_ALONE",
           "LandmarkNoiseSettings", "point_weights", "point_gaps", "view_gaps", "landmark_trust", "judged_trust", "toward"]

# iBUG index → the detector's (auto: dlib checked by Face Mesh) root mean squared point error, in
# inter-ocular distances; 200 faces_dev photos outside the 100 of the landmark suite, averaged
# with each point's mirror partner.
SIGMA_IO: tuple[float, ...] = (
    0.0598, 0.0533, 0.0526, 0.0544, 0.0534, 0.0526, 0.0520, 0.0434, 0.0423, 0.0434, 0.0520, 0.0526, 0.0534, 0.0544,
    0.0526, 0.0533, 0.0598,  # jaw 0–16
    0.0432, 0.0344, 0.0335, 0.0357, 0.0429, 0.0429, 0.0357, 0.0335, 0.0344, 0.0432,  # brows 17–26
    0.0214, 0.0185, 0.0204, 0.0253, 0.0223, 0.0198, 0.0200, 0.0198, 0.0223,  # nose 27–35
    0.0197, 0.0169, 0.0160, 0.0160, 0.0174, 0.0180, 0.0160, 0.0160, 0.0169, 0.0197, 0.0180, 0.0174,  # eyes 36–47
    0.0253, 0.0256, 0.0253, 0.0215, 0.0253, 0.0256, 0.0253, 0.0271, 0.0274, 0.0252, 0.0274, 0.0271,  # outer lips 48–59
    0.0258, 0.0255, 0.0222, 0.0255, 0.0258, 0.0246, 0.0219, 0.0246,  # inner lips 60–67
)


# The same photos, per point: the error variance as s² + a·gap² (least squares, s, a ≥ 0, mirror
# pairs pooled), gap = the point's dlib–Face Mesh distance in inter-ocular distances of dlib's points.
AGREED_IO: tuple[float, ...] = (  # s: the error where the two detectors agree
    0.0598, 0.0504, 0.0493, 0.0525, 0.0513, 0.0491, 0.0455, 0.0320, 0.0296, 0.0320, 0.0455, 0.0491, 0.0513, 0.0525,
    0.0493, 0.0504, 0.0598, 0.0377, 0.0251, 0.0187, 0.0168, 0.0224, 0.0224, 0.0168, 0.0187, 0.0251, 0.0377, 0.0195,
    0.0119, 0.0082, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0119, 0.0118, 0.0127, 0.0128, 0.0123, 0.0097,
    0.0128, 0.0127, 0.0118, 0.0119, 0.0097, 0.0123, 0.0045, 0.0000, 0.0089, 0.0030, 0.0089, 0.0000, 0.0045, 0.0186,
    0.0192, 0.0170, 0.0192, 0.0186, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0081, 0.0000, 0.0081,
)
GAP_SLOPE: tuple[float, ...] = (  # a: the error variance per squared gap (jaw ≈ 0: Face Mesh's jaw is a fixed blend)
    0.000, 0.051, 0.056, 0.032, 0.036, 0.074, 0.168, 0.297, 0.364, 0.297, 0.168, 0.074, 0.036, 0.032,
    0.056, 0.051, 0.000, 0.194, 0.324, 0.454, 0.588, 0.719, 0.719, 0.588, 0.454, 0.324, 0.194, 0.138,
    0.393, 0.446, 0.512, 0.892, 0.869, 0.618, 0.869, 0.892, 0.359, 0.200, 0.152, 0.206, 0.250, 0.351,
    0.206, 0.152, 0.200, 0.359, 0.351, 0.250, 0.580, 0.783, 0.639, 0.589, 0.639, 0.783, 0.580, 0.386,
    0.333, 0.316, 0.333, 0.386, 0.709, 0.785, 0.682, 0.785, 0.709, 0.605, 0.737, 0.605,
)

# A view's mean squared point error (in squared outer-eye distances of the truth) against its
# dlib–Face Mesh gap g (mean point distance in the mesh's outer-eye distances, as
# :func:`backend.detect.combined.disagreement`): TRUST_AGREED² + TRUST_SLOPE·g², least squares
# on the 770 faces_dev photos outside the landmark suite (``auto``'s points, gaps below 0.15);
# TRUST_TYPICAL_GAP is their median gap. ``python -m training.landmark_noise --trust`` reproduces it.
TRUST_AGREED = 0.0222
TRUST_SLOPE = 0.469
TRUST_TYPICAL_GAP = 0.0317
# Face Mesh's own 68 points on the same photos: their mean squared point error, for views whose
# points are the mesh's with no dlib to compare (dlib found no face; ``--detector mediapipe``).
TRUST_MESH_ALONE = 0.00304


@dataclass(frozen=True)
class LandmarkNoiseSettings:
    """How the landmark term weighs the 68 points (module docstring).

    - ``table``: weigh each point by 1/σ² of :data:`SIGMA_IO` (jaw and brows then count ~5× less
      than the eyes; False: the config's own weights, ``jaw_weight``).
    - ``gap``: where ``auto`` ran Face Mesh too, down-weight a point by its usual variance over
      its variance given this photo's gap, s² + a·gap² (:data:`AGREED_IO`, :data:`GAP_SLOPE`),
      when that is larger: only points the detectors disagree on more than usual lose weight.
      Off by default: the fitted landmarks get closer to the truth on the synthetic renders but
      the vertex error does not (docs/design.md, "Per-landmark noise weights").

    - ``trust``: scale the landmark terms' weight (L_lm and the dense term) by
      :func:`landmark_trust`: the typical photo's point variance over this fit's, at most 1.
      ``trust_power`` raises it to a power (1: the Gaussian model as calibrated); ``trust_gap``:
      the gap up to which a fit keeps full trust (the typical photo's); ``trust_max``: the most
      trust a photo whose detectors agree better than typical gets (1: never more than the
      default weights). Variants measured: docs/mediapipe.md, "How much the fit trusts the landmarks".
    - ``trust_view_power``: a view of a multi-view person keeps its own trust (what its gap gives it
      alone) raised to this power where that is more than the person's: a view whose detectors
      agree about as well as on a typical photo keeps full trust, however far apart they are in
      the person's side views, whose gaps grow with the pose; the power keeps the own trust only
      near that agreement (0.9 → 0.43, 0.6 → 0.017). The fit applies it once its first photometric
      stage finds the set real-photo-like (:func:`judged_trust`). None: the person's trust for
      every view. Measured: docs/multiview.md, "The landmark trust of a multi-view set".
    """

    table: bool = False
    gap: bool = False
    trust: bool = True
    trust_power: float = 1.0
    trust_gap: float = TRUST_TYPICAL_GAP
    trust_max: float = 1.0
    trust_view_power: float | None = 8.0

    @property
    def active(self) -> bool:
        return self.table or self.gap


def point_gaps(landmarks: torch.Tensor, mesh68: torch.Tensor) -> torch.Tensor:
    """Each point's distance between two detections of the same face, in the first's
    inter-ocular distances (outer eye corners 36–45). landmarks, mesh68 (V,68,2) px (NaN rows of
    ``mesh68``: no second detection). Returns (V,68), NaN where there is none."""
    io = (landmarks[:, 36] - landmarks[:, 45]).norm(dim=-1).clamp_min(1e-6)  # (V,)
    return (landmarks - mesh68).norm(dim=-1) / io[:, None]


def point_weights(settings: LandmarkNoiseSettings, landmarks: torch.Tensor, mesh68: torch.Tensor | None = None) -> torch.Tensor:
    """(V,68) relative weights of the detected points (:class:`LandmarkNoiseSettings`): 1 for a
    point with its usual noise, less for a noisier one. landmarks (V,68,2) crop px; mesh68
    (V,68,2) crop px, Face Mesh's 68 points (NaN rows: views without), or None."""
    V = landmarks.shape[0]
    dev, dt = landmarks.device, landmarks.dtype
    usual = torch.tensor(SIGMA_IO, device=dev, dtype=dt).pow(2).expand(V, -1)  # (V,68) mean squared error
    w = torch.ones(V, 68, device=dev, dtype=dt)
    if settings.table:
        w = usual.min() / usual
    if settings.gap and mesh68 is not None:
        s2 = torch.tensor(AGREED_IO, device=dev, dtype=dt).pow(2)
        a = torch.tensor(GAP_SLOPE, device=dev, dtype=dt)
        var = s2 + a * point_gaps(landmarks, mesh68).pow(2)  # (V,68), NaN without Face Mesh
        w = w * torch.nan_to_num(usual / var.clamp_min(1e-12), nan=1.0).clamp(max=1.0)
    return w


def view_gaps(landmarks: torch.Tensor, mesh68: torch.Tensor) -> torch.Tensor:
    """Each view's mean point distance between ``landmarks`` and ``mesh68`` (V,68,2) px, in
    ``mesh68``'s outer-eye distances (as :func:`backend.detect.combined.disagreement`). Returns
    (V,), NaN for views without a second detection (NaN rows of ``mesh68``)."""
    io = (mesh68[:, 36] - mesh68[:, 45]).norm(dim=-1).clamp_min(1e-6)  # (V,)
    return (landmarks - mesh68).norm(dim=-1).mean(-1) / io


def landmark_trust(settings: LandmarkNoiseSettings, landmarks: torch.Tensor, mesh68: torch.Tensor | None,
                   gaps: torch.Tensor | None = None, groups: torch.Tensor | None = None) -> torch.Tensor | None:
    """How much each view's landmark terms count, (V,) in (0, 1], or None (``settings.trust`` off,
    or no view with evidence): for each item (``groups``, :mod:`.groups`; one item when None), the
    point variance of a typical faces_dev photo over the variance its views' dlib–Face Mesh gaps
    predict (TRUST_AGREED² + TRUST_SLOPE·gap², averaged over the item's views with a gap), at most
    ``settings.trust_max``, to the power ``settings.trust_power``; items without evidence get 1 (None when every item does).
    A view keeps the larger of that and its own trust (the view alone, at most 1) to the power
    ``settings.trust_view_power``: one view's trust is its item's when it is fitted alone.

    landmarks, mesh68 (V,68,2) crop px (NaN rows of ``mesh68``: views without Face Mesh); ``gaps``
    (V,) the detectors' disagreement where known (``auto``: dlib vs Face Mesh, even where the
    mesh's points replaced dlib's; NaN: unknown), else the gap between ``landmarks`` and ``mesh68``;
    a view whose points are the mesh's own with no known gap has TRUST_MESH_ALONE's variance."""
    if not settings.trust or (mesh68 is None and gaps is None):
        return None
    V, dev = landmarks.shape[0], landmarks.device
    g = torch.full((V,), float("nan"), dtype=torch.float64, device=dev)
    if mesh68 is not None:
        g = view_gaps(landmarks.double(), mesh68.to(dev).double())
    mesh_alone = g < 1e-4  # (V,) the points are the mesh's (NaN compares False)
    if gaps is not None:
        known = torch.isfinite(gaps.to(dev))
        g = torch.where(known, gaps.to(dev).double(), g)
        mesh_alone = mesh_alone & ~known
    has = torch.isfinite(g)
    if not bool(has.any()):
        return None
    var = torch.where(has, TRUST_AGREED ** 2 + TRUST_SLOPE * torch.nan_to_num(g).pow(2), 0.0)  # (V,) predicted
    var = torch.where(mesh_alone, TRUST_MESH_ALONE, var)
    typical = TRUST_AGREED ** 2 + TRUST_SLOPE * settings.trust_gap ** 2                        # mean squared error
    item = torch.zeros(V, dtype=torch.long, device=dev) if groups is None else groups.to(dev)
    G = int(item.max()) + 1
    total = torch.zeros(G, dtype=torch.float64, device=dev).index_add_(0, item, var)
    count = torch.zeros(G, dtype=torch.float64, device=dev).index_add_(0, item, has.double())
    item_var = torch.where(count > 0, total / count.clamp_min(1), typical)  # (G,)
    trust = (typical / item_var).clamp(max=settings.trust_max).pow(settings.trust_power)[item]  # (V,)
    if settings.trust_view_power is not None:  # (V,) each view's own trust, at most 1, to the power
        own = (typical / var).clamp(max=settings.trust_max).pow(settings.trust_power).clamp(max=1.0)
        trust = torch.maximum(trust, torch.where(has, own.pow(settings.trust_view_power), 0.0))
    if bool((trust == 1.0).all()):  # every view as trusted as a typical photo: the fit is unchanged
        return None
    return trust.to(landmarks.dtype)


def judged_trust(person: torch.Tensor | None, views: torch.Tensor | None, scale: torch.Tensor | None) -> torch.Tensor | None:
    """The landmark trust once the first photometric stage has judged the photos
    (:mod:`.photo_trust`): an item the model explains better than a real photo (``scale`` < 1) gets
    its person's trust times the scale, as before; the others their views' own trust (``views``,
    :func:`landmark_trust` with ``trust_view_power``), so a view whose detectors agree counts fully
    only in a set of real-photo-like photos. person, views, scale (V,) or None (1 everywhere)."""
    if scale is None:
        return views
    if person is None:
        return scale
    return torch.where(scale < 1, person, person if views is None else views.to(person.dtype)) * scale


def toward(pred: torch.Tensor, target: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    """``pred`` moved towards ``target`` so that each view's squared residual is ``scale`` times
    its own: target + √scale·(pred − target). pred, target (V,P,2); scale (V,) or None (unchanged)."""
    if scale is None:
        return pred
    return target + scale.sqrt()[:, None, None] * (pred - target)
