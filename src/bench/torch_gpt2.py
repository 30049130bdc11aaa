"""PyTorch peer of `npm run bench`: the GPT-2 forward of HookedAutoModel, in plain torch ops, from the same
weights (a safetensors file the benchmark writes; read by hand, the `safetensors` package may be absent).

usage: torch_gpt2.py WEIGHTS OUT_DIR T1,T2,.. REPS THREADS
Prints one JSON object per line: {"T", "ms": [...], ...}; writes OUT_DIR/logits_T.bin (float32, [T, vocab]).
THREADS 0 keeps torch's default. Exits 3 with a message when torch is not importable.
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
    weights, out_dir, ts, reps, threads = sys.argv[1], sys.argv[2], [int(t) for t in sys.argv[3].split(",")], int(sys.argv[4]), int(sys.argv[5])
    if threads > 0:
        torch.set_num_threads(threads)
    W, meta = load(weights)
    L, H, eps = int(meta["n_layer"]), int(meta["n_head"]), float(meta["eps"])
    D = W["wE"].shape[1]
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

    print(json.dumps({"threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)
    with torch.inference_mode():
        for T in ts:
            ids = torch.tensor([(i * 7919 + 13) % W["wE"].shape[0] for i in range(T)], dtype=torch.long)
            logits = forward(ids)  # warm-up
            ms = []
            for _ in range(reps):
                t0 = time.perf_counter()
                logits = forward(ids)
                ms.append((time.perf_counter() - t0) * 1000)
            logits.numpy().astype(np.float32).tofile(os.path.join(out_dir, f"logits_{T}.bin"))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            print(json.dumps({"T": T, "ms": ms, "peak_rss": peak}), flush=True)


if __name__ == "__main__":
    main()
