"""Evaluation (a layer above ``backend``, not shipped in the Blender extension): metrics with known
answers, data readers, synthetic scenes, reports and the ``photohead evaluate`` suites.

The package itself (metrics, readers, report) imports no torch: ``photohead``'s parser imports it.
The suites' modules import torch and the backend at their top.
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
