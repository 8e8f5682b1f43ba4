"""MediaPipe 0.10.14's own Hands graph (static images, lite models) on faces_dev photos with a hand
at the face: its 21 points per hand (photo px), to compare with the port end to end."""
import numpy as np
from PIL import Image
import mediapipe as mp
NAMES = ("helen_train_2293429456_1", "helen_train_154598717_1", "helen_train_2064537523_1",
         "helen_train_2104726907_1", "helen_train_111168419_1")
out = {}
with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=2, model_complexity=0,
                              min_detection_confidence=0.5) as hands:
    for n in NAMES:
        img = np.asarray(Image.open('/work/shared/data/faces_dev/images/' + n + '.jpg').convert('RGB'))
        h, w = img.shape[:2]
        r = hands.process(img)
        found = r.multi_hand_landmarks or []
        for i, hand in enumerate(found):
            out[f'{n}:mp_hand{i}'] = np.array([[p.x * w, p.y * h] for p in hand.landmark], np.float32)
        print(n, len(found))
np.savez('/work/scratch/hands/ref/mp_hands.npz', **out)
