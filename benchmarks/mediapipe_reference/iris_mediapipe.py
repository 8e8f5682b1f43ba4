"""MediaPipe 0.10.14's Face Mesh with refine_landmarks (its attention model's iris points 468–477) on
the same photos: iris centres and rims in photo px, a cross-check of the port's eye regions and mirroring."""
import numpy as np
from PIL import Image
import mediapipe as mp
import matplotlib.cbook, skimage.data
D = '/work/shared/data/faces_dev/images/'
photos = {}
with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
    photos['grace_hopper'] = np.asarray(Image.open(fh).convert('RGB'))
photos['astronaut'] = skimage.data.astronaut()
for n in ("helen_train_1691280456_1", "helen_train_2106789492_1", "helen_train_2293429456_1", "helen_train_154598717_1"):
    photos[n] = np.asarray(Image.open(D + n + '.jpg').convert('RGB'))
out = {}
with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as fm:
    for n, img in photos.items():
        h, w = img.shape[:2]
        r = fm.process(img)
        lm = r.multi_face_landmarks[0].landmark
        out[n] = np.array([[p.x * w, p.y * h] for p in lm[468:478]], np.float32)
np.savez('mp_refined.npz', **out)
