"""Evaluation (a layer above ``backend``, not shipped in the Blender extension): metrics with known
answers, data readers, synthetic scenes, reports and the ``photohead evaluate`` suites.

Heavy parts (torch, the face model, matplotlib) are imported by the functions that need them.
"""
from __future__ import annotations

from .metrics import (
    FAILURE_NME, YAW_BINS, IcpResult, MeshIndex, apply_similarity, crop_around, displacement_correlation,
    failure_rate, icp, landmark_nme, point_to_plane, point_to_point, similarity_align, summarize,
    vertex_error, yaw_binned,
)
from .readers import (
    EvalDataError, LandmarkFormatError, find_landmark_sets, pick_paths, read_landmarks_json, read_obj_mesh, read_pts,
)
from .report import markdown_table, write_report

__all__ = [
    "FAILURE_NME", "YAW_BINS", "IcpResult", "MeshIndex", "apply_similarity", "crop_around",
    "displacement_correlation", "failure_rate", "icp", "landmark_nme", "point_to_plane", "point_to_point",
    "similarity_align", "summarize", "vertex_error", "yaw_binned", "EvalDataError", "LandmarkFormatError",
    "find_landmark_sets", "pick_paths", "read_landmarks_json", "read_obj_mesh", "read_pts", "markdown_table", "write_report",
]
