"""The landmark detector names and the default, written once (no imports: the Blender add-on's
panel lists them without torch). The detectors themselves are :mod:`backend.detect`."""
from __future__ import annotations

# name → one-line description (CLI help, the add-on's Landmarks menu), the default first
DETECTORS: dict[str, str] = {
    "auto": "dlib's points checked by MediaPipe's Face Mesh and replaced where they disagree (large head turns); "
            "dlib alone, with a warning, when MediaPipe's files are missing",
    "dlib": "dlib's 68-point predictor alone: pastes a frontal layout on heads turned beyond ~40°",
    "mediapipe": "MediaPipe's BlazeFace + Face Mesh alone (468 points; `photohead models fetch mediapipe`)",
    "face_alignment": "FAN landmarks: needs the face-alignment package and its weights on disk",
}
DETECTOR_NAMES: tuple[str, ...] = tuple(DETECTORS)
DEFAULT_DETECTOR = "auto"
