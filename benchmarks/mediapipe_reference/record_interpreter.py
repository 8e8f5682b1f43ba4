"""TFLite interpreter (ai-edge-litert) on our input tensors + random inputs → network outputs."""
import numpy as np
from ai_edge_litert.interpreter import Interpreter
D = '/work/scratch/mp/x/mediapipe/modules/'
def run(path, x):
    it = Interpreter(model_path=path); it.allocate_tensors()
    d = it.get_input_details()[0]; it.set_tensor(d['index'], x[None].astype(np.float32)); it.invoke()
    return {o['name']: it.get_tensor(o['index'])[0] for o in it.get_output_details()}
inp = np.load('/work/scratch/ref/inputs.npz')
keys = sorted({k.split(':')[0] for k in inp})
e2e = np.load('/work/scratch/ref/mp_e2e.npz')
fx = {"images": np.array(keys)}
TOP = 8
for k in keys:
    det = run(D + 'face_detection/face_detection_short_range.tflite', inp[k + ':det_in'])
    logit = det['classificators'][:, 0]
    idx = np.argsort(-logit)[:TOP]
    fx[k + ':det_idx'] = idx.astype(np.int16)
    fx[k + ':det_raw'] = det['regressors'][idx].astype(np.float32)
    fx[k + ':det_logit'] = logit[idx].astype(np.float32)
    mesh = run(D + 'face_landmark/face_landmark.tflite', inp[k + ':mesh_in'])
    fx[k + ':mesh_tf'] = inp[k + ':mesh_tf']
    fx[k + ':mesh_raw'] = mesh['conv2d_21'].reshape(468, 3).astype(np.float32)
    fx[k + ':mesh_logit'] = np.float32(mesh['conv2d_31'].reshape(()))
    for f in ('mesh', 'box', 'kp', 'score'):
        fx[k + ':mp_' + f] = e2e[k + ':' + f].astype(np.float32)
# random inputs, seeded: no photo needed
for name, fn, s in (('short', 'face_detection/face_detection_short_range.tflite', 128),
                    ('full', 'face_detection/face_detection_full_range_sparse.tflite', 192),
                    ('mesh', 'face_landmark/face_landmark.tflite', 192)):
    x = np.random.default_rng(0).random((s, s, 3), dtype=np.float32)
    out = run(D + fn, x)
    vals = list(out.values())
    if name == 'mesh':
        fx['random:mesh_raw'] = out['conv2d_21'].reshape(468, 3); fx['random:mesh_logit'] = out['conv2d_31'].reshape(())
    else:
        reg = out['regressors'] if 'regressors' in out else out['Identity']
        cls = out['classificators'] if 'classificators' in out else out['Identity_1']
        idx = np.argsort(-cls[:, 0])[:TOP]
        fx[f'random:{name}_idx'] = idx.astype(np.int16); fx[f'random:{name}_raw'] = reg[idx]; fx[f'random:{name}_logit'] = cls[idx, 0]
np.savez_compressed('/work/scratch/ref/mediapipe_reference.npz', **fx)
print(len(fx))
