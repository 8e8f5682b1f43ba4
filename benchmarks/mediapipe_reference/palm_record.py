"""TFLite interpreter (ai-edge-litert) on our palm inputs and hand crops, and on seeded random
inputs → the palm detector's 8 best anchors, the hand landmark model's points and presence."""
import numpy as np
from ai_edge_litert.interpreter import Interpreter
D = '/work/scratch/hands/x/mediapipe/modules/'
PALM, HAND = D + 'palm_detection/palm_detection_lite.tflite', D + 'hand_landmark/hand_landmark_lite.tflite'
def run(path, x):
    it = Interpreter(model_path=path); it.allocate_tensors()
    d = it.get_input_details()[0]; it.set_tensor(d['index'], x[None].astype(np.float32)); it.invoke()
    return {o['name']: it.get_tensor(o['index'])[0] for o in it.get_output_details()}
inp = dict(np.load('/work/scratch/hands/ref/inputs.npz'))
palms = {k: v for k, v in inp.items() if ':' not in k}
palms['random'] = np.random.default_rng(0).random((192, 192, 3), dtype=np.float32)
fx = {}
for k, x in palms.items():
    out = run(PALM, x)
    reg, cls = out['Identity'], out['Identity_1']
    idx = np.argsort(-cls[:, 0])[:8]
    fx[k + ':idx'] = idx.astype(np.int16); fx[k + ':raw'] = reg[idx].astype(np.float32); fx[k + ':logit'] = cls[idx, 0].astype(np.float32)
hands = {k.split(':')[0]: inp[k] for k in inp if k.endswith(':hand_in')}
hands['random'] = np.random.default_rng(0).random((224, 224, 3), dtype=np.float32)
for k, x in hands.items():
    out = run(HAND, x)
    fx[k + ':hand_points'] = out['Identity'].reshape(21, 3).astype(np.float32)
    fx[k + ':hand_presence'] = np.float32(out['Identity_1'].reshape(()))
    if k + ':hand_tf' in inp:
        fx[k + ':hand_tf'] = inp[k + ':hand_tf']
    print(k, fx[k + ':hand_presence'])
np.savez_compressed('/work/scratch/hands/ref/palm_reference.npz', **fx)
