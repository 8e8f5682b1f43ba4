"""Our palm-detector inputs (letterboxed, RGB in [0, 1]) and hand-landmark crops (224², MediaPipe's
hand region of the best palm) of two faces_dev photos, for the TFLite interpreter."""
import numpy as np
from backend.image_io import load_image
from backend.detect.hands import HAND_SIZE, PALM, detect_palms, hand_regions
from backend.detect.mediapipe_backend import crop_transform, detector_input, sample_crops
out = {}
for n in ("helen_train_2293429456_1", "helen_train_154598717_1"):
    img = load_image('/work/shared/data/faces_dev/images/' + n + '.jpg')
    x, _, _ = detector_input(img, PALM)
    out[n] = ((x[0] + 1) * 0.5).permute(1, 2, 0).numpy()
    centre, side, angle = hand_regions(detect_palms(img)[:1])
    tf = crop_transform(centre, side, angle, HAND_SIZE)  # these photos are small: no reduction
    out[n + ':hand_tf'] = tf[0]
    out[n + ':hand_in'] = sample_crops(img, tf, HAND_SIZE, "border")[0].permute(1, 2, 0).numpy()
np.savez('/work/scratch/hands/ref/inputs.npz', **out)
