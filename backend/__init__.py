"""Photohead backend: everything that computes (face models, renderer, fitting, nets, I/O).

No bpy here; relative imports only, so the Blender extension can carry this package as a
subpackage (``bl_ext.<repo>.photohead.backend``).

Importing it has no side effects (no flags, no environment changes).
"""

__version__ = "0.1.0"
