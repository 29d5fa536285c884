#!/usr/bin/env python3
"""Float64 PyTorch reference for LoraSharp's training methods (issue #18), written from the papers and PEFT's
formulas, independent of the C# code. Writes small golden files next to this script (tests/references/golden/):

  dora_linear.json      one DoRA linear (PEFT DoraLinearLayer): forward and backward, with and without dropout
                        (the dropout mask is LoraSharp's counter-based stream, re-implemented here), with bias,
                        accumulating into an existing output.
  dora_stories.safetensors  stories260K with the golden LoRA init (../shared/golden/stories260K/lora) as a DoRA
                        adapter (magnitude = row norms of W + sBA, then scaled by a seeded factor so m != norm):
                        the magnitudes (PEFT keys …lora_magnitude_vector), d loss / d (A, B, m) of every module
                        (…lora_A.weight.grad, …lora_B.weight.grad, …lora_magnitude_vector.grad) and the loss
                        (metadata loss_f64) on the golden batch.

  task_merging.json     TIES (total / frequency sign election) and magnitude pruning of PEFT's merge_utils on random
                        tensors with weights (DARE's random masks cannot be reproduced, only its density-1 case).
  preference_losses.json  DPO sigmoid, IPO and ORPO losses and their gradients with respect to the summed sequence
                        log-probabilities, on random inputs (several β / λ).
  dpo_stories.safetensors stories260K with the golden LoRA init as the policy and the base (adapter off) as the
                        reference: DPO (sigmoid, β 0.1) over two pairs cut from the golden batch, each sequence run
                        alone (no packing): loss, policy/reference log p (metadata) and d loss / d (A, B).

  pissa_stories.safetensors  PiSSA (exact SVD) and OLoRA (QR) init of every projection of stories260K, r 4,
                        lora_alpha 8 (s = 2), from PEFT's pissa_init / olora_init: per method and module
                        <method>.<module>.lora_A / .lora_B (f32; the residual base is W - s·B·A with them); sign
                        convention: largest |entry| of each row of Vᵀ positive (PiSSA), R's diagonal positive (OLoRA).
                        Then "trained" factors A' = A0 + 0.01·sin(1 + i), B' = B0 + 0.01·cos(1 + i) (i the flat index,
                        rounded to f32) on the residual base: the loss on the golden batch (metadata loss_<method>_f64),
                        which the converted rank-2r LoRA [B' | -B0]·[A'; A0] on the ORIGINAL base must give too (checked
                        here, metadata converted_loss_<method>_f64).
  sophia_steps.json     Sophia-G (Liu et al. 2023, paper formulas; authors' SophiaG for the defaults): decoupled weight
                        decay, momentum, p -= lr*clamp(m / max(gamma*h, eps), -1, 1), and every k steps the GNB EMA
                        h = beta2*h + (1-beta2)*B*g_hat^2, over several steps on random float32-representable inputs.

Run:  /usr/bin/python3 tests/references/methods_reference.py  (Debian python3-torch; float64 on CPU); name files
(e.g. sophia_steps.json) to write only those.
The Llama forward below reproduces the golden loss 1.1635450960739868 of ../shared/golden/stories260K/lora
(checked at run time) before any DoRA number is written.
"""
import json
import math
import os
import struct
import sys

import torch

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared"))
OUT = os.path.join(HERE, "golden")


# ---------------------------------------------------------------- safetensors (read only, F32)
def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(info["shape"]).to(torch.float64)
        out[name] = t
    return out


# ---------------------------------------------------------------- LoraSharp's dropout stream (Core/Kernels/CounterRng.cs)
M32 = 0xFFFFFFFF


def fmix32(h):
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M32
    return h ^ (h >> 16)


def keep_mask(n, p, seed):
    k0 = fmix32((seed & M32) ^ 0x243F6A88)
    k1 = fmix32(((seed >> 32) & M32) ^ 0x85A308D3)
    k2 = fmix32((k0 + k1 + 0x13198A2E) & M32)
    t = round(p * 4294967296.0)
    mask = []
    for i in range(n):
        h = fmix32((i & M32) ^ k0)
        h = fmix32((h + (((i >> 32) & M32) ^ k1)) & M32)
        mask.append(1.0 if fmix32(h ^ k2) >= t else 0.0)
    return torch.tensor(mask)


def f32(t):
    """Round to float32 and back: inputs are drawn in f32 so both sides start from the same values."""
    return t.to(torch.float32).to(torch.float64)


def write_safetensors(path, tensors, metadata):
    """F32 safetensors (names sorted, contiguous), written to a temporary name and renamed."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        data = \
            struct.pack("<%df" % tensors[name].numel(), *tensors[name].detach().reshape(-1).tolist())
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(path + ".tmp", path)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


# ---------------------------------------------------------------- DoRA linear (PEFT semantics)
def dora_linear(x, W, bias, A, B, m, s, keep=None, p=0.0):
    """y = x Wᵀ + b + (g − 1) ⊙ (u Wᵀ) + g ⊙ s (u Aᵀ Bᵀ),  g = m / ‖W + sBA‖ (rows, detached), u = dropout(x)."""
    norm = torch.linalg.norm(W + s * (B @ A).detach(), dim=1).detach()
    g = m / norm
    u = x if keep is None else x * keep.reshape(x.shape) / (1.0 - p)
    y = x @ W.T + (g - 1) * (u @ W.T) + g * (s * ((u @ A.T) @ B.T))
    if bias is not None:
        y = y + bias
    return y, norm


def dora_linear_cases():
    gen = torch.Generator().manual_seed(18)
    cases = []
    for name, M, K, N, R, s, p, with_bias, accumulate in [
        ("plain", 6, 16, 12, 4, 2.0, 0.0, True, False),
        ("dropout_accumulate", 5, 16, 12, 4, 2.0, 0.25, False, True),
        ("odd_shapes", 7, 33, 17, 3, 0.5, 0.0, False, True),
    ]:
        def u(*shape, scale=1.0):
            return f32((torch.rand(*shape, generator=gen) * 2 - 1) * scale)
        x = u(M, K)
        W = u(N, K, scale=0.5)
        bias = u(N, scale=0.1) if with_bias else None
        A = u(R, K, scale=0.3)
        B = u(N, R, scale=0.3)
        m = f32(torch.linalg.norm(W + s * B @ A, dim=1) * (1 + u(N, scale=0.2)))
        y0 = u(M, N) if accumulate else torch.zeros(M, N)
        dy = u(M, N)
        dropout_seed = 0x1234567
        keep = None
        if p > 0:
            # Linear.Forward gives adapter i the stream seed ^ (i + 1)·0x9E3779B97F4A7C15 (here i = 0).
            keep = keep_mask(M * K, p, dropout_seed ^ 0x9E3779B97F4A7C15)
        xr, Ar, Br, mr = (t.clone().requires_grad_(True) for t in (x, A, B, m))
        y, norm = dora_linear(xr, W, bias, Ar, Br, mr, s, keep, p)
        y = y + y0
        (y * dy).sum().backward()
        cases.append({
            "name": name, "M": M, "K": K, "N": N, "R": R, "scale": s, "dropout": p, "dropout_seed": dropout_seed,
            "accumulate": accumulate,
            "x": flat(x), "W": flat(W), "bias": flat(bias) if bias is not None else None, "A": flat(A), "B": flat(B),
            "m": flat(m), "y0": flat(y0), "dy": flat(dy),
            "y": flat(y), "norm": flat(norm), "dx": flat(xr.grad), "dA": flat(Ar.grad), "dB": flat(Br.grad), "dm": flat(mr.grad),
        })
    return cases


# ---------------------------------------------------------------- Llama (HF semantics) with LoRA / DoRA adapters
def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope(x, pos, theta, hs):
    # transformers' LlamaRotaryEmbedding computes inv_freq, the angles and cos/sin in float32 and casts them to the
    # activations' dtype; the golden data does the same (this reproduces its base loss to 4e-16).
    inv = 1.0 / (theta ** (torch.arange(0, hs, 2, dtype=torch.int64).float() / hs))
    ang = pos[..., None].float() * inv                      # [B, T, hs/2]
    emb = torch.cat([ang, ang], -1)
    cos, sin = emb.cos().double()[:, None], emb.sin().double()[:, None]   # [B, 1, T, hs]
    x1, x2 = x[..., : hs // 2], x[..., hs // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def llama_loss(cfg, w, batch, adapters):
    """adapters: module name -> dict(A, B, s, m or None). Returns the mean CE over shifted, non-ignored targets."""
    ids = torch.tensor(batch["input_ids"])
    mask = torch.tensor(batch["attention_mask"])
    labels = torch.tensor(batch["labels"])
    Bsz, T = ids.shape
    C, NH, NKV, HS = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]

    def lin(name, x):
        W = w[name + ".weight"]
        a = adapters.get(name)
        if a is None:
            return x @ W.T
        if a["m"] is None:
            return x @ W.T + a["s"] * ((x @ a["A"].T) @ a["B"].T)
        y, _ = dora_linear(x, W, None, a["A"], a["B"], a["m"], a["s"])
        return y

    emb = w["model.embed_tokens.weight"]
    x = emb[ids]
    pos = torch.arange(T)[None].expand(Bsz, T)
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    visible = causal[None] & (mask[:, None, :] != 0)          # key j visible to query i iff j <= i and mask[j]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}"
        h = rms_norm(x, w[p + ".input_layernorm.weight"], eps)
        q = lin(p + ".self_attn.q_proj", h).reshape(Bsz, T, NH, HS).transpose(1, 2)
        k = lin(p + ".self_attn.k_proj", h).reshape(Bsz, T, NKV, HS).transpose(1, 2)
        v = lin(p + ".self_attn.v_proj", h).reshape(Bsz, T, NKV, HS).transpose(1, 2)
        q, k = rope(q, pos, theta, HS), rope(k, pos, theta, HS)
        k = k.repeat_interleave(NH // NKV, dim=1)
        v = v.repeat_interleave(NH // NKV, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(HS)
        att = att.masked_fill(~visible[:, None], float("-inf")).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(Bsz, T, NH * HS)
        x = x + lin(p + ".self_attn.o_proj", o)
        h = rms_norm(x, w[p + ".post_attention_layernorm.weight"], eps)
        x = x + lin(p + ".mlp.down_proj", torch.nn.functional.silu(lin(p + ".mlp.gate_proj", h)) * lin(p + ".mlp.up_proj", h))
    x = rms_norm(x, w["model.norm.weight"], eps)
    logits = x @ emb.T
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)


MODULES = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def stories_inputs():
    hf = os.path.join(SHARED, "models", "stories260K-hf")
    lora = os.path.join(SHARED, "golden", "stories260K", "lora")
    for path in (hf, lora):
        if not os.path.isdir(path):
            sys.exit(f"missing fixture folder {path} (../shared from the repository root)")
    cfg = json.load(open(os.path.join(hf, "config.json")))
    w = read_safetensors(os.path.join(hf, "model.safetensors"))
    init = read_safetensors(os.path.join(lora, "adapter_model.safetensors"))
    batch = json.load(open(os.path.join(lora, "batch.json")))
    names = [f"model.layers.{l}.{m}" for l in range(cfg["num_hidden_layers"]) for m in MODULES]
    return cfg, w, init, batch, names


def dora_stories():
    cfg, w, init, batch, names = stories_inputs()
    s = 2.0
    lora = {n: {"A": init[f"base_model.model.{n}.lora_A.weight"], "B": init[f"base_model.model.{n}.lora_B.weight"], "s": s, "m": None} for n in names}
    golden = 1.1635450960739868
    loss = llama_loss(cfg, w, batch, lora).item()
    if abs(loss - golden) > 1e-13:
        sys.exit(f"the reference Llama gives {loss!r} for the golden LoRA, not {golden!r}: fix the reference first")
    gen = torch.Generator().manual_seed(180)
    adapters, magnitudes = {}, {}
    for n in names:
        W = w[n + ".weight"]
        a = lora[n]
        m = f32(torch.linalg.norm(W + s * a["B"] @ a["A"], dim=1) * (1 + 0.1 * (torch.rand(W.shape[0], generator=gen) * 2 - 1)))
        magnitudes[n] = m
        adapters[n] = {"A": a["A"].clone().requires_grad_(True), "B": a["B"].clone().requires_grad_(True), "s": s, "m": m.clone().requires_grad_(True)}
    loss = llama_loss(cfg, w, batch, adapters)
    loss.backward()
    tensors = {}
    for n in names:
        a = adapters[n]
        key = f"base_model.model.{n}"
        tensors[key + ".lora_magnitude_vector"] = magnitudes[n]
        tensors[key + ".lora_A.weight.grad"] = a["A"].grad
        tensors[key + ".lora_B.weight.grad"] = a["B"].grad
        tensors[key + ".lora_magnitude_vector.grad"] = a["m"].grad
    return tensors, {"format": "pt", "loss_f64": repr(loss.item()), "lora_loss_f64": repr(golden), "scale": repr(s)}


# ---------------------------------------------------------------- preference losses (DPO sigmoid, IPO, ORPO)
def preference_loss(kind, beta, pc, pr, rc, rr, nc, nr, pair_scale, token_scale):
    """Total loss of a step from SUMMED log p (pc, pr policy; rc, rr reference) and target counts nc, nr."""
    if kind == "sigmoid":
        z = beta * ((pc - rc) - (pr - rr))
        return -(torch.nn.functional.logsigmoid(z)).sum() * pair_scale
    if kind == "ipo":
        h = (pc - rc) / nc - (pr - rr) / nr
        return ((h - 1 / (2 * beta)) ** 2).sum() * pair_scale
    a, b = pc / nc, pr / nr
    log_odds = (a - b) - (torch.log1p(-torch.exp(a)) - torch.log1p(-torch.exp(b)))
    return -pc.sum() * token_scale - beta * torch.nn.functional.logsigmoid(log_odds).sum() * pair_scale


def preference_cases():
    gen = torch.Generator().manual_seed(1818)
    cases = []
    for kind, beta in [("sigmoid", 0.1), ("sigmoid", 2.0), ("ipo", 0.1), ("ipo", 0.5), ("orpo", 0.1), ("orpo", 1.0)]:
        P = 5
        nc = torch.randint(1, 40, (P,), generator=gen).double()
        nr = torch.randint(1, 40, (P,), generator=gen).double()
        # summed log p: about −0.5 … −3 nats per token
        pc = -nc * (0.5 + 2.5 * torch.rand(P, generator=gen))
        pr = -nr * (0.5 + 2.5 * torch.rand(P, generator=gen))
        rc = pc + torch.randn(P, generator=gen)
        rr = pr + torch.randn(P, generator=gen)
        pair_scale, token_scale = 1.0 / 8, 1.0 / float(nc.sum() + 7)
        pcr, prr = pc.clone().requires_grad_(True), pr.clone().requires_grad_(True)
        loss = preference_loss(kind, beta, pcr, prr, rc, rr, nc, nr, pair_scale, token_scale)
        loss.backward()
        cases.append({"kind": kind, "beta": beta, "pair_scale": pair_scale, "token_scale": token_scale,
                      "pc": flat(pc), "pr": flat(pr), "rc": flat(rc), "rr": flat(rr), "nc": [int(v) for v in nc.tolist()], "nr": [int(v) for v in nr.tolist()],
                      "loss": loss.item(), "dpc": flat(pcr.grad), "dpr": flat(prr.grad)})
    return cases


# Two preference pairs of token ids (prompt, chosen, rejected) cut from the golden batch's rows.
PAIRS = [((0, 0, 6), (0, 6, 16), (1, 6, 13)), ((1, 0, 5), (1, 5, 15), (0, 12, 20))]


def dpo_stories(beta=0.1):
    cfg, w, init, batch, names = stories_inputs()
    ids = batch["input_ids"]
    seqs = []   # (ids, labels) of c0, r0, c1, r1
    pairs = []
    for (pr_, ch_, rj_) in PAIRS:
        prompt = ids[pr_[0]][pr_[1]:pr_[2]]
        chosen = ids[ch_[0]][ch_[1]:ch_[2]]
        rejected = ids[rj_[0]][rj_[1]:rj_[2]]
        pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
        for resp in (chosen, rejected):
            seqs.append((prompt + resp, [-100] * len(prompt) + resp))
    def logps(adapters):
        out = []
        for (x, y) in seqs:
            b = {"input_ids": [x], "attention_mask": [[1] * len(x)], "labels": [y]}
            n = sum(1 for v in y[1:] if v != -100)
            out.append(-llama_loss(cfg, w, b, adapters) * n)   # mean CE × count = −log p
        return torch.stack(out)
    with torch.no_grad():
        ref = logps({})
    adapters = {n: {"A": init[f"base_model.model.{n}.lora_A.weight"].clone().requires_grad_(True),
                    "B": init[f"base_model.model.{n}.lora_B.weight"].clone().requires_grad_(True), "s": 2.0, "m": None} for n in names}
    pol = logps(adapters)
    nc = torch.tensor([float(sum(1 for v in seqs[2 * i][1][1:] if v != -100)) for i in range(2)])
    nr = torch.tensor([float(sum(1 for v in seqs[2 * i + 1][1][1:] if v != -100)) for i in range(2)])
    loss = preference_loss("sigmoid", beta, pol[0::2], pol[1::2], ref[0::2], ref[1::2], nc, nr, 0.5, 0.0)
    loss.backward()
    tensors = {}
    for n in names:
        tensors[f"base_model.model.{n}.lora_A.weight.grad"] = adapters[n]["A"].grad
        tensors[f"base_model.model.{n}.lora_B.weight.grad"] = adapters[n]["B"].grad
    meta = {"format": "pt", "loss_f64": repr(loss.item()), "beta": repr(beta), "pairs": json.dumps(pairs),
            "policy_logps": json.dumps(flat(pol)), "reference_logps": json.dumps(flat(ref))}
    return tensors, meta


# ---------------------------------------------------------------- task merging (PEFT utils/merge_utils.py semantics)
def magnitude_prune_t(t, density):
    if density >= 1:
        return t.clone()
    k = int(density * t.numel())
    mask = torch.zeros(t.numel())
    mask[torch.topk(t.abs().reshape(-1), k=k, largest=True).indices] = 1
    return t * mask.reshape(t.shape)


def ties_t(tensors, weights, density, sign_method):
    pruned = torch.stack([magnitude_prune_t(t, density) for t in tensors])
    sign = pruned.sign()
    magnitude = pruned.sum(0) if sign_method == "total" else sign.sum(0)
    mask = sign == torch.where(magnitude >= 0, 1.0, -1.0)
    weighted = pruned * weights.reshape(-1, *([1] * tensors[0].dim()))
    return (weighted * mask).sum(0) / torch.clamp(mask.sum(0), min=1.0)


def task_merge_cases():
    gen = torch.Generator().manual_seed(77)
    cases = []
    for method, density, sign_method in [("ties", 0.5, "total"), ("ties", 0.3, "frequency"), ("ties", 1.0, "total"),
                                         ("magnitude_prune", 0.4, "total"), ("magnitude_prune", 1.0, "total")]:
        tensors = [torch.randn(6, 7, generator=gen) for _ in range(3)]
        weights = torch.tensor([0.7, 1.3, 0.5])
        if method == "ties":
            out = ties_t(tensors, weights, density, sign_method)
        else:
            out = sum(w * magnitude_prune_t(t, density) for t, w in zip(tensors, weights))
        cases.append({"method": method, "density": density, "sign_method": sign_method, "weights": flat(weights),
                      "tensors": [flat(t) for t in tensors], "result": flat(out)})
    return cases


# ---------------------------------------------------------------- PiSSA / OLoRA init (PEFT pissa_init, olora_init)
def pissa_factors(W, r, s):
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    U, S, Vh = U[:, :r].clone(), S[:r] / s, Vh[:r].clone()
    for i in range(r):
        if Vh[i, torch.argmax(Vh[i].abs())] < 0:
            U[:, i], Vh[i] = -U[:, i], -Vh[i]
    root = torch.sqrt(S)
    return f32(root[:, None] * Vh), f32(U * root[None, :])          # A [r, K], B [N, r]


def olora_factors(W, r):
    Q, R = torch.linalg.qr(W)
    Q, R = Q[:, :r].clone(), R[:r].clone()
    for i in range(r):
        if R[i, i] < 0:
            Q[:, i], R[i] = -Q[:, i], -R[i]
    return f32(R), f32(Q)                                            # A = R_r, B = Q_r (no division by s)


def wave(t, fn):
    i = torch.arange(1, t.numel() + 1, dtype=torch.float64).reshape(t.shape)
    return f32(t + 0.01 * fn(i))


def pissa_stories(r=4, alpha=8.0):
    cfg, w, _, batch, names = stories_inputs()
    s = alpha / r
    tensors, metadata = {}, {"format": "pt", "r": str(r), "lora_alpha": repr(alpha)}
    for method in ("pissa", "olora"):
        residual = dict(w)
        trained, converted = {}, {}
        for n in names:
            W = w[n + ".weight"]
            A, B = pissa_factors(W, r, s) if method == "pissa" else olora_factors(W, r)
            res = f32(W - s * B @ A)
            residual[n + ".weight"] = res
            tensors[f"{method}.{n}.lora_A"], tensors[f"{method}.{n}.lora_B"] = A, B
            A1, B1 = wave(A, torch.sin), wave(B, torch.cos)
            trained[n] = {"A": A1, "B": B1, "s": s, "m": None}
            converted[n] = {"A": torch.cat([A1, A], 0), "B": torch.cat([B1, -B], 1), "s": s, "m": None}
        loss = llama_loss(cfg, residual, batch, trained).item()
        conv = llama_loss(cfg, w, batch, converted).item()
        if abs(loss - conv) > 1e-5:
            sys.exit(f"{method}: the converted LoRA on the original base gives {conv!r}, the trained one on the residual {loss!r}")
        metadata[f"loss_{method}_f64"] = repr(loss)
        metadata[f"converted_loss_{method}_f64"] = repr(conv)
    return tensors, metadata


# ---------------------------------------------------------------- Sophia-G (paper Algorithm 3, GNB estimator)
def sophia_cases():
    """Each case: parameters, per step lr and gradients, at every k-th step the sampled-label gradients g_hat and the
    token count B; expected values, momentum and Hessian EMA after every step (float64 throughout)."""
    gen = torch.Generator().manual_seed(1813)
    f32 = lambda t: t.to(torch.float32).to(torch.float64)   # inputs are what the float32 code is given
    cases = []
    for beta1, beta2, gamma, eps, wd, k, tokens in [(0.965, 0.99, 0.04, 1e-15, 0.1, 3, 4096),
                                                    (0.9, 0.95, 0.01, 1e-12, 0.0, 2, 333)]:
        sizes = [37, 64]
        params = [f32(torch.randn(n, generator=gen)) for n in sizes]
        init = [flat(p) for p in params]
        m = [torch.zeros(n) for n in sizes]
        h = [torch.zeros(n) for n in sizes]
        steps = []
        for t in range(1, 8):
            lr = float(torch.tensor(1e-3 * (1.0 - 0.1 * t), dtype=torch.float32))
            # per-element scales spread over two decades, so some ratios clip and some do not
            grads = [f32(torch.randn(n, generator=gen) * 0.1 * 10 ** (torch.rand(n, generator=gen) - 0.5)) for n in sizes]
            for i in range(len(sizes)):
                params[i] = params[i] * (1 - lr * wd)
                m[i] = beta1 * m[i] + (1 - beta1) * grads[i]
                ratio = torch.clamp(m[i] / torch.clamp(gamma * h[i], min=eps), -1.0, 1.0)
                params[i] = params[i] - lr * ratio
            step = {"lr": lr, "grads": [flat(g) for g in grads]}
            if t % k == 0:
                sampled = [f32(torch.randn(n, generator=gen) * 0.02) for n in sizes]
                for i in range(len(sizes)):
                    h[i] = beta2 * h[i] + (1 - beta2) * tokens * sampled[i] * sampled[i]
                step["sampled_grads"] = [flat(g) for g in sampled]
            step["params"] = [flat(p) for p in params]
            step["exp_avg"] = [flat(x) for x in m]
            step["hessian"] = [flat(x) for x in h]
            steps.append(step)
        cases.append({"beta1": beta1, "beta2": beta2, "gamma": gamma, "eps": eps, "weight_decay": wd, "interval": k,
                      "batch_tokens": tokens, "init": init, "steps": steps})
    return cases


def main():
    os.makedirs(OUT, exist_ok=True)
    only = set(sys.argv[1:])   # file names to write (default: all), e.g. sophia_steps.json
    def write(name, obj):
        path = os.path.join(OUT, name)
        with open(path + ".tmp", "w") as f:
            json.dump(obj, f, separators=(",", ":"))
        os.replace(path + ".tmp", path)
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    if only:
        if "sophia_steps.json" in only:
            write("sophia_steps.json", {"torch": torch.__version__, "cases": sophia_cases()})
        return
    write("dora_linear.json", {"torch": torch.__version__, "cases": dora_linear_cases()})
    tensors, metadata = dora_stories()
    write_safetensors(os.path.join(OUT, "dora_stories.safetensors"), tensors, metadata)
    tensors, metadata = pissa_stories()
    write_safetensors(os.path.join(OUT, "pissa_stories.safetensors"), tensors, metadata)
    write("task_merging.json", {"torch": torch.__version__, "cases": task_merge_cases()})
    write("preference_losses.json", {"torch": torch.__version__, "cases": preference_cases()})
    tensors, metadata = dpo_stories()
    write_safetensors(os.path.join(OUT, "dpo_stories.safetensors"), tensors, metadata)
    write("sophia_steps.json", {"torch": torch.__version__, "cases": sophia_cases()})


if __name__ == "__main__":
    main()
