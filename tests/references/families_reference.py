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

The model is written from the published Hugging Face modeling equations (modeling_qwen2.py, modeling_qwen3.py, modular_smollm3.py,
modeling_gemma2.py, modeling_gemma3.py,
modeling_phi3.py),
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
PROJ_PHI3 = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]   # PEFT's target_modules for Phi-3 (fused)

FAMILIES = {
    # qwen2 (already supported) is here for its GGUF q/k row order: llama.cpp's qwen2 is NEOX (rows in HF order).
    "qwen2": dict(
        architectures=["Qwen2ForCausalLM"], model_type="qwen2", vocab_size=512, hidden_size=48,
        intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=256, rms_norm_eps=1e-6, rope_theta=1000000.0, rope_scaling=None,
        tie_word_embeddings=True, hidden_act="silu", use_sliding_window=False, sliding_window=None,
        max_window_layers=2, bos_token_id=1, eos_token_id=2, torch_dtype="float32"),
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
    # Six layers: five sliding (window 4) and one global (sliding_window_pattern 6, as llama.cpp hard-codes it);
    # query_pre_attn_scalar = head_dim, as in Gemma 3 1B/4B (llama.cpp scales by 1/sqrt(head_dim)).
    "gemma3_text": dict(
        architectures=["Gemma3ForCausalLM"], model_type="gemma3_text", vocab_size=512, hidden_size=48,
        intermediate_size=64, num_hidden_layers=6, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        hidden_activation="gelu_pytorch_tanh", max_position_embeddings=256, rms_norm_eps=1e-6, rope_theta=1000000.0,
        rope_local_base_freq=10000.0, rope_scaling={"rope_type": "linear", "factor": 2.0}, attention_bias=False,
        query_pre_attn_scalar=16, sliding_window=4, sliding_window_pattern=6, final_logit_softcapping=None,
        attn_logit_softcapping=None, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        torch_dtype="float32"),
    # Four layers alternating sliding (window 4; even layers, as Gemma2Config's default and llama.cpp's
    # set_swa_pattern(2)) and global; query_pre_attn_scalar = head_dim as in Gemma 2 2B/9B (llama.cpp's scale there).
    # The soft-caps are small enough to bite on these tiny random weights (attention scores reach ±4, logits ±12):
    # a kernel that ignored either cap would miss the golden by far more than the tolerance.
    "gemma2": dict(
        architectures=["Gemma2ForCausalLM"], model_type="gemma2", vocab_size=512, hidden_size=48,
        intermediate_size=64, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh", max_position_embeddings=256,
        rms_norm_eps=1e-6, rope_theta=10000.0, attention_bias=False, attention_dropout=0.0, query_pre_attn_scalar=16,
        sliding_window=4, attn_logit_softcapping=2.0, final_logit_softcapping=6.0, cache_implementation="hybrid",
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0, torch_dtype="float32"),
    # Phi-3.5-mini style: fused qkv_proj / gate_up_proj, plain RoPE, untied head.
    "phi3": dict(
        architectures=["Phi3ForCausalLM"], model_type="phi3", vocab_size=512, hidden_size=48,
        intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=256, original_max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=10000.0,
        rope_scaling=None, partial_rotary_factor=1.0, sliding_window=None, tie_word_embeddings=False,
        hidden_act="silu", attention_bias=False, attention_dropout=0.0, embd_pdrop=0.0, resid_pdrop=0.0,
        bos_token_id=1, eos_token_id=2, pad_token_id=None, torch_dtype="float32"),
    # Phi-4-mini style: partial rotary (0.75 of head_dim 16 = 12 dims rotate), LongRoPE with short/long factors,
    # tied embeddings. original_max_position_embeddings 8 < T = 16, so golden "logits" use the long factors (HF:
    # seq_len > original) and "logits_short" (T = 8) the short ones; attention factor sqrt(1 + ln(32) / ln(8)).
    "phi3_longrope": dict(
        architectures=["Phi3ForCausalLM"], model_type="phi3", vocab_size=512, hidden_size=48,
        intermediate_size=80, num_hidden_layers=2, num_attention_heads=3, num_key_value_heads=1,
        max_position_embeddings=256, original_max_position_embeddings=8, rms_norm_eps=1e-5, rope_theta=10000.0,
        rope_scaling={"type": "longrope",
                      "short_factor": [1.0, 1.05, 1.1, 1.25, 1.5, 2.0],
                      "long_factor": [1.0, 1.5, 2.5, 4.0, 9.0, 20.0]},
        partial_rotary_factor=0.75, sliding_window=None, tie_word_embeddings=True,
        hidden_act="silu", attention_bias=False, attention_dropout=0.0, embd_pdrop=0.0, resid_pdrop=0.0,
        bos_token_id=1, eos_token_id=2, pad_token_id=None, torch_dtype="float32"),
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

    gemma = c["model_type"] in ("gemma3_text", "gemma2")

    def norm(name, n):   # gemma stores w and multiplies by (1 + w)
        w[name] = (0.0 if gemma else 1.0) + 0.2 * torch.randn(n, generator=gen)

    w["model.embed_tokens.weight"] = 0.4 * torch.randn(V, C, generator=gen)
    if c["model_type"] == "phi3":   # Phi3Attention.qkv_proj [(NH + 2 NKV) HS, C]; Phi3MLP.gate_up_proj [2 H, C]
        for l in range(c["num_hidden_layers"]):
            p = f"model.layers.{l}"
            norm(f"{p}.input_layernorm.weight", C)
            lin(f"{p}.self_attn.qkv_proj.weight", (NH + 2 * NKV) * HS, C)
            lin(f"{p}.self_attn.o_proj.weight", C, NH * HS)
            norm(f"{p}.post_attention_layernorm.weight", C)
            lin(f"{p}.mlp.gate_up_proj.weight", 2 * H, C)
            lin(f"{p}.mlp.down_proj.weight", C, H)
        norm("model.norm.weight", C)
        if not c["tie_word_embeddings"]:
            lin("lm_head.weight", V, C)
        else:   # tied: a smaller embedding keeps logits near +-5, where float32 rounding stays well under the 1e-5 check
            w["model.embed_tokens.weight"] *= 0.5
        return {k: v.float().double() for k, v in w.items()}
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}"
        norm(f"{p}.input_layernorm.weight", C)
        lin(f"{p}.self_attn.q_proj.weight", NH * HS, C)
        lin(f"{p}.self_attn.k_proj.weight", NKV * HS, C)
        lin(f"{p}.self_attn.v_proj.weight", NKV * HS, C)
        lin(f"{p}.self_attn.o_proj.weight", C, NH * HS)
        if c["model_type"] == "qwen2":   # Qwen2Attention: q/k/v biases, no o bias
            w[f"{p}.self_attn.q_proj.bias"] = 0.5 * torch.randn(NH * HS, generator=gen)
            w[f"{p}.self_attn.k_proj.bias"] = 0.5 * torch.randn(NKV * HS, generator=gen)
            w[f"{p}.self_attn.v_proj.bias"] = 0.5 * torch.randn(NKV * HS, generator=gen)
        if c["model_type"] in ("qwen3", "gemma3_text"):
            norm(f"{p}.self_attn.q_norm.weight", HS)
            norm(f"{p}.self_attn.k_norm.weight", HS)
        norm(f"{p}.post_attention_layernorm.weight", C)
        if gemma:
            norm(f"{p}.pre_feedforward_layernorm.weight", C)
            norm(f"{p}.post_feedforward_layernorm.weight", C)
        lin(f"{p}.mlp.gate_proj.weight", H, C)
        lin(f"{p}.mlp.up_proj.weight", H, C)
        lin(f"{p}.mlp.down_proj.weight", C, H)
    norm("model.norm.weight", C)
    if not c["tie_word_embeddings"]:
        lin("lm_head.weight", V, C)
    # Stored as F32: the reference runs on exactly the stored values.
    return {k: v.float().double() for k, v in w.items()}


def rms_norm(x, w, eps, gemma=False):
    if gemma:   # Gemma3RMSNorm / Gemma2RMSNorm: output * (1.0 + weight.float()), the sum in float32
        w = (1.0 + w.float()).double()
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def rope_cos_sin(c, T, theta=None, factor=1.0):
    HS = head_dim(c)
    theta = theta or c["rope_theta"]
    inv = 1.0 / (theta ** (torch.arange(0, HS, 2, dtype=torch.int64).float() / HS))   # float32
    inv = inv / factor                                                                 # linear scaling, float32
    pos = torch.arange(T, dtype=torch.int64).float()
    freqs = torch.outer(pos, inv.float())                                                      # float32
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().double(), emb.sin().double()


def phi3_cos_sin(c, T):
    """Phi3RotaryEmbedding (modeling_rope_utils _compute_default / _compute_longrope_parameters), float32 as transformers:
    dim = int(head_dim * partial_rotary_factor); longrope: inv_freq = 1 / (ext_factors * base ** (arange(0, dim, 2) / dim)),
    ext_factors = long_factor when seq_len > original_max_position_embeddings else short_factor;
    cos/sin *= attention_factor = sqrt(1 + ln(max_pos / orig) / ln(orig)) (1 when max_pos / orig <= 1)."""
    dim = int(head_dim(c) * c.get("partial_rotary_factor", 1.0))
    shape = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim                                      # float32
    rs = c.get("rope_scaling") or {}
    scale = 1.0
    if rs.get("type", rs.get("rope_type")) in ("longrope", "su"):
        orig = c["original_max_position_embeddings"]
        factor = c["max_position_embeddings"] / orig
        scale = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(orig))
        ext = torch.tensor(rs["long_factor"] if T > orig else rs["short_factor"], dtype=torch.float32)
        inv = 1.0 / (ext * c["rope_theta"] ** shape)
    else:
        inv = 1.0 / (c["rope_theta"] ** shape)
    pos = torch.arange(T, dtype=torch.int64).float()
    freqs = torch.outer(pos, inv.float())
    emb = torch.cat([freqs, freqs], dim=-1)
    return (emb.cos() * scale).double(), (emb.sin() * scale).double()


def phi3_forward(c, w, ids, lora=None):
    """modeling_phi3.py: fused qkv split as [q | k | v], partial rotary on the first rotary_dim dims of each head,
    gate_up chunked as [gate | up], silu(gate) * up."""
    C, NH, NKV, HS = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], head_dim(c)
    H, eps = c["intermediate_size"], c["rms_norm_eps"]
    Bn, Tn = ids.shape
    x = w["model.embed_tokens.weight"][ids]
    cos, sin = phi3_cos_sin(c, Tn)
    rd = cos.shape[-1]
    mask = torch.full((Tn, Tn), float("-inf")).triu(1)
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}"
        h = rms_norm(x, w[f"{p}.input_layernorm.weight"], eps)
        qkv = linear(h, w, f"{p}.self_attn.qkv_proj", lora)
        q = qkv[..., :NH * HS].view(Bn, Tn, NH, HS).transpose(1, 2)
        k = qkv[..., NH * HS:(NH + NKV) * HS].view(Bn, Tn, NKV, HS).transpose(1, 2)
        v = qkv[..., (NH + NKV) * HS:].view(Bn, Tn, NKV, HS).transpose(1, 2)
        q = torch.cat([q[..., :rd] * cos + rotate_half(q[..., :rd]) * sin, q[..., rd:]], dim=-1)
        k = torch.cat([k[..., :rd] * cos + rotate_half(k[..., :rd]) * sin, k[..., rd:]], dim=-1)
        k = k.repeat_interleave(NH // NKV, dim=1)
        v = v.repeat_interleave(NH // NKV, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(HS) + mask
        att = (torch.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(Bn, Tn, NH * HS)
        x = x + linear(att, w, f"{p}.self_attn.o_proj", lora)
        h = rms_norm(x, w[f"{p}.post_attention_layernorm.weight"], eps)
        gu = linear(h, w, f"{p}.mlp.gate_up_proj", lora)
        g, u = gu[..., :H], gu[..., H:]
        x = x + linear(torch.nn.functional.silu(g) * u, w, f"{p}.mlp.down_proj", lora)
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if c["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def linear(x, w, name, lora):
    y = x @ w[name + ".weight"].T
    if name + ".bias" in w:
        y = y + w[name + ".bias"]
    if lora is not None and name in lora:
        a, b = lora[name]
        y = y + (ALPHA / RANK) * ((x @ a.T) @ b.T)
    return y


def forward(c, w, ids, lora=None):
    if c["model_type"] == "phi3":
        return phi3_forward(c, w, ids, lora)
    C, NH, NKV, HS = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], head_dim(c)
    eps = c["rms_norm_eps"]
    gemma = c["model_type"] in ("gemma3_text", "gemma2")
    gemma2 = c["model_type"] == "gemma2"
    Bn, Tn = ids.shape
    x = w["model.embed_tokens.weight"][ids]
    scaling = 1.0 / math.sqrt(HS)
    if gemma:
        # Gemma3TextScaledWordEmbedding: embed_scale = hidden_size ** 0.5 as a float32 tensor; Gemma2Model: the
        # normalizer hidden_size ** 0.5 in the hidden states' dtype (float32 for a float32 checkpoint)
        x = x * torch.tensor(C ** 0.5, dtype=torch.float32).double()
        scaling = c["query_pre_attn_scalar"] ** -0.5
    rs = c.get("rope_scaling") or {}
    cos, sin = rope_cos_sin(c, Tn, factor=rs.get("factor", 1.0) if rs.get("rope_type") == "linear" else 1.0)
    if gemma and not gemma2:   # gemma3's sliding layers: rope_local_base_freq, no scaling
        cos_l, sin_l = rope_cos_sin(c, Tn, theta=c["rope_local_base_freq"])
    mask = torch.full((Tn, Tn), float("-inf")).triu(1)
    i_idx, j_idx = torch.arange(Tn)[:, None], torch.arange(Tn)[None, :]
    no_rope = c.get("no_rope_layers")
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}"
        # Gemma2Config's default layer_types: "sliding_attention" if (i + 1) % 2 else "full_attention"
        sliding = gemma and (l + 1) % (2 if gemma2 else c["sliding_window_pattern"]) != 0
        h = rms_norm(x, w[f"{p}.input_layernorm.weight"], eps, gemma)
        q = linear(h, w, f"{p}.self_attn.q_proj", lora).view(Bn, Tn, NH, HS)
        k = linear(h, w, f"{p}.self_attn.k_proj", lora).view(Bn, Tn, NKV, HS)
        v = linear(h, w, f"{p}.self_attn.v_proj", lora).view(Bn, Tn, NKV, HS)
        if c["model_type"] in ("qwen3", "gemma3_text"):   # q_norm / k_norm over head_dim, before RoPE
            q = rms_norm(q, w[f"{p}.self_attn.q_norm.weight"], eps, gemma)
            k = rms_norm(k, w[f"{p}.self_attn.k_norm.weight"], eps, gemma)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if no_rope is None or no_rope[l]:   # SmolLM3Attention: use_rope = no_rope_layers[layer_idx]
            cs, sn = (cos_l, sin_l) if sliding and not gemma2 else (cos, sin)
            q = q * cs + rotate_half(q) * sn
            k = k * cs + rotate_half(k) * sn
        k = k.repeat_interleave(NH // NKV, dim=1)
        v = v.repeat_interleave(NH // NKV, dim=1)
        m = mask
        if sliding:   # key j visible from query i iff i - j < sliding_window
            m = mask.masked_fill(i_idx - j_idx >= c["sliding_window"], float("-inf"))
        att = (q @ k.transpose(-1, -2)) * scaling
        if c.get("attn_logit_softcapping"):   # Gemma2Attention: softcap before the mask
            cap = c["attn_logit_softcapping"]
            att = torch.tanh(att / cap) * cap
        att = att + m
        att = torch.softmax(att, dim=-1) @ v
        att = att.transpose(1, 2).reshape(Bn, Tn, NH * HS)
        o = linear(att, w, f"{p}.self_attn.o_proj", lora)
        if gemma:
            x = x + rms_norm(o, w[f"{p}.post_attention_layernorm.weight"], eps, True)
            h = rms_norm(x, w[f"{p}.pre_feedforward_layernorm.weight"], eps, True)
        else:
            x = x + o
            h = rms_norm(x, w[f"{p}.post_attention_layernorm.weight"], eps)
        g = linear(h, w, f"{p}.mlp.gate_proj", lora)
        u = linear(h, w, f"{p}.mlp.up_proj", lora)
        act = gelu_tanh(g) if gemma else torch.nn.functional.silu(g)
        d = linear(act * u, w, f"{p}.mlp.down_proj", lora)
        x = x + (rms_norm(d, w[f"{p}.post_feedforward_layernorm.weight"], eps, True) if gemma else d)
    x = rms_norm(x, w["model.norm.weight"], eps, gemma)
    head = w["model.embed_tokens.weight"] if c["tie_word_embeddings"] else w["lm_head.weight"]
    logits = x @ head.T
    if c.get("final_logit_softcapping"):   # Gemma2ForCausalLM: logits / cap, tanh, * cap
        cap = c["final_logit_softcapping"]
        logits = torch.tanh(logits / cap) * cap
    return logits


def loss_of(logits, ids):
    V = logits.shape[-1]
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))


def module_names(c):
    out = []
    for l in range(c["num_hidden_layers"]):
        for m in (PROJ_PHI3 if c["model_type"] == "phi3" else PROJ):
            out.append(f"model.layers.{l}." + ("self_attn." if m in ("q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj") else "mlp.") + m)
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
    seed = {"qwen2": 2, "qwen3": 3, "smollm3": 33, "gemma3_text": 333, "gemma2": 222, "phi3": 4, "phi3_longrope": 44}[family]
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
    if c["model_type"] == "phi3":   # a shorter batch too: within original_max_position_embeddings (short factors)
        ids_short = torch.randint(3, c["vocab_size"], (B, 8), generator=gen)
        golden["input_ids_short"] = ids_short
        golden["logits_short"] = forward(c, w, ids_short).detach()
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
                   "bias": "none", "target_modules": PROJ_PHI3 if c["model_type"] == "phi3" else PROJ, "base_model_name_or_path": None}, f, indent=2)
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
