#!/usr/bin/env python3
"""Tiny random checkpoints and float64 golden data for the model families LoraSharp runs beyond Llama.

Run with Debian's python3-torch (no transformers, no safetensors package needed):
    /usr/bin/python3 tests/references/families_reference.py [--out tests/references/families]

For each family it writes <out>/<family>/:
    config.json            a Hugging Face config.json of a tiny model (vocab 512 = stories260K's tokenizer)
    model.safetensors      its random F32 weights, Hugging Face names (seeded: regenerating gives the same bytes)
    golden.safetensors     input_ids I64 [2, T]; logits F32 [2, T, V] of the base model; lora_logits F32;
                           every LoRA factor's gradient of the mean loss (PEFT names, F32); loss / lora_loss in metadata
    adapter_model.safetensors + adapter_config.json   the PEFT adapter (r 4, alpha 8, all seven projections, B != 0)

The model is written from the published Hugging Face modeling equations (modeling_qwen3.py, modular_smollm3.py),
in float64 throughout (softmax too), not by importing transformers. RoPE's cos/sin are computed in float32 as
transformers does (inv_freq and position products in float32), then widened.
"""
import argparse
import json
import math
import os
import struct

import torch

torch.set_default_dtype(torch.float64)

T = 16
B = 2
RANK, ALPHA = 4, 8
PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

FAMILIES = {
    "qwen3": dict(
        architectures=["Qwen3ForCausalLM"], model_type="qwen3", vocab_size=512, hidden_size=48,
        intermediate_size=64, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
        head_dim=20, max_position_embeddings=256, rms_norm_eps=1e-6, rope_theta=10000.0, rope_scaling=None,
        tie_word_embeddings=False, attention_bias=False, hidden_act="silu", use_sliding_window=False,
        sliding_window=None, max_window_layers=3, bos_token_id=1, eos_token_id=2, torch_dtype="float32"),
    "smollm3": dict(
        architectures=["SmolLM3ForCausalLM"], model_type="smollm3", vocab_size=512, hidden_size=48,
        intermediate_size=64, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=256, rms_norm_eps=1e-6, rope_theta=50000.0, rope_scaling=None,
        tie_word_embeddings=True, attention_bias=False, mlp_bias=False, hidden_act="silu",
        use_sliding_window=False, sliding_window=None, no_rope_layer_interval=4,
        no_rope_layers=[1, 1, 1, 0], bos_token_id=1, eos_token_id=2, pad_token_id=None, torch_dtype="float32"),
}


def head_dim(c):
    return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]


def make_weights(c, gen):
    """Random weights with enough spread that greedy decoding has clear winners (so llama.cpp must agree)."""
    C, H, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    HS, NH, NKV = head_dim(c), c["num_attention_heads"], c["num_key_value_heads"]
    w = {}

    def lin(name, out, inp):
        w[name] = torch.randn(out, inp, generator=gen) / math.sqrt(inp)

    def norm(name, n):
        w[name] = 1.0 + 0.2 * torch.randn(n, generator=gen)

    w["model.embed_tokens.weight"] = 0.4 * torch.randn(V, C, generator=gen)
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}"
        norm(f"{p}.input_layernorm.weight", C)
        lin(f"{p}.self_attn.q_proj.weight", NH * HS, C)
        lin(f"{p}.self_attn.k_proj.weight", NKV * HS, C)
        lin(f"{p}.self_attn.v_proj.weight", NKV * HS, C)
        lin(f"{p}.self_attn.o_proj.weight", C, NH * HS)
        if c["model_type"] == "qwen3":
            norm(f"{p}.self_attn.q_norm.weight", HS)
            norm(f"{p}.self_attn.k_norm.weight", HS)
        norm(f"{p}.post_attention_layernorm.weight", C)
        lin(f"{p}.mlp.gate_proj.weight", H, C)
        lin(f"{p}.mlp.up_proj.weight", H, C)
        lin(f"{p}.mlp.down_proj.weight", C, H)
    norm("model.norm.weight", C)
    if not c["tie_word_embeddings"]:
        lin("lm_head.weight", V, C)
    # Stored as F32: the reference runs on exactly the stored values.
    return {k: v.float().double() for k, v in w.items()}


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope_cos_sin(c, T):
    HS = head_dim(c)
    inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, HS, 2, dtype=torch.int64).float() / HS))   # float32
    pos = torch.arange(T, dtype=torch.int64).float()
    freqs = torch.outer(pos, inv.float())                                                      # float32
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().double(), emb.sin().double()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def linear(x, w, name, lora):
    y = x @ w[name + ".weight"].T
    if lora is not None and name in lora:
        a, b = lora[name]
        y = y + (ALPHA / RANK) * ((x @ a.T) @ b.T)
    return y


def forward(c, w, ids, lora=None):
    C, NH, NKV, HS = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], head_dim(c)
    eps = c["rms_norm_eps"]
    Bn, Tn = ids.shape
    x = w["model.embed_tokens.weight"][ids]
    cos, sin = rope_cos_sin(c, Tn)
    mask = torch.full((Tn, Tn), float("-inf")).triu(1)
    no_rope = c.get("no_rope_layers")
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}"
        h = rms_norm(x, w[f"{p}.input_layernorm.weight"], eps)
        q = linear(h, w, f"{p}.self_attn.q_proj", lora).view(Bn, Tn, NH, HS)
        k = linear(h, w, f"{p}.self_attn.k_proj", lora).view(Bn, Tn, NKV, HS)
        v = linear(h, w, f"{p}.self_attn.v_proj", lora).view(Bn, Tn, NKV, HS)
        if c["model_type"] == "qwen3":      # Qwen3Attention: q_norm / k_norm over head_dim, before RoPE
            q = rms_norm(q, w[f"{p}.self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[f"{p}.self_attn.k_norm.weight"], eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if no_rope is None or no_rope[l]:   # SmolLM3Attention: use_rope = no_rope_layers[layer_idx]
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(NH // NKV, dim=1)
        v = v.repeat_interleave(NH // NKV, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(HS) + mask
        att = torch.softmax(att, dim=-1) @ v
        att = att.transpose(1, 2).reshape(Bn, Tn, NH * HS)
        x = x + linear(att, w, f"{p}.self_attn.o_proj", lora)
        h = rms_norm(x, w[f"{p}.post_attention_layernorm.weight"], eps)
        g = linear(h, w, f"{p}.mlp.gate_proj", lora)
        u = linear(h, w, f"{p}.mlp.up_proj", lora)
        x = x + linear(torch.nn.functional.silu(g) * u, w, f"{p}.mlp.down_proj", lora)
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if c["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def loss_of(logits, ids):
    V = logits.shape[-1]
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))


def module_names(c):
    out = []
    for l in range(c["num_hidden_layers"]):
        for m in PROJ:
            out.append(f"model.layers.{l}." + ("self_attn." if m in PROJ[:4] else "mlp.") + m)
    return out


def write_safetensors(path, tensors, metadata=None):
    """safetensors: u64 header length, JSON header (names sorted, offsets contiguous), raw little-endian data."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype == torch.int64:
            dt, data = "I64", t.contiguous().numpy().astype("<i8").tobytes()
        else:
            dt, data = "F32", t.float().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    header["__metadata__"] = dict({"format": "pt"}, **(metadata or {}))
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def build(family, out):
    c = FAMILIES[family]
    seed = {"qwen3": 3, "smollm3": 33}[family]
    gen = torch.Generator().manual_seed(seed)
    w = make_weights(c, gen)
    d = os.path.join(out, family)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(d, "model.safetensors"), w)

    ids = torch.randint(3, c["vocab_size"], (B, T), generator=gen)
    logits = forward(c, w, ids)
    loss = loss_of(logits, ids)

    lora = {}
    for m in module_names(c):
        W = w[m + ".weight"]
        a = (torch.randn(RANK, W.shape[1], generator=gen) / math.sqrt(W.shape[1])).float().double()
        b = (0.1 * torch.randn(W.shape[0], RANK, generator=gen)).float().double()
        lora[m] = (a.requires_grad_(), b.requires_grad_())
    lora_logits = forward(c, w, ids, lora)
    lora_loss = loss_of(lora_logits, ids)
    lora_loss.backward()

    golden = {"input_ids": ids, "logits": logits.detach(), "lora_logits": lora_logits.detach()}
    adapter = {}
    for m, (a, b) in lora.items():
        golden[f"base_model.model.{m}.lora_A.weight"] = a.grad
        golden[f"base_model.model.{m}.lora_B.weight"] = b.grad
        adapter[f"base_model.model.{m}.lora_A.weight"] = a.detach()
        adapter[f"base_model.model.{m}.lora_B.weight"] = b.detach()
    write_safetensors(os.path.join(d, "golden.safetensors"), golden,
                      {"loss": repr(loss.item()), "lora_loss": repr(lora_loss.item())})
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), adapter)
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": RANK, "lora_alpha": ALPHA, "lora_dropout": 0.0,
                   "bias": "none", "target_modules": PROJ, "base_model_name_or_path": None}, f, indent=2)
        f.write("\n")
    print(f"{family}: loss {loss.item():.6f}, lora loss {lora_loss.item():.6f}, "
          f"logits range [{logits.min().item():.2f}, {logits.max().item():.2f}]")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "families"))
    ap.add_argument("families", nargs="*", default=list(FAMILIES))
    args = ap.parse_args()
    for fam in args.families:
        build(fam, args.out)


if __name__ == "__main__":
    main()
