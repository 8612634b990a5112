#!/usr/bin/env bash
# Idle groups: hosts IDLE_GROUPS (10,000) key-value groups of three members on a 3-node
# `synod dev` cluster (separate processes, fsync on), lets them settle, then measures each
# node's CPU while nothing is written (the goal: under 5% of a core per node) and the latency
# of a first write to groups that were idle (woken) against a second write right after it
# (awake). Prints one table; docs/BENCHMARKS.md keeps the figures.
#
#   scripts/bench-idle-groups.sh                 # IDLE_GROUPS=10000 SECS=20
#   IDLE_GROUPS=1000 SECS=10 scripts/bench-idle-groups.sh
#   SYNOD=/path/to/synod scripts/bench-idle-groups.sh   # a binary built elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
groups=${IDLE_GROUPS:-10000}
secs=${SECS:-20}
if [ -z "${SYNOD:-}" ]; then
  cargo build -q --release -p synod
  SYNOD=target/release/synod
fi
data=$(mktemp -d /tmp/synod-idle-groups-XXXX)
"$SYNOD" dev --insecure-plaintext-api --data "$data" >"$data/dev.out" 2>&1 &
dev=$!
trap 'kill -INT $dev 2>/dev/null || true; wait $dev 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 200); do [ -f "$data/cluster.json" ] && grep -q "nodes up" "$data/dev.out" && break; sleep 0.1; done
nodes=$(pgrep -P $dev | sort -n | paste -sd,)
python3 - "$data/cluster.json" "$nodes" "$groups" "$secs" <<'PY'
import json, os, random, sys, time, urllib.request, concurrent.futures as cf

cluster, pids, groups, secs = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4])
urls = [n["api"] for n in json.load(open(cluster))["nodes"]]
tick = os.sysconf("SC_CLK_TCK")

def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"})
    for attempt in range(600):
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return e.code, e.read()
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{method} {url} kept failing")

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick

def rss(pid):
    return next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS"))

start = time.time()
def create(i):
    status, body = call("POST", f"{urls[i % 3]}/v1/groups", {"name": f"idle-{i}", "members": [0, 1, 2]})
    if status not in (200, 201):
        raise SystemExit(f"creating idle-{i}: {status} {body[:200]}")
with cf.ThreadPoolExecutor(4) as pool:
    list(pool.map(create, range(groups)))
created = time.time() - start
# Every node hosts every group (its status lists them), then the groups settle.
while True:
    hosted = [len(json.loads(call("GET", f"{u}/v1/status")[1])["groups"]) for u in urls]
    if all(h >= groups + 1 for h in hosted):
        break
    time.sleep(1)
time.sleep(5)
before = [cpu(p) for p in pids]
time.sleep(secs)
idle = [(cpu(p) - b) / secs * 100 for p, b in zip(pids, before)]

def put(group, key):
    t = time.perf_counter()
    status, _ = call("PUT", f"{random.choice(urls)}/v1/groups/{group}/kv/{key}", "v")
    assert status == 200, status
    return (time.perf_counter() - t) * 1000

sample = random.sample(range(groups), min(50, groups))
woken, awake = [], []
for i in sample:
    woken.append(put(f"idle-{i}", "first"))
    awake.append(put(f"idle-{i}", "second"))
time.sleep(2)
before = [cpu(p) for p in pids]
time.sleep(secs)
after_writes = [(cpu(p) - b) / secs * 100 for p, b in zip(pids, before)]
pct = lambda xs, q: sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]
print(f"groups hosted per node        {groups + 1} (created in {created:.0f} s)")
print("idle CPU per node, % of a core " + ", ".join(f"{c:.1f}" for c in idle))
print("  again after the writes      " + ", ".join(f"{c:.1f}" for c in after_writes))
print("resident memory per node, MB  " + ", ".join(f"{rss(p) / 1024:.0f}" for p in pids))
print(f"first write to a woken group  p50 {pct(woken, .5):.2f} ms  p90 {pct(woken, .9):.2f} ms  max {max(woken):.2f} ms")
print(f"next write, group awake       p50 {pct(awake, .5):.2f} ms  p90 {pct(awake, .9):.2f} ms  max {max(awake):.2f} ms")
PY
