"""tests/fixtures/iris_reference.npz: the package photos' eye crops (our iris_crops at Face Mesh's
corners, rounded to uint8), the TFLite interpreter's outputs on crop/255 and on a seeded random
input, and MediaPipe's refined Face Mesh iris points (468–477, photo px) for the same photos."""
import numpy as np
from ai_edge_litert.interpreter import Interpreter
P = '/work/scratch/mpvenv/lib/python3.11/site-packages/mediapipe/modules/iris_landmark/iris_landmark.tflite'
it = Interpreter(model_path=P); it.allocate_tensors()
d = it.get_input_details()[0]
def run(x):
    it.set_tensor(d['index'], x[None].astype(np.float32)); it.invoke()
    out = {o['name']: it.get_tensor(o['index'])[0] for o in it.get_output_details()}
    return out['output_eyes_contours_and_brows'].reshape(71, 3), out['output_iris'].reshape(5, 3)
inp = dict(np.load('inputs.npz')); mp = np.load('mp_refined.npz')
fx = {}
for n in ("grace_hopper", "astronaut"):
    crops = np.clip(np.round(inp[n] * 255), 0, 255).astype(np.uint8)
    fx[n + ':crops'] = crops; fx[n + ':corners'] = inp[n + ':corners'].astype(np.float32); fx[n + ':mp_refined'] = mp[n]
    outs = [run(c.astype(np.float32) / 255) for c in crops]
    fx[n + ':contour'] = np.stack([o[0] for o in outs]).astype(np.float32); fx[n + ':iris'] = np.stack([o[1] for o in outs]).astype(np.float32)
c, i = run(np.random.default_rng(0).random((64, 64, 3), dtype=np.float32))
fx['random:contour'], fx['random:iris'] = c[None].astype(np.float32), i[None].astype(np.float32)
np.savez_compressed('iris_reference.npz', **fx)
