"""Run original MediaPipe 0.10.14 end to end; save per image: mesh (468,3) px, detection."""
import json, numpy as np, skimage.data, matplotlib.cbook
from PIL import Image
import mediapipe as mp
pick = json.load(open('/work/scratch/ref/pick.json'))['pick']
imgs = {"astronaut": skimage.data.astronaut(),
        "grace_hopper": np.asarray(Image.open(matplotlib.cbook.get_sample_data('grace_hopper.jpg')).convert('RGB'))}
for n in pick:
    imgs[n] = np.asarray(Image.open('/work/shared/data/faces_dev/images/' + n).convert('RGB'))
out = {}
fm = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False, min_detection_confidence=0.5)
fd = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
for k, img in imgs.items():
    h, w = img.shape[:2]
    r = fm.process(img)
    if r.multi_face_landmarks:
        out[k + ":mesh"] = np.array([[p.x * w, p.y * h, p.z * w] for p in r.multi_face_landmarks[0].landmark], np.float32)
    d = fd.process(img)
    if d.detections:
        det = d.detections[0]
        bb = det.location_data.relative_bounding_box
        out[k + ":box"] = np.array([bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h], np.float32)
        out[k + ":kp"] = np.array([[p.x * w, p.y * h] for p in det.location_data.relative_keypoints], np.float32)
        out[k + ":score"] = np.float32(det.score[0])
    print(k, img.shape, "mesh" if r.multi_face_landmarks else "NO MESH", "det" if d.detections else "NO DET")
np.savez('/work/scratch/ref/mp_e2e.npz', **out)
