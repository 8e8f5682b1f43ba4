"""Our letterboxed palm-detector inputs (RGB in [0, 1]) for the TFLite interpreter."""
import numpy as np
from backend.image_io import load_image
from backend.detect.hands import PALM
from backend.detect.mediapipe_backend import detector_input
out = {}
for n in ("helen_train_2293429456_1", "helen_train_154598717_1"):
    x, _, _ = detector_input(load_image('/work/shared/data/faces_dev/images/' + n + '.jpg'), PALM)
    out[n] = ((x[0] + 1) * 0.5).permute(1, 2, 0).numpy()
np.savez('/work/scratch/hands/ref/inputs.npz', **out)
