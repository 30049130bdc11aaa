"""Measures how the kernel's memory grows per executed cell (run by hand; test_growth.py asserts on it).

    JUPYTER_PATH=<prefix>/share/jupyter /usr/bin/python3 test/kernel/measure_growth.py [cells] [kind]

kind: "trivial" (`1 + 1`), "unique" (a different expression each cell, as in a real notebook), "declare"
(each cell declares a new variable), "heatmap" (an attention pattern shown with its Plotly figure), "print"
(a line of output). Prints one JSON line per sample: cells run, the kernel's RSS (from /proc) and its V8 heap
after a full GC (so garbage waiting for collection is not counted as growth).
"""
import json
import os
import sys
import time

from kernel_client import run, start, stop

CELLS = {
    "trivial": "1 + 1",
    "unique": "{i} + 1",
    "declare": "const v{i} = {i};",
    "heatmap": "attention.attentionPatterns([1, 2, 3, 4, 5, 6, 7, 8], 0, 0)",
    "print": 'console.log("a line of output")',
}

PROBE = (
    "(() => { (globalThis as any).gc?.(); const m = process.memoryUsage();"
    " const spaces = Object.fromEntries(require('v8').getHeapSpaceStatistics().map((s: any) => [s.space_name, s.space_size]));"
    " return JSON.stringify({ heap: m.heapUsed, heapTotal: m.heapTotal, external: m.external, code: spaces.code_space, old: spaces.old_space, spaces }); })()"
)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def sample(km, kc, cells):
    reply, outputs = run(kc, PROBE, store_history=False)
    text = next(m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result")
    mem = json.loads(text.strip("'\""))
    return {"cells": cells, "rss_mb": round(rss_mb(km.provisioner.process.pid), 1),
            "heap_mb": round(mem["heap"] / 2**20, 1), "heap_total_mb": round(mem["heapTotal"] / 2**20, 1),
            "code_mb": round(mem["code"] / 2**20, 1), "external_mb": round(mem["external"] / 2**20, 1),
            "spaces_mb": {k: round(v / 2**20, 1) for k, v in mem["spaces"].items()}}


def measure(n=1000, kind="trivial", every=250, extra_env=None):
    # --expose-gc: the probe collects garbage first, so only what the kernel keeps is counted.
    km, kc = start(env={**os.environ, "NODE_OPTIONS": "--expose-gc", **(extra_env or {})})
    try:
        code = CELLS[kind]
        run(kc, code.replace("{i}", "0"))  # first use loads lazy code (Plotly, the renderer): not per-cell growth
        samples = [sample(km, kc, 0)]
        for i in range(1, n + 1):
            reply, _ = run(kc, code.replace("{i}", str(i)))
            assert reply["status"] == "ok", reply
            if i % every == 0:
                samples.append(sample(km, kc, i))
        return samples
    finally:
        stop(km, kc)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    kind = sys.argv[2] if len(sys.argv) > 2 else "trivial"
    every = int(sys.argv[3]) if len(sys.argv) > 3 else 250
    extra = dict(kv.split("=", 1) for kv in sys.argv[4:])  # e.g. MALLOC_ARENA_MAX=2
    t0 = time.time()
    for s in measure(n, kind, every, extra):
        print(json.dumps(s), flush=True)
    print(f"# {n} {kind} cells in {time.time() - t0:.0f} s", flush=True)
