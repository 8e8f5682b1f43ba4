"""A photo as a Blender image, upright.

Blender loads an image file's pixels as stored and ignores its EXIF orientation, while the backend
fits the upright photo (:func:`backend.image_io.load_image`): a phone photo taken in portrait is
often stored sideways with an orientation tag, and its camera's background would lie across the
fitted head. Such a file's upright pixels become a packed image instead, and so do photos the
backend reads but Blender cannot (AVIF, and GIF in Blender 5.0: loaded as an empty image); other files
load as they are.
"""
from __future__ import annotations

import os

import bpy
import numpy as np

from . import backend_module

UPRIGHT_OF = "photohead_upright_of"  # custom property: the file a packed copy was made from


def upright_photo(path: str | os.PathLike, reuse: bool = True):
    """The photo file ``path`` as a Blender image in the orientation the backend fits: the file
    itself (``reuse``: an image already loaded from it), or, when its EXIF orientation turns it
    or Blender cannot read its format, a packed image of the backend's upright pixels
    (``reuse``: one made earlier from the same file)."""
    path = os.fspath(path)
    image_io = backend_module("image_io")  # at use, not at import: enabling the add-on stays light
    if not image_io.exif_turned(path):
        image = bpy.data.images.load(path, check_existing=reuse)
        if image.size[0] > 0:
            return image
        if image.users == 0:  # Blender cannot read the format (AVIF; GIF in 5.0): an empty image, not kept
            bpy.data.images.remove(image)
    if reuse:
        for image in bpy.data.images:
            if image.get(UPRIGHT_OF) == path:
                return image
    rgb = image_io.load_image(path)  # (H,W,3) uint8, upright
    height, width = rgb.shape[:2]
    rgba = np.ones((height, width, 4), np.float32)
    rgba[..., :3] = rgb / 255.0
    image = bpy.data.images.new(os.path.basename(path), width, height, alpha=False)
    image.pixels.foreach_set(rgba[::-1].ravel())  # Blender stores the bottom row first
    image.file_format = "PNG"
    image.pack()
    image[UPRIGHT_OF] = path
    return image
