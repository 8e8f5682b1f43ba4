"""TFLite interpreter (ai-edge-litert) on our palm inputs + a seeded random input → top anchors."""
import numpy as np
from ai_edge_litert.interpreter import Interpreter
P = '/work/scratch/hands/x/mediapipe/modules/palm_detection/palm_detection_lite.tflite'
def run(x):
    it = Interpreter(model_path=P); it.allocate_tensors()
    d = it.get_input_details()[0]; it.set_tensor(d['index'], x[None].astype(np.float32)); it.invoke()
    return {o['name']: it.get_tensor(o['index'])[0] for o in it.get_output_details()}
inp = dict(np.load('/work/scratch/hands/ref/inputs.npz'))
inp['random'] = np.random.default_rng(0).random((192, 192, 3), dtype=np.float32)
fx = {}
for k, x in inp.items():
    out = run(x)
    reg, cls = out['Identity'], out['Identity_1']
    idx = np.argsort(-cls[:, 0])[:8]
    fx[k + ':idx'] = idx.astype(np.int16); fx[k + ':raw'] = reg[idx].astype(np.float32); fx[k + ':logit'] = cls[idx, 0].astype(np.float32)
    print(k, cls[idx, 0].round(2))
np.savez_compressed('/work/scratch/hands/ref/palm_reference.npz', **fx)
