"""Our preprocessing → input tensors (for the TFLite interpreter in the scratch venv)."""
import json, numpy as np, skimage.data, matplotlib.cbook, torch
from PIL import Image
from backend.detect import detect, DetectSettings
from backend.detect.mediapipe_backend import detector_input, sample_crops
from backend.detect.mediapipe_nets import SHORT_RANGE
pick = json.load(open('/work/scratch/ref/pick.json'))['pick']
imgs = {"astronaut": skimage.data.astronaut(),
        "grace_hopper": np.asarray(Image.open(matplotlib.cbook.get_sample_data('grace_hopper.jpg')).convert('RGB'))}
for n in pick: imgs[n] = np.asarray(Image.open('/work/shared/data/faces_dev/images/' + n).convert('RGB'))
out = {}
for k, img in imgs.items():
    x, _, _ = detector_input(img, SHORT_RANGE)
    out[k + ":det_in"] = x[0].permute(1, 2, 0).numpy()
    f = detect(img, backend="mediapipe", settings=DetectSettings(mesh_passes=1))[0]
    # the crop of the best face, rebuilt from its ROI: centre/side/angle from the detection
    from backend.detect.mediapipe_backend import _detect_boxes, crop_transform, ROI_SCALE
    sc, box, kp = _detect_boxes(img, SHORT_RANGE, None)[0]
    d = kp[1] - kp[0]
    tf = crop_transform((0.5 * (box[:2] + box[2:]))[None], np.array([ROI_SCALE * (box[2:] - box[:2]).max()]),
                        np.array([np.arctan2(d[1], d[0])]), 192)
    out[k + ":mesh_tf"] = tf[0]
    out[k + ":mesh_in"] = sample_crops(img, tf, 192, "border")[0].permute(1, 2, 0).numpy()
np.savez('/work/scratch/ref/inputs.npz', **out)
print(len(out))
