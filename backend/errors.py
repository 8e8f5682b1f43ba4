"""Domain exceptions. Each message says what went wrong and what to do about it."""


class PhotoheadError(Exception):
    """Base class: an error the user can act on (CLI exit code 2, add-on report)."""

    exit_code = 2


class ModelNotFoundError(PhotoheadError):
    """No face model file could be found on the search path."""


class ModelFormatError(PhotoheadError):
    """A face model file is foreign, corrupt or misses a key."""


class ImageReadError(PhotoheadError):
    """A photo could not be read or decoded."""


class NoFaceError(PhotoheadError):
    """No face was found in a photo."""


class FaceTooSmallError(PhotoheadError):
    """The face found is too small to reconstruct."""


class WeightsNotFoundError(PhotoheadError):
    """Network weights (detector, identity net, checkpoints) are missing on disk."""


class CancelledError(PhotoheadError):
    """The user cancelled the job."""


class DependencyMissingError(PhotoheadError):
    """An optional Python package (dlib, face-alignment, ...) is not installed."""


class WeightsFormatError(PhotoheadError):
    """A network weights file is corrupt, truncated, or not of the expected architecture."""


class ModelFetchError(PhotoheadError):
    """Downloading or verifying a face model's source files failed (nothing was installed)."""
