"""Per-image analysis-by-synthesis: closed-form pose, coarse fit, detail fit, multi-view."""
