#!/usr/bin/env bash
# Writes under expensive reads (issue 19's first finding): a 3-node `synod dev` cluster
# (separate processes, fsync on) holds BIG values of 512 KiB under `big/`; one client writes
# small keys through node 0 one after another, first alone, then while READERS clients list
# all of `big/` through node 0 over and over (paged, `?recurse`, following `X-Synod-Next`).
# Before the fix 40 such readers took node 0 from 0.64 GB to 3.36 GB and the writes to 4-9 s.
# Prints write latency, node 0's peak resident memory and what the readers got.
#
#   scripts/bench-reads-vs-writes.sh                  # BIG=100 READERS=40 WRITES=1000
#   READERS=10 scripts/bench-reads-vs-writes.sh
#   SYNOD=/path/to/synod scripts/bench-reads-vs-writes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
big=${BIG:-100}
readers=${READERS:-40}
writes=${WRITES:-1000}
if [ -z "${SYNOD:-}" ]; then
  cargo build -q --release -p synod
  SYNOD=target/release/synod
fi
data=$(mktemp -d /tmp/synod-reads-XXXX)
"$SYNOD" dev --insecure-plaintext-api --data "$data" >"$data/dev.out" 2>&1 &
dev=$!
trap 'kill -INT $dev 2>/dev/null || true; wait $dev 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 200); do [ -f "$data/cluster.json" ] && grep -q "nodes up" "$data/dev.out" && break; sleep 0.1; done
nodes=$(pgrep -P $dev | sort -n | paste -sd,)
python3 - "$data/cluster.json" "$nodes" "$big" "$readers" "$writes" <<'PY'
import json, sys, threading, time, urllib.request

cluster, pids, big, readers, writes = sys.argv[1], sys.argv[2].split(","), *map(int, sys.argv[3:6])
urls = [n["api"] for n in json.load(open(cluster))["nodes"]]
node0, pid0 = urls[0], pids[0]

def call(method, url, body=None, timeout=60):
    req = urllib.request.Request(url, data=body, method=method)
    for _ in range(300):
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return e.code, e.headers, e.read()
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{method} {url} kept failing")

def rss_mb(pid):
    return next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")) / 1024

value = b"v" * (512 * 1024)
for i in range(big):
    status, _, body = call("PUT", f"{urls[i % 3]}/v1/kv/big/{i:04}", value)
    assert status == 200, (status, body[:200])

def write_latencies(tag):
    out = []
    for i in range(writes):
        t = time.perf_counter()
        status, _, body = call("PUT", f"{node0}/v1/kv/w/{tag}-{i}", b"x")
        assert status == 200, (status, body[:200])
        out.append((time.perf_counter() - t) * 1000)
    return out

stop = threading.Event()
got = {"bytes": 0, "listings": 0, "refused": 0}
lock = threading.Lock()
peak = [rss_mb(pid0)]

def reader():
    while not stop.is_set():
        after = None
        while not stop.is_set():
            q = f"{node0}/v1/kv/big/?recurse" + (f"&after={after}" if after else "")
            status, headers, body = call("GET", q, timeout=120)
            with lock:
                if status != 200:
                    got["refused"] += 1
                    break
                got["bytes"] += len(body)
            after = headers.get("x-synod-next")
            if not after:
                with lock:
                    got["listings"] += 1
                break

def sampler():
    while not stop.is_set():
        peak[0] = max(peak[0], rss_mb(pid0))
        time.sleep(0.05)

pct = lambda xs, q: sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]
alone_rss = rss_mb(pid0)
alone = write_latencies("alone")
threads = [threading.Thread(target=reader, daemon=True) for _ in range(readers)]
threads.append(threading.Thread(target=sampler, daemon=True))
for t in threads:
    t.start()
time.sleep(2)
started = time.time()
with lock:
    bytes_before, listings_before = got["bytes"], got["listings"]
loaded = write_latencies("loaded")
elapsed = time.time() - started
with lock:
    read_bytes, listings = got["bytes"] - bytes_before, got["listings"] - listings_before
stop.set()
for t in threads:
    t.join(timeout=150)
print(f"values listed: {big} of 512 KiB under big/ ({big / 2:.0f} MB); {readers} readers through node 0")
print(f"writes alone        p50 {pct(alone, .5):6.2f} ms  p99 {pct(alone, .99):7.2f} ms  max {max(alone):7.2f} ms")
print(f"writes with readers p50 {pct(loaded, .5):6.2f} ms  p99 {pct(loaded, .99):7.2f} ms  max {max(loaded):7.2f} ms")
print(f"node 0 resident memory: {alone_rss:.0f} MB before the readers, peak {peak[0]:.0f} MB with them")
print(f"readers got {read_bytes / elapsed / 1e6:.0f} MB/s ({listings} whole listings, {got['refused']} pages refused) while the writes ran ({elapsed:.1f} s)")
PY
