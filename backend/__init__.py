"""Photohead backend: everything that computes (face models, renderer, fitting, nets, I/O).

No bpy here; relative imports only, so the Blender extension can carry this package as a
subpackage (``bl_ext.<repo>.photohead.backend``).
"""

import os as _os

__version__ = "0.1.0"

# cuBLAS is deterministic only with a fixed workspace, which must be chosen before cuBLAS starts
# in this process; reproducible CUDA fits need it (backend.determinism). Users' own value wins.
_os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
