"""Which mesh vertex stands for each of the 68 landmarks: the model's own list, matched to the
way 2-D landmarks are annotated.

A face model ships 68 landmark vertices (ICT-FaceKit: ``idx_to_landmark_verts``, Multi-PIE
order). The fit pulls them onto *detected* landmarks, and the detector (dlib) was trained on
300-W annotations, whose conventions differ from ICT's choices in places: 300-W's nose-bridge
top (27) sits 4 mm above ICT's, towards the brows; its inner-lip points 61/63/65/67 lie 3–4 mm
nearer the midline. Fitting ICT's vertices to 300-W points bends the face to close the
gap and leaves a fitted landmark error that is systematic, not noise.

:data:`ICT_300W` re-assigns 23 of ICT's 51 inner landmarks (17–67) and the anchors of 8 jaw
points (0–16 slide along the silhouette, each on a row of vertices around its anchor,
:mod:`backend.fit.contour`). Chosen by ``python -m training.landmark_convention`` (which
reproduces this table from the same fits): default fits of 120 development photos (the 300-W
re-annotated HELEN set ``faces_dev``, disjoint from the 100 photos of the landmark suite); per
landmark, the vertex within 9 mm of ICT's (jaw: the row anchor within
20 mm) whose projection (row's silhouette) through each photo's fitted mesh lands nearest the
annotation on average, each left/right pair chosen jointly (mirror vertices; midline points stay
on the midline), kept only where it gains > 0.1 % of the inter-ocular distance. Moves: 0.8–4.4 mm
(inner), 3.4–10 mm (jaw anchors); the evidence is in docs/design.md ("Landmarks and the jaw
contour"). The table is a model parameter, like a network weight; it holds no image or
annotation data.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ICT_300W", "annotation_landmarks"]

# iBUG index → (ICT's vertex, the vertex matching the 300-W convention); ICT vertex ids < 11248.
# Jaw points (0–16) anchor their silhouette rows (backend.fit.contour): 6/7/9/10 sat 5–7 % of the
# inter-ocular distance too far out, their rows now start nearer the chin.
ICT_300W: dict[int, tuple[int, int]] = {
    0: (1225, 1641), 1: (1888, 1197), 6: (2199, 808), 7: (1447, 800), 9: (3661, 3041), 10: (4390, 3049),
    15: (4088, 3415), 16: (3443, 3850),
    27: (978, 1358), 28: (4527, 4522), 31: (1140, 4559), 32: (2075, 2087), 34: (4269, 4281),
    35: (3360, 5024), 36: (1507, 569), 37: (1542, 1541), 39: (1528, 633), 40: (1518, 1557),
    42: (3742, 2874), 44: (3756, 3755), 45: (3721, 2810), 47: (3732, 3771), 48: (5708, 5926),
    51: (0, 5525), 54: (6213, 6431), 56: (6461, 6480), 58: (5957, 5976), 61: (5711, 6038),
    63: (6216, 6542), 65: (6470, 6485), 67: (5966, 5981),
}
_ICT_VERTICES = 11248  # the converted ICT head (face + head-and-neck geometry)


def annotation_landmarks(landmarks68: np.ndarray, n_vertices: int, source: str = "") -> np.ndarray:
    """The 68 landmark vertex ids the fit uses: ICT's list with :data:`ICT_300W` applied when the
    model is the converted ICT head (its source names ICT-FaceKit, it has ICT's vertex count and
    ICT's own ids at every re-assigned landmark); any other model's list unchanged.
    landmarks68 (68,) int → (68,) int64 (a copy)."""
    ids = np.asarray(landmarks68, np.int64).copy()
    is_ict = "ICT-FaceKit" in source and n_vertices == _ICT_VERTICES
    if is_ict and all(int(ids[k]) == old for k, (old, _) in ICT_300W.items()):
        for k, (_, new) in ICT_300W.items():
            ids[k] = new
    return ids
