import ctypes, json, time
memkit = ctypes.CDLL(None)          # libmemkit.so is preloaded: mk_prof_dump and mk_heap_map are there
rows = [{"id": i, "name": "user%d" % i, "tags": ["t%d" % (i % 7), "x" * (i % 40)]} for i in range(150000)]
text = json.dumps(rows)
index = {r["name"]: r for r in rows}
del rows
time.sleep(0.2)
back = json.loads(text)
memkit.mk_prof_dump(b"python3.heap")
memkit.mk_heap_map(b"python3-map.svg")
print(len(text), len(index), len(back))
