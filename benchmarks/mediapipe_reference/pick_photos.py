import json, numpy as np
d = json.load(open('/work/shared/data/faces_dev/landmarks.json'))['images']
names = sorted(d)
r = {}
for n in names:
    lm = np.array(d[n]['landmarks'])
    r[n] = (lm[30,0]-lm[0,0])/(lm[16,0]-lm[0,0])
yaw = {n: np.degrees(np.arcsin(np.clip(2*v-1,-1,1))) for n,v in r.items()}
order = sorted(names, key=lambda n: -abs(yaw[n]))
pick = order[:8] + [names[0], names[100]]
json.dump({"pick": pick, "yaw": yaw}, open('/work/scratch/ref/pick.json','w'))
for n in pick: print(n, round(yaw[n],1))
print(sum(abs(v)>40 for v in yaw.values()), sum(abs(v)>25 for v in yaw.values()))
