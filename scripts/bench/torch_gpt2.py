"""PyTorch peer of `npm run bench`: the GPT-2 forward of HookedAutoModel, in plain torch ops, from the same
weights (a safetensors file the benchmark writes; read by hand, the `safetensors` package may be absent).

usage: torch_gpt2.py WEIGHTS OUT_DIR THREADS        (THREADS 0 keeps torch's default)
Driven over stdin, one JSON command per line, one JSON answer per line on stdout, so the benchmark can
interleave the engines run by run:
  {"run": T}      one timed forward at T tokens  -> {"ms": ..., "cpu_ms": ..., "peak_rss": bytes}
  {"logits": T}   writes OUT_DIR/torch_THREADS_logits_T.bin (float32 [T, vocab])  -> {"file": path}
After loading it prints {"torch": version, "threads": n}. Exits 3 with a message when torch is missing.
"""
import json
import math
import os
import resource
import sys
import time

try:
    import numpy as np
    import torch
except Exception as e:  # noqa: BLE001 - any import failure means "no peer"
    print(json.dumps({"error": f"torch not importable: {e}"}), flush=True)
    sys.exit(3)


def load(path):
    """safetensors by hand: u64 header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise ValueError(f"{name}: expected F32, got {e['dtype']}")
        a, b = e["data_offsets"]
        arr = np.frombuffer(data, dtype=np.float32, count=(b - a) // 4, offset=a).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out, meta


def main():
    weights, out_dir, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if threads > 0:
        torch.set_num_threads(threads)
    W, meta = load(weights)
    L, H, eps = int(meta["n_layer"]), int(meta["n_head"]), float(meta["eps"])
    D = W["wE"].shape[1]
    V = W["wE"].shape[0]
    dh = D // H
    c = math.sqrt(2 / math.pi)

    def forward(ids):
        T = ids.shape[0]
        x = W["wE"][ids] + W["wPos"][:T]  # [T, d]
        mask = torch.triu(torch.full((T, T), torch.finfo(torch.float32).min), 1)
        for l in range(L):
            p = f"layers.{l}"
            h = torch.nn.functional.layer_norm(x, (D,), W[f"{p}.ln1.w"], W[f"{p}.ln1.b"], eps)
            q = (h @ W[f"{p}.attn.wQ"] + W[f"{p}.attn.bQ"]).view(T, H, dh).transpose(0, 1)  # [head, T, dh]
            k = (h @ W[f"{p}.attn.wK"] + W[f"{p}.attn.bK"]).view(T, H, dh).transpose(0, 1)
            v = (h @ W[f"{p}.attn.wV"] + W[f"{p}.attn.bV"]).view(T, H, dh).transpose(0, 1)
            pattern = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(dh) + mask, dim=-1)  # [head, T, T]
            z = (pattern @ v).transpose(0, 1).reshape(T, D)
            x = x + z @ W[f"{p}.attn.wO"] + W[f"{p}.attn.bO"]
            h2 = torch.nn.functional.layer_norm(x, (D,), W[f"{p}.ln2.w"], W[f"{p}.ln2.b"], eps)
            pre = h2 @ W[f"{p}.mlp.wIn"] + W[f"{p}.mlp.bIn"]
            post = 0.5 * pre * (1 + torch.tanh(c * (pre + 0.044715 * torch.pow(pre, 3))))
            x = x + post @ W[f"{p}.mlp.wOut"] + W[f"{p}.mlp.bOut"]
        x = torch.nn.functional.layer_norm(x, (D,), W["lnFinal.w"], W["lnFinal.b"], eps)
        return x @ W["wE"].t()  # tied unembedding

    def ids_for(T):  # the benchmark's token ids
        return torch.tensor([(i * 7919 + 13) % V for i in range(T)], dtype=torch.long)

    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    with torch.inference_mode():
        for line in sys.stdin:
            cmd = json.loads(line)
            if "run" in cmd:
                ids = ids_for(cmd["run"])
                t0, c0 = time.perf_counter(), time.process_time()
                forward(ids)
                ms = (time.perf_counter() - t0) * 1000
                cpu_ms = (time.process_time() - c0) * 1000  # CPU time of the process: robust to other load
                print(json.dumps({"ms": ms, "cpu_ms": cpu_ms, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}), flush=True)
            elif "logits" in cmd:
                path = os.path.join(out_dir, f"torch_{threads}_logits_{cmd['logits']}.bin")
                forward(ids_for(cmd["logits"])).numpy().astype(np.float32).tofile(path)
                print(json.dumps({"file": path}), flush=True)
            else:
                break


if __name__ == "__main__":
    main()
