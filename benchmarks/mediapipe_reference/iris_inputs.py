"""Our Iris-model inputs (64² crops, MediaPipe's eye regions from Face Mesh corners) of the package
photos and some faces_dev photos, for the TFLite interpreter."""
import numpy as np
from backend.detect import detect
from backend.detect.iris import CORNERS_MESH, iris_crops
from backend.image_io import load_image
from backend.samples import sample_photo
D = '/work/shared/data/faces_dev/images/'
photos = {n: sample_photo(n)[1] for n in ("grace_hopper", "astronaut")}
for n in ("helen_train_1691280456_1", "helen_train_2106789492_1", "helen_train_2293429456_1", "helen_train_154598717_1"):
    photos[n] = load_image(D + n + '.jpg')
out = {}
for n, img in photos.items():
    f = detect(img, backend="mediapipe")[0]
    corners = np.stack([f.dense[list(c), :2] for c in CORNERS_MESH])
    x, tfs, s = iris_crops(img, corners)
    out[n] = x.permute(0, 2, 3, 1).numpy()  # (2,64,64,3)
    out[n + ':corners'] = corners
    print(n, img.shape, corners.round(1).tolist(), s)
np.savez('/work/scratch/s19/iris/ref/inputs.npz', **out)
