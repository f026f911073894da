#!/usr/bin/env python3
"""Independent float64 numpy reference of the BTLM (and GPT-2 family) forward pass.

Follows /work/shared/spec/BTLM.md section 4 literally, computing everything in float64:

    x_i = (wte[t_i] (+ wpe[P+i] if learned)) * s_emb
    per layer: LN1 -> c_attn -> ALiBi attention (real incremental KV cache) -> c_proj -> residual
               LN2 -> swiglu (c_fc * silu(c_fc2)) or gelu_new(c_fc) -> c_proj -> residual
    logits = (LN_f(x) . head^T) * s_out

The weights are read without torch or the safetensors package (own safetensors parser: 8-byte LE
header length, JSON header, raw little-endian data; BF16 -> float64 via uint16<<16 viewed as
float32). PyTorch `.bin` checkpoints (single or sharded) are read with `torch.load` when torch is
installed (only used for loading).

Greedy generation follows HF's KV-cache semantics: the first call processes the whole prompt (the
ALiBi scaling c uses K = prompt length for every query of that call), then each new token is one
call of length 1 with its own K = P + 1; cached K/V rows are the ones computed in earlier calls.

Usage:
    python3 tools/btlm_reference.py --check DIR [DIR ...]   # recompute DIR/expected.json, print diffs
    python3 tools/btlm_reference.py DIR --ids 1,2,3          # print log-probs and greedy tokens
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

GREEDY_NEW_TOKENS = 24

# ----------------------------------------------------------------------------------------------
# weight loading


def _st_to_f64(dtype, raw, shape):
    if dtype == "BF16":
        u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        a = u.view(np.float32).astype(np.float64)
    elif dtype == "F16":
        a = np.frombuffer(raw, dtype="<f2").astype(np.float64)
    elif dtype == "F32":
        a = np.frombuffer(raw, dtype="<f4").astype(np.float64)
    elif dtype == "F64":
        a = np.frombuffer(raw, dtype="<f8").astype(np.float64)
    else:
        raise ValueError("unsupported safetensors dtype " + dtype)
    n = int(np.prod(shape)) if len(shape) else 1
    if a.size != n:
        raise ValueError("size mismatch %d vs shape %s" % (a.size, shape))
    return a.reshape(shape)


def read_safetensors(path):
    """Returns ({name: float64 ndarray}, {name: dtype string})."""
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out, dtypes = {}, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = _st_to_f64(info["dtype"], blob[base + b:base + e], info["shape"])
        dtypes[name] = info["dtype"]
    return out, dtypes


def read_torch_bin(path):
    import torch  # only for loading the pickle/zip format
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:
        sd = torch.load(path, map_location="cpu")
    out, dtypes = {}, {}
    for name, t in sd.items():
        out[name] = t.detach().to(torch.float64).numpy().copy()
        dtypes[name] = str(t.dtype).replace("torch.", "")
    return out, dtypes


def load_weights(model_dir):
    """All tensors of a checkpoint directory as float64 arrays, plus their stored dtypes."""
    def one(path):
        return read_safetensors(path) if path.endswith(".safetensors") else read_torch_bin(path)

    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        ip = os.path.join(model_dir, index_name)
        if os.path.exists(ip):
            with open(ip) as f:
                wm = json.load(f)["weight_map"]
            weights, dtypes = {}, {}
            for fname in sorted(set(wm.values())):
                w, d = one(os.path.join(model_dir, fname))
                for k in w:
                    if wm.get(k) != fname:
                        raise ValueError("%s found in %s but index says %s" % (k, fname, wm.get(k)))
                weights.update(w)
                dtypes.update(d)
            missing = set(wm) - set(weights)
            if missing:
                raise ValueError("tensors in index but not in shards: %s" % sorted(missing))
            return weights, dtypes
    for single in ("model.safetensors", "pytorch_model.bin"):
        p = os.path.join(model_dir, single)
        if os.path.exists(p):
            return one(p)
    raise FileNotFoundError("no checkpoint in " + model_dir)


# ----------------------------------------------------------------------------------------------
# config


def alibi_slopes_formula(n):
    def pow2(k):
        return [2.0 ** (-8.0 * (h + 1) / k) for h in range(k)]
    if n & (n - 1) == 0:
        return pow2(n)
    p = 1 << (n.bit_length() - 1)
    return pow2(p) + pow2(2 * p)[0::2][: n - p]


class Config:
    def __init__(self, d):
        self.raw = d
        self.vocab_size = d.get("vocab_size", 50257)
        self.n_embd = d.get("n_embd", 768)
        self.n_layer = d.get("n_layer", 12)
        self.n_head = d.get("n_head", 12)
        n_inner = d.get("n_inner")
        self.n_inner = 4 * self.n_embd if n_inner is None else n_inner
        self.n_positions = d.get("n_positions", 1024)
        self.act = d.get("activation_function", "gelu_new")
        self.pos_type = d.get("position_embedding_type", "learned")
        self.eps = d.get("layer_norm_epsilon", 1e-5)
        self.scale_attn_weights = d.get("scale_attn_weights", True)
        self.inv_layer_idx = d.get("scale_attn_by_inverse_layer_idx", False)
        self.tie = d.get("tie_word_embeddings", True)
        # muP constants (current keys, else the older names; spec section 2)
        if "mup_embeddings_scale" in d:
            self.s_emb = float(d["mup_embeddings_scale"])
        else:
            self.s_emb = float(d.get("embeddings_scale", 1.0))
        if "mup_output_alpha" in d or "mup_width_scale" in d:
            self.s_out = float(d.get("mup_output_alpha", 1.0)) * float(d.get("mup_width_scale", 1.0))
        else:
            self.s_out = float(d.get("output_logits_scale", 1.0))
        if "mup_scale_qk_dot_by_d" in d:
            by_d = bool(d["mup_scale_qk_dot_by_d"])
        else:
            by_d = bool(d.get("scale_qk_dot_by_d", False))
        self.qk_power = 1.0 if by_d else 0.5
        sc = d.get("alibi_scaling")
        self.alibi_factor = None
        self.alibi_train_len = None
        if sc is not None:
            if not isinstance(sc, dict) or len(sc) != 2 or sc.get("type") != "linear":
                raise ValueError("bad alibi_scaling %r" % (sc,))
            if "factor" in sc:
                self.alibi_factor = float(sc["factor"])
                if not self.alibi_factor > 1:
                    raise ValueError("alibi factor must be > 1")
            elif "train_seq_len" in sc:
                self.alibi_train_len = int(sc["train_seq_len"])
                if not self.alibi_train_len > 1:
                    raise ValueError("train_seq_len must be > 1")
            else:
                raise ValueError("bad alibi_scaling %r" % (sc,))
        if self.n_embd % self.n_head:
            raise ValueError("n_embd not divisible by n_head")
        self.head_dim = self.n_embd // self.n_head

    def alibi_c(self, key_len):
        if self.alibi_factor is not None:
            return self.alibi_factor
        if self.alibi_train_len is not None and key_len > self.alibi_train_len:
            return key_len / self.alibi_train_len
        return 1.0


# ----------------------------------------------------------------------------------------------
# model


def layer_norm(x, w, b, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1.0 + np.exp(-x))


class KVCache:
    def __init__(self, n_layer):
        self.k = [None] * n_layer   # [H, P, d]
        self.v = [None] * n_layer
        self.length = 0


class BTLMReference:
    def __init__(self, cfg, weights):
        self.cfg = cfg
        self.w = weights
        c = cfg
        self.wte = weights["transformer.wte.weight"]
        assert self.wte.shape == (c.vocab_size, c.n_embd), self.wte.shape
        if c.tie:
            self.head = self.wte       # the head IS wte, stored lm_head.weight or not
        else:
            self.head = weights["lm_head.weight"]
            assert self.head.shape == (c.vocab_size, c.n_embd)
        self.wpe = None
        if c.pos_type == "learned":
            self.wpe = weights["transformer.wpe.weight"]
            assert self.wpe.shape == (c.n_positions, c.n_embd)
            self.slopes = None
        elif c.pos_type == "alibi":
            if "transformer.relative_pe.slopes" in weights:
                self.slopes = weights["transformer.relative_pe.slopes"].reshape(-1).astype(np.float64)
                self.slopes_source = "stored"
            else:
                self.slopes = np.array(alibi_slopes_formula(c.n_head), dtype=np.float64)
                self.slopes_source = "formula"
            assert self.slopes.shape == (c.n_head,)
        else:
            raise ValueError("position_embedding_type " + c.pos_type)

    def new_cache(self):
        return KVCache(self.cfg.n_layer)

    def forward(self, ids, cache=None):
        """One forward call over `ids` (after `cache.length` cached positions). Returns logits [T, V]."""
        c = self.cfg
        w = self.w
        if cache is None:
            cache = self.new_cache()
        P = cache.length
        T = len(ids)
        K = P + T
        if K > c.n_positions:
            raise ValueError("sequence longer than n_positions")
        ids = np.asarray(ids, dtype=np.int64)
        x = self.wte[ids].copy()
        if self.wpe is not None:
            x = x + self.wpe[P:P + T]
        x = x * c.s_emb
        H, d = c.n_head, c.head_dim
        qpos = np.arange(P, P + T)[:, None]
        kpos = np.arange(0, K)[None, :]
        mask = kpos > qpos                                   # [T, K]
        if self.slopes is not None:
            scale = c.alibi_c(K)
            alibi = -(self.slopes[:, None, None] / scale) * np.abs(qpos - kpos)[None, :, :]
        else:
            alibi = 0.0
        for L in range(c.n_layer):
            pre = "transformer.h.%d." % L
            a = layer_norm(x, w[pre + "ln_1.weight"], w[pre + "ln_1.bias"], c.eps)
            qkv = a @ w[pre + "attn.c_attn.weight"] + w[pre + "attn.c_attn.bias"]
            q = qkv[:, 0:c.n_embd].reshape(T, H, d).transpose(1, 0, 2)            # [H, T, d]
            k = qkv[:, c.n_embd:2 * c.n_embd].reshape(T, H, d).transpose(1, 0, 2)
            v = qkv[:, 2 * c.n_embd:3 * c.n_embd].reshape(T, H, d).transpose(1, 0, 2)
            if P > 0:
                k = np.concatenate([cache.k[L], k], axis=1)
                v = np.concatenate([cache.v[L], v], axis=1)
            cache.k[L], cache.v[L] = k, v
            s = np.einsum("htd,hkd->htk", q, k)
            if c.scale_attn_weights:
                s = s / (float(d) ** c.qk_power)
            if c.inv_layer_idx:
                s = s / float(L + 1)
            s = s + alibi
            s = np.where(mask[None, :, :], -np.inf, s)
            s = s - s.max(axis=-1, keepdims=True)
            e = np.exp(s)
            p = e / e.sum(axis=-1, keepdims=True)
            o = np.einsum("htk,hkd->htd", p, v).transpose(1, 0, 2).reshape(T, c.n_embd)
            x = x + (o @ w[pre + "attn.c_proj.weight"] + w[pre + "attn.c_proj.bias"])
            b = layer_norm(x, w[pre + "ln_2.weight"], w[pre + "ln_2.bias"], c.eps)
            h1 = b @ w[pre + "mlp.c_fc.weight"] + w[pre + "mlp.c_fc.bias"]
            if c.act == "swiglu":
                h2 = b @ w[pre + "mlp.c_fc2.weight"] + w[pre + "mlp.c_fc2.bias"]
                hh = h1 * silu(h2)
            elif c.act == "gelu_new":
                hh = gelu_new(h1)
            else:
                raise ValueError("activation " + c.act)
            x = x + (hh @ w[pre + "mlp.c_proj.weight"] + w[pre + "mlp.c_proj.bias"])
        cache.length = K
        xf = layer_norm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], c.eps)
        return (xf @ self.head.T) * c.s_out

    # ------------------------------------------------------------------------------------------

    def greedy(self, ids, n_new=GREEDY_NEW_TOKENS):
        """HF-style greedy decoding with a KV cache. Returns (tokens, margins, step_logits)."""
        cache = self.new_cache()
        logits = self.forward(ids, cache)[-1]
        toks, margins, steps = [], [], []
        for step in range(n_new):
            t = int(np.argmax(logits))
            top2 = np.partition(logits, -2)[-2:]
            toks.append(t)
            margins.append(float(top2.max() - top2.min()))
            steps.append(logits)
            if step + 1 < n_new:
                logits = self.forward([t], cache)[-1]
        return toks, margins, steps


def log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def f32(x):
    """float64 value rounded to float32, as a Python float with the shortest float32 repr."""
    return float(repr(np.float32(x)))


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = Config(json.load(f))
    weights, dtypes = load_weights(model_dir)
    return BTLMReference(cfg, weights), dtypes


def sequence_result(model, name, ids, n_new=GREEDY_NEW_TOKENS):
    logits = model.forward(ids)                              # ONE full forward call
    lp = log_softmax(logits)
    nxt = [float(lp[t, ids[t + 1]]) for t in range(len(ids) - 1)]
    toks, margins, _ = model.greedy(ids, n_new)
    last = logits[-1]
    m = last.max()
    lse = m + math.log(np.exp(last - m).sum())
    return {
        "name": name,
        "input_ids": [int(i) for i in ids],
        "next_token_logprobs": [f32(v) for v in nxt],
        "total_logprob": f32(sum(nxt)),
        "greedy_new_tokens": toks,
        "greedy_margins": [f32(v) for v in margins],
        "last_position": {
            "argmax": int(np.argmax(last)),
            "max_logit": f32(m),
            "logsumexp": f32(lse),
            "first_8_logits": [f32(v) for v in last[:8]],
        },
        "min_margin": float(min(margins)) if margins else None,
    }, logits


def kv_cache_check(model, ids):
    """max |full-forward logits - token-by-token cached logits| over all rows (c must not vary)."""
    full = model.forward(ids)
    cache = model.new_cache()
    rows = [model.forward([t], cache)[-1] for t in ids]
    return float(np.abs(full - np.stack(rows)).max())


# ----------------------------------------------------------------------------------------------
# CLI


def check_dir(d):
    model, _ = load_model(d)
    with open(os.path.join(d, "expected.json")) as f:
        exp = json.load(f)
    worst = {"next_token_logprobs": 0.0, "total_logprob": 0.0, "greedy_margins": 0.0,
             "max_logit": 0.0, "logsumexp": 0.0, "first_8_logits": 0.0}
    greedy_ok = True
    argmax_ok = True
    if "alibi_slopes_used" in exp and model.slopes is not None:
        ds = float(np.abs(np.array(exp["alibi_slopes_used"]) - model.slopes).max())
        print("  slopes (%s) max diff %.3g" % (getattr(model, "slopes_source", "?"), ds))
    final = {}
    es = os.path.join(d, "expected.safetensors")
    if os.path.exists(es):
        final, _ = read_safetensors(es)
    for s in exp["sequences"]:
        n_new = len(s["greedy_new_tokens"])
        r, logits = sequence_result(model, s["name"], s["input_ids"], n_new)
        ft = s.get("final_logits_tensor")
        if ft in final:
            df = float(np.abs(final[ft] - logits[-1]).max())
            worst["final_logits_tensor"] = max(worst.get("final_logits_tensor", 0.0), df)
        dl = max([abs(a - b) for a, b in zip(r["next_token_logprobs"], s["next_token_logprobs"])] or [0.0])
        assert len(r["next_token_logprobs"]) == len(s["next_token_logprobs"])
        worst["next_token_logprobs"] = max(worst["next_token_logprobs"], dl)
        worst["total_logprob"] = max(worst["total_logprob"], abs(r["total_logprob"] - s["total_logprob"]))
        worst["greedy_margins"] = max(worst["greedy_margins"], max(
            abs(a - b) for a, b in zip(r["greedy_margins"], s["greedy_margins"])))
        for k in ("max_logit", "logsumexp"):
            worst[k] = max(worst[k], abs(r["last_position"][k] - s["last_position"][k]))
        worst["first_8_logits"] = max(worst["first_8_logits"], max(
            abs(a - b) for a, b in zip(r["last_position"]["first_8_logits"], s["last_position"]["first_8_logits"])))
        g = r["greedy_new_tokens"] == s["greedy_new_tokens"]
        greedy_ok &= g
        argmax_ok &= r["last_position"]["argmax"] == s["last_position"]["argmax"]
        print("  %-22s len %4d  max|dlogprob| %.3g  greedy %s  min margin %.4g"
              % (s["name"], len(s["input_ids"]), dl, "same" if g else "DIFFERENT", r["min_margin"]))
    print("  worst:", ", ".join("%s %.3g" % kv for kv in worst.items()),
          "| greedy", "all same" if greedy_ok else "MISMATCH", "| argmax", "ok" if argmax_ok else "MISMATCH")
    return worst, greedy_ok and argmax_ok


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--check", action="store_true", help="recompute DIR/expected.json and print differences")
    ap.add_argument("--ids", help="comma-separated token ids")
    ap.add_argument("--new", type=int, default=GREEDY_NEW_TOKENS)
    a = ap.parse_args(argv)
    ok = True
    for d in a.dirs:
        if a.check:
            print(d)
            worst, good = check_dir(d)
            ok &= good and worst["next_token_logprobs"] <= 1e-6
        else:
            model, _ = load_model(d)
            ids = [int(t) for t in a.ids.split(",")]
            r, _ = sequence_result(model, "cli", ids, a.new)
            print(json.dumps(r, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
