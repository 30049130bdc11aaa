"""PyTorch mirror of `train-embedded.ts`, for searching training recipes ~10x faster than TensorFlow.js wasm.

Same model (GPT-2: pre-LayerNorm, tanh GELU, tied unembedding, sinusoid-initialised learned positions), same
initialisation scales, AdamW (beta2 0.98, decay on projection matrices), global-norm clipping, constant LR
after warmup, and the same data forms as `synthetic.ts` (repeats: `<bos> f… A A… g…` with segment length,
copy count and offset drawn per sequence; plain random sequences without a repeat; skip-copy sequences for the
first --skip STEPS:FRACTION:P steps). Random streams differ from the TypeScript script (Python's `random` /
torch's generator), so a recipe is only adopted after it also works there.

Every --eval steps it prints the generalisation grid of `grid.ts` (the definitions live there; this is a
second implementation of them): for every segment length n from 3 to the longest that fits twice in the
context and every start offset, `<bos> f A A g` (two copies) and `<bos> f A A A…` (as many copies as fit, when
that is 3 or more), words all distinct. Per cell: loss on the repeated part, best induction score, and the rise
in repeated-part loss / shift of the first copy when the induction heads (grid-mean score > 0.5) are zeroed.

    /usr/bin/python3 scripts/train/recipe_search.py --seed 3          # defaults = DEFAULTS of train-embedded.ts
    /usr/bin/python3 scripts/train/recipe_search.py --load src/assets/induction-2l   # grid of a written model
(Debian's python3-torch; one thread, run it niced: the search shares the machine.)
"""
import argparse
import json
import math
import os
import random
import re
import struct
import time

import torch, torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=2500)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--wd", type=float, default=0.01)
p.add_argument("--warmup", type=int, default=100)
p.add_argument("--d", type=int, default=64)
p.add_argument("--heads", type=int, default=2)
p.add_argument("--layers", type=int, default=2)
p.add_argument("--mlp", type=int, default=256)
p.add_argument("--ctx", type=int, default=64)
p.add_argument("--minseg", type=int, default=2)
p.add_argument("--maxseg", type=int, default=32)
p.add_argument("--maxcopies", type=int, default=64)
p.add_argument("--norep", type=float, default=0.1, help="fraction of sequences without any repeat")
p.add_argument("--skip", type=str, default="500:0.3:0.5")
p.add_argument("--attnstd", type=float, default=0.1)
p.add_argument("--wtestd", type=float, default=0.1)
p.add_argument("--sinus", type=int, default=1)
p.add_argument("--vocab", type=int, default=318)  # len(VOCAB) in synthetic.ts
p.add_argument("--eval", type=int, default=500)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--beta2", type=float, default=0.98)
p.add_argument("--samples", type=int, default=2, help="sequences per grid cell during training")
p.add_argument("--final-samples", type=int, default=6)
p.add_argument("--load", type=str, default="", help="HF GPT-2 folder: print its grid, do not train")
p.add_argument("--init", type=str, default="", help="HF GPT-2 folder: start training from its weights (fresh optimizer)")
p.add_argument("--wpe-copy", type=str, default="", help="TO:FROM: position rows TO.. := rows FROM.. of the loaded weights")
p.add_argument("--wpe-extend", type=int, default=0, help="FROM: position rows FROM.. continued by the learned shift map")
p.add_argument("--only", type=str, default="", help="STEPS:REGEX: for the first STEPS steps train only the parameters matching REGEX")
p.add_argument("--wpe-reinit", type=int, default=0, help="FROM: position rows FROM.. restart from their initialisation (sinusoids)")
p.add_argument("--wpe-repair", type=str, default="", help="FROM:STEPS: before training, fit position rows FROM.. (only them) "
               "so that layer 0's previous-token head attends to the previous position there too")
p.add_argument("--headdrop", type=float, default=0.0, help="P: in training, each head of layers >= 1 is zeroed per sequence with probability P")
p.add_argument("--min-lr-ratio", type=float, default=1.0, help="cosine decay after warmup to lr * this (1: constant, as train-embedded.ts minLrRatio)")
p.add_argument("--save", type=str, default="", help="write the trained weights here (safetensors, HF names)")
p.add_argument("--mix", type=str, default="", help="data mixture after skip-copy, e.g. end:0.4,grid:0.5,norep:0.1 "
               "(end: filler then the segment repeated to the end; grid: filler, 2 copies or as many as fit, filler; "
               "norep: no repeat). Empty: the original form (uniform copies, --norep)")
p.add_argument("--skip-late", type=str, default="", help="FRACTION:P skip-copy sequences for the whole run after --skip")
p.add_argument("--ckpt-every", type=int, default=0, help="with --save, also save every this many steps to SAVE-stepN")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
rng = random.Random(a.seed)
W0 = 2  # first word id (after <bos>, <unk>)
sk = a.skip.split(":")
MIX = [(f.split(":")[0], float(f.split(":")[1])) for f in a.mix.split(",")] if a.mix else []
skip_until, skip_frac, skip_p = float(sk[0]), float(sk[1]), float(sk[2])

P = {}
if a.load or a.init:
    a.load, load_only = a.load or a.init, bool(a.load)
    # safetensors: u64 header length, JSON header, raw little-endian data.
    raw = open(os.path.join(a.load, "model.safetensors"), "rb").read()
    hl = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + hl])
    for k, v in hdr.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]
        P[k] = torch.frombuffer(bytearray(raw[8 + hl + s:8 + hl + e]), dtype=torch.float32).reshape(v["shape"]).clone()
    cfg_file = os.path.join(a.load, "config.json")  # scripts/train/stage1 keeps the weights only: the defaults' shape
    cfg = json.load(open(cfg_file)) if os.path.exists(cfg_file) else {}
    V, D, H, L, M, T = (cfg.get(k, d) for k, d in [("vocab_size", a.vocab), ("n_embd", a.d), ("n_head", a.heads), ("n_layer", a.layers), ("n_inner", a.mlp), ("n_positions", a.ctx)])
else:
    load_only = False
    V, D, H, L, M, T = a.vocab, a.d, a.heads, a.layers, a.mlp, a.ctx
dh = D // H


def seq_train(step):
    """One training sequence of T + 1 tokens (synthetic.ts `trainingSequence`)."""
    room = T  # tokens after <bos>
    fill = lambda k: [rng.randint(W0, V - 1) for _ in range(k)]
    if step < skip_until and rng.random() < skip_frac:
        out = [0]
        while len(out) < room + 1:
            out.append(out[-2] if len(out) >= 3 and rng.random() < skip_p else rng.randint(W0, V - 1))
        return out
    if a.skip_late and step >= skip_until:
        fr, pp = map(float, a.skip_late.split(":"))
        if rng.random() < fr:
            out = [0]
            while len(out) < room + 1:
                out.append(out[-2] if len(out) >= 3 and rng.random() < pp else rng.randint(W0, V - 1))
            return out
    if MIX:
        r, acc, form = rng.random(), 0.0, "norep"
        for f_, w_ in MIX:
            acc += w_
            if r < acc: form = f_; break
        if form == "norep":
            return [0] + fill(room)
        if form == "early":
            # a short segment right after <bos> (filler of 0-3 words before it), two copies or as many as fit
            n = rng.randint(a.minseg, min(8, room // 2))
            most = (room - 3) // n
            k = 2 if rng.random() < 0.5 else rng.randint(3, most)
            off = rng.randint(0, min(3, room - k * n))
            words = rng.sample(range(W0, V), room - k * n + n)
            seg, fl = words[:n], words[n:]
            return [0] + fl[:off] + seg * k + fl[off:]
        if form == "late":
            # two copies of a short segment whose first copy reaches the late positions, filler around
            n = rng.randint(a.minseg, min(8, room // 2))
            off = rng.randint(max(0, room - 20 - n), room - 2 * n)
            words = rng.sample(range(W0, V), room - n)
            seg, fl = words[:n], words[n:]
            return [0] + fl[:off] + seg * 2 + fl[off:]
        n = rng.randint(a.minseg, min(a.maxseg, room // 2))
        if form == "end":
            off = rng.randint(0, room - 2 * n)
            seg = rng.sample(range(W0, V), n)
            return ([0] + fill(off) + seg * (room // n + 1))[:room + 1]
        most = room // n
        k = 2 if most < 3 or rng.random() < 0.5 else rng.randint(3, most)
        off = rng.randint(0, room - k * n)
        words = rng.sample(range(W0, V), room - k * n + n)
        seg, fl = words[:n], words[n:]
        return [0] + fl[:off] + seg * k + fl[off:]
    if rng.random() < a.norep:
        return [0] + fill(room)
    n = rng.randint(a.minseg, min(a.maxseg, room // 2))
    k = rng.randint(2, min(a.maxcopies, room // n))
    off = rng.randint(0, room - k * n)
    seg = rng.sample(range(W0, V), n)
    return [0] + fill(off) + seg * k + fill(room - off - k * n)


def sinus(P_, D_, rms):
    w = torch.zeros(P_, D_)
    for p_ in range(P_):
        for i in range(D_ // 2):
            ang = p_ / 10000 ** (2 * i / D_)
            w[p_, 2 * i] = math.sqrt(2) * rms * math.sin(ang)
            w[p_, 2 * i + 1] = math.sqrt(2) * rms * math.cos(ang)
    return w


if not a.load:
    P["transformer.wte.weight"] = torch.randn(V, D) * a.wtestd
    P["transformer.wpe.weight"] = sinus(T, D, 0.02) if a.sinus else torch.randn(T, D) * 0.02
    for l in range(L):
        h = f"transformer.h.{l}"
        P[f"{h}.ln_1.weight"], P[f"{h}.ln_1.bias"] = torch.ones(D), torch.zeros(D)
        P[f"{h}.attn.c_attn.weight"], P[f"{h}.attn.c_attn.bias"] = torch.randn(D, 3 * D) * a.attnstd, torch.zeros(3 * D)
        P[f"{h}.attn.c_proj.weight"], P[f"{h}.attn.c_proj.bias"] = torch.randn(D, D) * 0.02 / math.sqrt(2 * L), torch.zeros(D)
        P[f"{h}.ln_2.weight"], P[f"{h}.ln_2.bias"] = torch.ones(D), torch.zeros(D)
        P[f"{h}.mlp.c_fc.weight"], P[f"{h}.mlp.c_fc.bias"] = torch.randn(D, M) * 0.02, torch.zeros(M)
        P[f"{h}.mlp.c_proj.weight"], P[f"{h}.mlp.c_proj.bias"] = torch.randn(M, D) * 0.02 / math.sqrt(2 * L), torch.zeros(D)
    P["transformer.ln_f.weight"], P["transformer.ln_f.bias"] = torch.ones(D), torch.zeros(D)
if a.wpe_reinit:
    P["transformer.wpe.weight"][a.wpe_reinit:] = sinus(T, D, 0.02)[a.wpe_reinit:]
if a.wpe_extend:
    # rows FROM.. := continued by the shift map R (least squares, wpe[p+1] ≈ wpe[p] @ R over rows 1..FROM-1; row 0
    # is <bos>'s): sinusoids obey such a map exactly (a rotation per frequency), learned rows approximately.
    fr = a.wpe_extend
    W = P["transformer.wpe.weight"]
    X, Y = W[1:fr - 1], W[2:fr]
    # One 2x2 map per sinusoid pair (columns 2i, 2i+1, as initialised): 4 unknowns per pair fitted on ~40 rows.
    R = torch.zeros(D, D)
    for i in range(0, D, 2):
        R[i:i + 2, i:i + 2] = torch.linalg.lstsq(X[:, i:i + 2], Y[:, i:i + 2]).solution
    print(f"wpe shift map fitted on rows 1..{fr-1}: relative residual {float((X @ R - Y).norm() / Y.norm()):.3f}", flush=True)
    for q in range(fr, T): W[q] = W[q - 1] @ R
if a.wpe_copy:
    to, fr = map(int, a.wpe_copy.split(":"))
    P["transformer.wpe.weight"][to:] = P["transformer.wpe.weight"][fr:fr + T - to].clone()
for k in P: P[k].requires_grad_(True)
mask = torch.triu(torch.full((T, T), -1e9), 1)


def fwd(ids, ablate=(), pats=None, drop=0.0):
    B, t = ids.shape
    x = P["transformer.wte.weight"][ids] + P["transformer.wpe.weight"][:t]
    for l in range(L):
        h = f"transformer.h.{l}"
        a_ = F.layer_norm(x, (D,), P[f"{h}.ln_1.weight"], P[f"{h}.ln_1.bias"], 1e-5)
        qkv = a_ @ P[f"{h}.attn.c_attn.weight"] + P[f"{h}.attn.c_attn.bias"]
        q, k, v = [u.view(B, t, H, dh).transpose(1, 2) for u in qkv.split(D, -1)]
        s = q @ k.transpose(-1, -2) / math.sqrt(dh) + mask[:t, :t]
        pat = s.softmax(-1)  # [B, H, q, k]
        if pats is not None: pats.append(pat)
        z = pat @ v
        if drop and l >= 1:
            z = z * (torch.rand(B, H, 1, 1) >= drop).float()
        dead = [ah for (al, ah) in ablate if al == l]
        if dead:
            keep = torch.ones(1, H, 1, 1); keep[0, dead] = 0
            z = z * keep
        x = x + z.transpose(1, 2).reshape(B, t, D) @ P[f"{h}.attn.c_proj.weight"] + P[f"{h}.attn.c_proj.bias"]
        m = F.layer_norm(x, (D,), P[f"{h}.ln_2.weight"], P[f"{h}.ln_2.bias"], 1e-5)
        x = x + F.gelu(m @ P[f"{h}.mlp.c_fc.weight"] + P[f"{h}.mlp.c_fc.bias"], approximate="tanh") @ P[f"{h}.mlp.c_proj.weight"] + P[f"{h}.mlp.c_proj.bias"]
    x = F.layer_norm(x, (D,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], 1e-5)
    return x @ P["transformer.wte.weight"].T


def grid_cells(samples, seed, min_tokens=24):
    """Every cell (n, offset, copies) of the grid; copies 2 or 'max' (>= 3). At least `samples` sequences per
    cell, and enough that its first copy has `min_tokens` scored tokens (grid.ts `minTokens`)."""
    g = random.Random(seed)
    slots = T - 1  # positions after <bos> inside the context
    cells, seqs = [], []
    for n in range(3, slots // 2 + 1):
        for off in range(0, slots - 2 * n + 1):
            for many in (False, True):
                k = (slots - off) // n if many else 2
                if many and k < 3: continue
                S = max(samples, -(-min_tokens // (n - 1)))
                cells.append((n, off, k, len(seqs), S))
                for _ in range(S):
                    words = g.sample(range(W0, V), slots - k * n + n)  # filler and segment all distinct
                    seg, fill = words[:n], words[n:]
                    seqs.append([0] + fill[:off] + seg * k + fill[off:])
    return cells, torch.tensor(seqs)


def grid_eval(samples, seed=4321, verbose=False, min_tokens=24):
    """Per-cell figures (see the file comment) and their summary."""
    cells, ids = grid_cells(samples, seed, min_tokens)
    C = len(cells)
    with torch.no_grad():
        nll, ind, prev = [], [], []
        for i in range(0, len(ids), 1024):
            b = ids[i:i + 1024]
            pats = []
            lp = fwd(b, pats=pats).log_softmax(-1)
            nll.append(-lp[:, :-1].gather(-1, b[:, 1:, None])[..., 0])  # nll[:, t-1] = token t
            pt = torch.stack(pats, 1)  # [B, L, H, q, k]
            prev.append(pt.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1))  # [B, L, H]
            ind.append(pt)
        nll = torch.cat(nll)
        prev_score = torch.cat(prev).mean(0)  # [L, H]
        pats = torch.cat(ind)
        # Induction score per sequence and head: attention from copies >= 2 to the position after each earlier occurrence.
        ind_cell = torch.zeros(C, L, H)
        for c, (n, off, k, at, S) in enumerate(cells):
            p0 = 1 + off
            qs = torch.arange(p0 + n, p0 + k * n)
            tot = 0
            for mcop in range(1, k):
                valid = qs - mcop * n >= p0
                tgt = (qs - mcop * n + 1).clamp(min=0)
                tot = tot + pats[at:at + S][:, :, :, qs, tgt] * valid
            ind_cell[c] = tot.mean(-1).mean(0)  # [C, L, H]
        ind_mean = ind_cell.mean(0)
        heads = [(l, h) for l in range(1, L) for h in range(H) if ind_mean[l, h] > 0.5]
        if not heads:
            flat = int(ind_mean[1:].argmax()); heads = [(1 + flat // H, flat % H)]

        def halves(nll_):
            first, rep = torch.zeros(C), torch.zeros(C)
            for c, (n, off, k, at, S) in enumerate(cells):
                p0 = 1 + off
                seg = nll_[at:at + S]
                first[c] = seg[:, p0:p0 + n - 1].mean()        # tokens p0+1..p0+n-1
                rep[c] = seg[:, p0 + n:p0 + k * n - 1].mean()  # tokens p0+n+1..p0+kn-1
            return first, rep

        first, rep = halves(nll)
        abl = []
        for i in range(0, len(ids), 1024):
            b = ids[i:i + 1024]
            lp = fwd(b, ablate=heads).log_softmax(-1)
            abl.append(-lp[:, :-1].gather(-1, b[:, 1:, None])[..., 0])
        afirst, arep = halves(torch.cat(abl))
    best = ind_cell[:, 1:].flatten(1).max(-1).values
    rise, shift = arep - rep, (afirst - first).abs()
    ok = (rep <= 1.0) & (best >= 0.5) & (rise >= 1.0) & (shift < 0.2)
    bp = int(prev_score.flatten().argmax())
    summary = {
        "cells": C, "pass": int(ok.sum()), "worst_rep": float(rep.max()), "mean_rep": float(rep.mean()),
        "min_best_ind": float(best.min()), "min_rise": float(rise.min()), "max_shift": float(shift.max()),
        "prev_head": (bp // H, bp % H, float(prev_score.flatten()[bp])), "ind_heads": heads,
        "ind_mean": ind_mean.tolist(), "prev": prev_score.tolist(),
    }
    if verbose:
        print(f"grid: {C} cells x >= {samples} sequences ({len(ids)}); induction heads zeroed together: {heads}")
        print("prev-token score [layer][head]:", [[round(x, 3) for x in r] for r in prev_score.tolist()])
        print("induction score (grid mean) [layer][head]:", [[round(x, 3) for x in r] for r in ind_mean.tolist()])
        print(" n | copies | offsets | worst rep loss (offset) | mean rep | min best ind | min rise | max |Δfirst|")
        for n in range(3, (T - 1) // 2 + 1):
            for many in (False, True):
                idx = [c for c, (nn, off, k, _, _) in enumerate(cells) if nn == n and (k >= 3) == many]
                if not idx: continue
                idx_t = torch.tensor(idx)
                w = int(rep[idx_t].argmax())
                print(f"{n:2d} | {'2' if not many else '>=3':>6} | {len(idx):7d} | {float(rep[idx_t].max()):6.3f} ({cells[idx[w]][1]:2d}) | {float(rep[idx_t].mean()):6.3f} | {float(best[idx_t].min()):6.3f} | {float(rise[idx_t].min()):6.3f} | {float(shift[idx_t].max()):6.3f}")
    return summary


def fmt(s):
    ph = s["prev_head"]
    return (f"pass {s['pass']}/{s['cells']} worst rep {s['worst_rep']:.2f} mean {s['mean_rep']:.2f} minInd {s['min_best_ind']:.2f} "
            f"minRise {s['min_rise']:.2f} maxShift {s['max_shift']:.2f} | prev L{ph[0]}H{ph[1]} {ph[2]:.2f} | ind {s['ind_heads']} "
            f"{[[round(x, 2) for x in r] for r in s['ind_mean']]}")


if load_only:
    print(fmt(grid_eval(a.final_samples, verbose=True)))
    raise SystemExit(0)

def repair_positions(fr, steps):
    """Position rows of wpe, alone, fitted to maximise layer 0's previous-token head's attention to the previous
    position from every query on random sequences. The head: the best previous-token head over all queries. The
    rows: `fr..` when fr is a number; with "auto", every row whose query attends to its previous position < 0.5."""
    W = P["transformer.wpe.weight"]
    with torch.no_grad():
        ids = torch.tensor([[0] + rng.sample(range(W0, V), T - 1) for _ in range(64)])
        pats = []
        fwd(ids, pats=pats)
        prev = pats[0].diagonal(offset=-1, dim1=-2, dim2=-1).mean(0)  # [H, T-1]: query q = index + 1
        head = int(prev.mean(-1).argmax())
        rows_at = [q for q in range(1, T) if prev[head, q - 1] < 0.5] if fr == "auto" else list(range(int(fr), T))
    print(f"refitting position rows {rows_at} for L0H{head}", flush=True)
    sel = torch.zeros(T, 1); sel[rows_at] = 1
    delta = torch.zeros(T, D, requires_grad=True)
    o = torch.optim.Adam([delta], lr=1e-2)
    h0 = "transformer.h.0"
    q_from = 1 if fr == "auto" else int(fr)
    for it in range(steps):
        ids = torch.tensor([[0] + rng.sample(range(W0, V), T - 1) for _ in range(32)])
        x = P["transformer.wte.weight"][ids].detach() + W.detach() + delta * sel
        a_ = F.layer_norm(x, (D,), P[f"{h0}.ln_1.weight"].detach(), P[f"{h0}.ln_1.bias"].detach(), 1e-5)
        qkv = a_ @ P[f"{h0}.attn.c_attn.weight"].detach() + P[f"{h0}.attn.c_attn.bias"].detach()
        q, k, _ = [u.view(32, T, H, dh).transpose(1, 2)[:, head] for u in qkv.split(D, -1)]
        lp = (q @ k.transpose(-1, -2) / math.sqrt(dh) + mask).log_softmax(-1)  # [B, q, k]
        loss = -lp.diagonal(offset=-1, dim1=-2, dim2=-1)[:, q_from - 1:].mean()
        o.zero_grad(); loss.backward(); o.step()
    with torch.no_grad():
        W += delta.detach() * sel
    print(f"positions refitted ({steps} steps): mean log attention to the previous position {-float(loss):.3f}", flush=True)


if a.wpe_repair:
    fr_, st_ = a.wpe_repair.split(":")
    repair_positions(fr_ if fr_ == "auto" else int(fr_), int(st_))
decay = [k for k in P if k.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))]
nodecay = [k for k in P if k not in decay]
opt = torch.optim.AdamW([{"params": [P[k] for k in decay], "weight_decay": a.wd}, {"params": [P[k] for k in nodecay], "weight_decay": 0}],
                        lr=a.lr, betas=(0.9, a.beta2), eps=1e-8)
# NB torch AdamW decay is lr*wd*param, same as the TS script (update += wd*param, times lr).

def save(dirname):
    os.makedirs(dirname, exist_ok=True)
    hdr, blobs, off = {}, [], 0
    for k in sorted(P):
        b = P[k].detach().float().contiguous().numpy().tobytes()
        hdr[k] = {"dtype": "F32", "shape": list(P[k].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(hdr).encode()
    with open(os.path.join(dirname, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h); f.write(b"".join(blobs))
    json.dump({"vocab_size": V, "n_embd": D, "n_head": H, "n_layer": L, "n_inner": M, "n_positions": T}, open(os.path.join(dirname, "config.json"), "w"))


t0 = time.time()
run = 0.0
print(vars(a), flush=True)
for step in range(a.steps):
    if step < a.warmup: lr = a.lr * (step + 1) / a.warmup
    else:
        prog = 1.0 if a.steps <= a.warmup else (step - a.warmup) / max(1, a.steps - 1 - a.warmup)
        lr = a.lr * (a.min_lr_ratio + (1 - a.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, prog))))
    for g in opt.param_groups: g["lr"] = lr
    batch = torch.tensor([seq_train(step) for _ in range(a.batch)])
    logits = fwd(batch[:, :-1], drop=a.headdrop)
    loss = F.cross_entropy(logits.reshape(-1, V), batch[:, 1:].reshape(-1))
    opt.zero_grad(); loss.backward()
    if a.only and step < int(a.only.split(":")[0]):
        for k in P:
            if not re.search(a.only.split(":", 1)[1], k): P[k].grad = None
    torch.nn.utils.clip_grad_norm_(list(P.values()), 1.0)
    opt.step()
    run = 0.98 * run + 0.02 * loss.item() if step else loss.item()
    if a.save and a.ckpt_every and (step + 1) % a.ckpt_every == 0: save(f"{a.save}-step{step+1}")
    if (step + 1) % a.eval == 0 and step + 1 < a.steps:
        print(f"step {step+1:5d} loss {run:.3f} {time.time()-t0:5.0f}s  {fmt(grid_eval(a.samples, min_tokens=4))}", flush=True)
print(f"step {a.steps:5d} loss {run:.3f} {time.time()-t0:5.0f}s", flush=True)
print(fmt(grid_eval(a.final_samples, verbose=True)), flush=True)
if a.save: save(a.save)
