"""PyTorch mirror of `train-embedded.ts`, for searching training recipes ~8x faster than TensorFlow.js wasm.

Same model (GPT-2: pre-LayerNorm, tanh GELU, tied unembedding, sinusoid-initialised learned positions), same
initialisation scales, AdamW (beta2 0.98, decay on projection matrices), global-norm clipping, constant LR
after warmup, and the same data forms (`synthetic.ts`: `<bos> f A A A...`, `<bos> f A g A h` with --gaps 1,
skip-copy sequences for the first --skip STEPS:FRACTION:P steps). Random streams differ from the TypeScript
script (Python's `random` / torch's generator), so a recipe is only adopted after it also works there; this
script never writes a checkpoint. Prints, every --eval steps, the held-out (`<bos> A A`, |A| = 20) losses of
both halves, previous-token and induction scores of every head ([layer 0 heads] [layer 1 heads]) and the rise
in repeated-half loss when the best induction head is zero-ablated.

    /usr/bin/python3 src/train/recipe_search.py --seed 3          # defaults = DEFAULTS of train-embedded.ts
(Debian's python3-torch; one thread per run, so two runs fit the 2 cores.)
"""
import argparse
import math
import random
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
p.add_argument("--mlp", type=int, default=256)
p.add_argument("--ctx", type=int, default=64)
p.add_argument("--minseg", type=int, default=10)
p.add_argument("--maxseg", type=int, default=30)
p.add_argument("--gaps", type=int, default=0)
p.add_argument("--skip", type=str, default="500:0.3:0.5")
p.add_argument("--attnstd", type=float, default=0.1)
p.add_argument("--wtestd", type=float, default=0.1)
p.add_argument("--sinus", type=int, default=1)
p.add_argument("--vocab", type=int, default=318)  # len(VOCAB) in synthetic.ts
p.add_argument("--eval", type=int, default=250)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--beta2", type=float, default=0.98)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
rng = random.Random(a.seed)
V, D, H, L, M, T = a.vocab, a.d, a.heads, 2, a.mlp, a.ctx
dh = D // H
W0 = 2
DV = V
sk = a.skip.split(":")
skip_until, skip_frac, skip_p = float(sk[0]), float(sk[1]), float(sk[2])


def seq_train(step):
    n_len = T + 1
    if step < skip_until and rng.random() < skip_frac:
        out = [0]
        while len(out) < n_len:
            out.append(out[-2] if len(out) >= 3 and rng.random() < skip_p else rng.randint(W0, DV - 1))
        return out
    n = rng.randint(a.minseg, a.maxseg)
    seg = rng.sample(range(W0, DV), n)
    fill = lambda k: [rng.randint(W0, DV - 1) for _ in range(k)]
    if a.gaps:
        room = n_len - 1 - 2 * n
        x, y = rng.randint(0, room), rng.randint(0, room)
        lo, hi = min(x, y), max(x, y)
        return [0] + fill(lo) + seg + fill(hi - lo) + seg + fill(room - hi)
    out = [0] + fill(rng.randint(0, n_len - 1 - 2 * n))
    i = 0
    while len(out) < n_len:
        out.append(seg[i % n]); i += 1
    return out


def sinus(P, D, rms):
    w = torch.zeros(P, D)
    for p_ in range(P):
        for i in range(D // 2):
            ang = p_ / 10000 ** (2 * i / D)
            w[p_, 2 * i] = math.sqrt(2) * rms * math.sin(ang)
            w[p_, 2 * i + 1] = math.sqrt(2) * rms * math.cos(ang)
    return w


P = {}
def par(name, t):
    P[name] = t.clone().requires_grad_(True)
P["wte"] = (torch.randn(V, D) * a.wtestd).requires_grad_(True)
P["wpe"] = (sinus(T, D, 0.02) if a.sinus else torch.randn(T, D) * 0.02).requires_grad_(True)
for l in range(L):
    par(f"{l}.ln1w", torch.ones(D)); par(f"{l}.ln1b", torch.zeros(D))
    par(f"{l}.attnw", torch.randn(D, 3 * D) * a.attnstd); par(f"{l}.attnb", torch.zeros(3 * D))
    par(f"{l}.projw", torch.randn(D, D) * 0.02 / math.sqrt(2 * L)); par(f"{l}.projb", torch.zeros(D))
    par(f"{l}.ln2w", torch.ones(D)); par(f"{l}.ln2b", torch.zeros(D))
    par(f"{l}.fcw", torch.randn(D, M) * 0.02); par(f"{l}.fcb", torch.zeros(M))
    par(f"{l}.fpw", torch.randn(M, D) * 0.02 / math.sqrt(2 * L)); par(f"{l}.fpb", torch.zeros(D))
par("lnfw", torch.ones(D)); par("lnfb", torch.zeros(D))
mask = torch.triu(torch.full((T, T), -1e9), 1)


def fwd(ids, ablate=(), pats=None):
    B, t = ids.shape
    x = P["wte"][ids] + P["wpe"][:t]
    for l in range(L):
        h = F.layer_norm(x, (D,), P[f"{l}.ln1w"], P[f"{l}.ln1b"], 1e-5)
        qkv = h @ P[f"{l}.attnw"] + P[f"{l}.attnb"]
        q, k, v = [u.view(B, t, H, dh).transpose(1, 2) for u in qkv.split(D, -1)]
        s = q @ k.transpose(-1, -2) / math.sqrt(dh) + mask[:t, :t]
        pat = s.softmax(-1)
        if pats is not None: pats.append(pat)
        z = pat @ v
        for (al, ah) in ablate:
            if al == l:
                z = z.clone(); z[:, ah] = 0
        x = x + z.transpose(1, 2).reshape(B, t, D) @ P[f"{l}.projw"] + P[f"{l}.projb"]
        h = F.layer_norm(x, (D,), P[f"{l}.ln2w"], P[f"{l}.ln2b"], 1e-5)
        x = x + F.gelu(h @ P[f"{l}.fcw"] + P[f"{l}.fcb"], approximate="tanh") @ P[f"{l}.fpw"] + P[f"{l}.fpb"]
    x = F.layer_norm(x, (D,), P["lnfw"], P["lnfb"], 1e-5)
    return x @ P["wte"].T


decay = [k for k in P if k.endswith(("attnw", "projw", "fcw", "fpw"))]
nodecay = [k for k in P if k not in decay]
opt = torch.optim.AdamW([{"params": [P[k] for k in decay], "weight_decay": a.wd}, {"params": [P[k] for k in nodecay], "weight_decay": 0}],
                        lr=a.lr, betas=(0.9, a.beta2), eps=1e-8)
# NB torch AdamW decay is lr*wd*param, same as the TS script (update += wd*param, times lr).

hrng = random.Random(1234)
held = torch.tensor([[0] + s + s for s in (hrng.sample(range(W0, V), 20) for _ in range(40))])
n = 20


def report():
    with torch.no_grad():
        pats = []
        lp = fwd(held, pats=pats).log_softmax(-1)
        nll = -lp[:, :-1].gather(-1, held[:, 1:, None])[..., 0]  # nll[t-1] = token t
        first = nll[:, 1:n].mean().item(); rep = nll[:, n + 1:2 * n].mean().item()
        prev = [[pats[l][:, h, torch.arange(1, 2 * n + 1), torch.arange(0, 2 * n)].mean().item() for h in range(H)] for l in range(L)]
        qs = torch.arange(n + 1, 2 * n + 1)
        ind = [[pats[l][:, h, qs, qs - n + 1].mean().item() for h in range(H)] for l in range(L)]
        best = max(((ind[l][h], l, h) for l in range(L) for h in range(H)))
        bp = max(((prev[l][h], l, h) for l in range(L) for h in range(H)))
        lp2 = fwd(held, ablate=[(best[1], best[2])]).log_softmax(-1)
        nll2 = -lp2[:, :-1].gather(-1, held[:, 1:, None])[..., 0]
        d_rep = nll2[:, n + 1:2 * n].mean().item() - rep
        d_first = nll2[:, 1:n].mean().item() - first
    g = lambda m: " ".join("/".join(f"{v:.2f}" for v in row) for row in m)
    return f"prev[{g(prev)}] ind[{g(ind)}] first {first:.2f} rep {rep:.2f} | prev L{bp[1]}H{bp[2]} {bp[0]:.2f} | ind L{best[1]}H{best[2]} {best[0]:.2f} abl +{d_rep:.2f} (1st {d_first:+.2f})", best[0], d_rep


t0 = time.time()
run = 0.0
print(vars(a), flush=True)
for step in range(a.steps):
    lr = a.lr * min(1, (step + 1) / a.warmup)
    for g in opt.param_groups: g["lr"] = lr
    batch = torch.tensor([seq_train(step) for _ in range(a.batch)])
    logits = fwd(batch[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, V), batch[:, 1:].reshape(-1))
    opt.zero_grad(); loss.backward()
    torch.nn.utils.clip_grad_norm_(list(P.values()), 1.0)
    opt.step()
    run = 0.98 * run + 0.02 * loss.item() if step else loss.item()
    if (step + 1) % a.eval == 0:
        r, ind, drep = report()
        print(f"step {step+1:5d} loss {run:.3f} {time.time()-t0:5.0f}s  {r}", flush=True)
