#!/usr/bin/env python3
"""Generates the extra BTLM test fixtures in btlm4j-core/src/test/resources/fixtures/extra/.

Each fixture is a small random BTLM-architecture checkpoint (deterministic, seeded) exercising one
config / file-format variant, with `expected.json` computed by the independent float64 reference
tools/btlm_reference.py from the files exactly as written (the reference re-reads them).

    /usr/bin/python3 tools/make_fixtures.py            # (re)generate all fixtures
    /usr/bin/python3 tools/make_fixtures.py f16 f32    # only some

Needs numpy; the `sharded-bin` variant also needs torch (for torch.save). Safetensors files are
written by hand (no safetensors package).

Weight scales: GPT-2's N(0, 0.02) init at width 768 gives projection outputs of std ~0.55; at the
tiny widths used here (12..24) the same activation scale needs std ~1/sqrt(fan_in), so every matrix
is drawn as N(0, g/sqrt(fan_in)). The residual stream is kept at the scale s_emb * std(wte) and
each block writes a comparable amount into it, so attention (ALiBi, scaling, slopes) and the MLP
visibly move the log-probs. wte rows get a log-normal norm spread (as trained embeddings have) and
the seed is advanced until every greedy step has a top-1/top-2 logit margin >= MIN_MARGIN, so a
float32 engine cannot flip an argmax.
"""
import collections
import json
import os
import shutil
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import btlm_reference as ref  # noqa: E402

ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "btlm4j-core", "src", "test", "resources", "fixtures", "extra")
VOCAB = 50257
MIN_MARGIN = 2e-3
MAX_SEED_TRIES = 300

# ----------------------------------------------------------------------------------------------
# storage dtypes


def to_bf16_bits(a):
    f = np.ascontiguousarray(a, dtype=np.float32)
    u = f.view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16          # round to nearest even (no NaN/Inf here)
    return u.astype(np.uint16)


def stored(a, dtype):
    """(raw little-endian bytes, float64 value actually stored) of array a in dtype."""
    if dtype == "BF16":
        bits = to_bf16_bits(a)
        val = (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        return bits.astype("<u2").tobytes(), val
    if dtype == "F16":
        h = np.asarray(a, dtype=np.float64).astype(np.float16)
        return h.astype("<f2").tobytes(), h.astype(np.float64)
    if dtype == "F32":
        f = np.asarray(a, dtype=np.float64).astype(np.float32)
        return f.astype("<f4").tobytes(), f.astype(np.float64)
    raise ValueError(dtype)


def write_safetensors(path, tensors, dtype):
    """tensors: ordered {name: float64 array}; all written in `dtype`. Returns bytes of data."""
    header = collections.OrderedDict()
    header["__metadata__"] = {"format": "pt"}
    blobs = []
    off = 0
    for name in sorted(tensors):
        raw, _ = stored(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    return off


def dtype_size(dtype):
    return {"BF16": 2, "F16": 2, "F32": 4}[dtype]


# ----------------------------------------------------------------------------------------------
# variants

BASE_CONFIG = collections.OrderedDict([
    ("activation_function", "swiglu"),
    ("alibi_scaling", None),
    ("architectures", ["BTLMLMHeadModel"]),
    ("attn_pdrop", 0.0),
    ("auto_map", {
        "AutoConfig": "configuration_btlm.BTLMConfig",
        "AutoModel": "modeling_btlm.BTLMModel",
        "AutoModelForCausalLM": "modeling_btlm.BTLMLMHeadModel",
    }),
    ("bos_token_id", 50256),
    ("embd_pdrop", 0.0),
    ("eos_token_id", 50256),
    ("initializer_range", 0.02),
    ("layer_norm_epsilon", 1e-05),
    ("model_type", "btlm"),
    ("mup_embeddings_scale", 14.6),
    ("mup_output_alpha", 2.22),
    ("mup_scale_qk_dot_by_d", True),
    ("mup_width_scale", 0.1),
    ("n_embd", 16),
    ("n_head", 4),
    ("n_inner", 43),
    ("n_layer", 2),
    ("n_positions", 64),
    ("position_embedding_type", "alibi"),
    ("reorder_and_upcast_attn", False),
    ("resid_pdrop", 0.0),
    ("scale_attn_by_inverse_layer_idx", False),
    ("scale_attn_weights", True),
    ("tie_word_embeddings", True),
    ("torch_dtype", "bfloat16"),
    ("transformers_version", "4.30.0"),
    ("use_cache", True),
    ("vocab_size", VOCAB),
])

TORCH_DTYPE = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}

VARIANTS = [
    dict(name="alibi-factor", seed=3100,
         description="alibi_scaling {type: linear, factor: 2.0} (c = 2 for every call); 12 heads of dim 2 "
                     "with stored BF16 slopes = formula * U(0.6, 1.4) (as with trained slopes: the stored "
                     "tensor must be used, not the formula), BF16, tied head",
         config={"alibi_scaling": {"type": "linear", "factor": 2.0}, "n_embd": 24, "n_head": 12, "n_inner": 65},
         perturb_slopes=True),
    dict(name="alibi-dynamic", seed=3346, lengths=[10, 30], require_cache_split=True, attn_gain=3.0,
         min_margin=1e-2,
         description="alibi_scaling {type: linear, train_seq_len: 16}: c = K/16 once the key length K > 16; "
                     "whole-prompt call uses the prompt's K, each greedy step its own K = P+1 (HF KV-cache "
                     "semantics, differs from recomputing the whole sequence: the seed is chosen so that the greedy "
                     "tokens differ too, see greedy_new_tokens_if_recomputed_without_cache), stored slopes, BF16",
         config={"alibi_scaling": {"type": "linear", "train_seq_len": 16}}),
    dict(name="heads3-formula", seed=3300,
         description="3 heads (non-power-of-two), NO stored slopes (formula: [2^-4, 2^-8, 2^-2]), "
                     "mup_scale_qk_dot_by_d false (q.k / sqrt(d)), scale_attn_by_inverse_layer_idx true, BF16",
         config={"n_embd": 12, "n_head": 3, "n_inner": 33, "mup_scale_qk_dot_by_d": False,
                 "scale_attn_by_inverse_layer_idx": True},
         stored_slopes=False),
    dict(name="f16", seed=3400, dtype="F16",
         description="F16 safetensors (torch_dtype float16), otherwise like btlm-tiny: stored slopes, tied head"),
    dict(name="f32", seed=3500, dtype="F32",
         description="F32 safetensors (torch_dtype float32), n_embd 12 with 4 heads of (odd) dim 3, stored slopes",
         config={"n_embd": 12, "n_head": 4, "n_inner": 33}),
    dict(name="sharded-safetensors", seed=3600, layout="sharded-safetensors",
         description="2 safetensors shards model-0000N-of-00002.safetensors + model.safetensors.index.json "
                     "(wte, slopes, layer 0 in shard 1; layer 1, ln_f in shard 2), no lm_head.weight, BF16"),
    dict(name="sharded-bin", seed=3700, layout="sharded-bin",
         description="2 PyTorch zip shards pytorch_model-0000N-of-00002.bin (real torch.save, BF16 storages) + "
                     "pytorch_model.bin.index.json; lm_head.weight stored in shard 1 sharing wte's storage (as HF "
                     "save_pretrained does)"),
    dict(name="gpt2-learned", seed=3800,
         description="exactly GPT-2: position_embedding_type learned (transformer.wpe.weight [64, 16]), "
                     "activation gelu_new, n_inner null (= 4*n_embd = 64, no c_fc2), muP at defaults "
                     "(1.0 / false: q.k / sqrt(d), no logit/embedding scaling), no slopes, BF16",
         config={"position_embedding_type": "learned", "activation_function": "gelu_new", "n_inner": None,
                 "mup_embeddings_scale": 1.0, "mup_output_alpha": 1.0, "mup_width_scale": 1.0,
                 "mup_scale_qk_dot_by_d": False},
         stored_slopes=False),
    dict(name="untied-head", seed=3901,
         description="tie_word_embeddings false: separate stored lm_head.weight [50257, 16] with values "
                     "different from wte, BF16, stored slopes"),
    dict(name="old-keys", seed=4000,
         description="older config key names: embeddings_scale 14.6, output_logits_scale 0.222 (= alpha*width, "
                     "used as is), scale_qk_dot_by_d true, width_scale 0.1 (no mup_* keys), BF16, stored slopes",
         drop=["mup_embeddings_scale", "mup_output_alpha", "mup_scale_qk_dot_by_d", "mup_width_scale"],
         config={"embeddings_scale": 14.6, "output_logits_scale": 0.222, "scale_qk_dot_by_d": True,
                 "width_scale": 0.1}),
]


def make_config(v):
    cfg = collections.OrderedDict(BASE_CONFIG)
    for k in v.get("drop", []):
        del cfg[k]
    cfg.update(v.get("config", {}))
    cfg["torch_dtype"] = TORCH_DTYPE[v.get("dtype", "BF16")]
    if v["name"] == "untied-head":
        cfg["tie_word_embeddings"] = False
    return collections.OrderedDict(sorted(cfg.items()))


# ----------------------------------------------------------------------------------------------
# random weights


def make_weights(cfg_dict, seed, stored_slopes, untied, perturb_slopes=False, attn_gain=0.6):
    """float64 weights (before storage rounding), in HF state-dict order."""
    c = ref.Config(cfg_dict)
    rng = np.random.default_rng(seed)
    E, F, H = c.n_embd, c.n_inner, c.n_head
    sw = 0.3 if c.s_emb > 1.0 else 0.25         # wte std; residual scale R = s_emb * sw
    R = c.s_emb * sw

    def normal(shape, std):
        return rng.normal(0.0, std, size=shape)

    def ln(n):
        return 1.0 + normal(n, 0.1), normal(n, 0.05)

    w = collections.OrderedDict()
    row_scale = np.exp(rng.normal(0.0, 0.35, size=(VOCAB, 1)))
    w["transformer.wte.weight"] = normal((VOCAB, E), sw) * row_scale
    if c.pos_type == "learned":
        w["transformer.wpe.weight"] = normal((c.n_positions, E), 0.5 * sw)
    elif stored_slopes:
        sl = np.array(ref.alibi_slopes_formula(H))
        if perturb_slopes:   # as a checkpoint with trained slopes would have: the engine must read them
            sl = sl * rng.uniform(0.6, 1.4, size=H)
        w["transformer.relative_pe.slopes"] = sl.reshape(H, 1)
    for L in range(c.n_layer):
        p = "transformer.h.%d." % L
        w[p + "ln_1.weight"], w[p + "ln_1.bias"] = ln(E)
        w[p + "attn.c_attn.weight"] = normal((E, 3 * E), 1.2 / np.sqrt(E))
        w[p + "attn.c_attn.bias"] = normal(3 * E, 0.1)
        w[p + "attn.c_proj.weight"] = normal((E, E), attn_gain * R / np.sqrt(E))
        w[p + "attn.c_proj.bias"] = normal(E, 0.05 * R)
        w[p + "ln_2.weight"], w[p + "ln_2.bias"] = ln(E)
        w[p + "mlp.c_fc.weight"] = normal((E, F), 1.0 / np.sqrt(E))
        w[p + "mlp.c_fc.bias"] = normal(F, 0.1)
        if c.act == "swiglu":
            w[p + "mlp.c_fc2.weight"] = normal((E, F), 1.0 / np.sqrt(E))
            w[p + "mlp.c_fc2.bias"] = normal(F, 0.1)
        w[p + "mlp.c_proj.weight"] = normal((F, E), 1.0 * R / np.sqrt(F))
        w[p + "mlp.c_proj.bias"] = normal(E, 0.05 * R)
    w["transformer.ln_f.weight"], w["transformer.ln_f.bias"] = ln(E)
    if untied:
        w["lm_head.weight"] = normal((VOCAB, E), sw) * np.exp(rng.normal(0.0, 0.35, size=(VOCAB, 1)))
    return w


def round_weights(w, dtype):
    return collections.OrderedDict((k, stored(a, dtype)[1]) for k, a in w.items())


def make_sequences(seed, lengths):
    rng = np.random.default_rng(seed + 7)
    seqs = []
    for n in lengths:
        ids = [50256] if n == 1 else [int(t) for t in rng.integers(0, VOCAB, size=n)]
        seqs.append(("len%d" % n, ids))
    return seqs


# ----------------------------------------------------------------------------------------------
# writing


def write_checkpoint(d, v, w, dtype, tied):
    layout = v.get("layout", "single")
    names = [k for k in w]  # state-dict order
    if layout == "single":
        write_safetensors(os.path.join(d, "model.safetensors"), w, dtype)
    elif layout == "sharded-safetensors":
        shard1 = [k for k in names if not k.startswith("transformer.h.") or k.startswith("transformer.h.0.")]
        shard1 = [k for k in shard1 if not k.startswith("transformer.ln_f")]
        shard2 = [k for k in names if k not in shard1]
        files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        total, wm = 0, {}
        for fn, ks in zip(files, (shard1, shard2)):
            total += write_safetensors(os.path.join(d, fn), collections.OrderedDict((k, w[k]) for k in ks), dtype)
            wm.update({k: fn for k in ks})
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2, sort_keys=True)
            f.write("\n")
    elif layout == "sharded-bin":
        import torch
        assert dtype == "BF16" and tied
        tdict = collections.OrderedDict()
        for k in names:
            bits = to_bf16_bits(w[k]).view(np.int16)
            tdict[k] = torch.from_numpy(bits.copy()).view(torch.bfloat16).clone()
        # a distinct tensor object sharing wte's storage, as in HF state_dict() (param.detach()):
        # the pickle then has two _rebuild_tensor_v2 calls referring to the same storage key
        tdict["lm_head.weight"] = tdict["transformer.wte.weight"].detach()
        shard1 = [k for k in tdict if not k.startswith("transformer.h.") or k.startswith("transformer.h.0.")]
        shard1 = [k for k in shard1 if not k.startswith("transformer.ln_f")]
        shard2 = [k for k in tdict if k not in shard1]
        files = ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]
        total, wm = 0, {}
        for fn, ks in zip(files, (shard1, shard2)):
            sd = collections.OrderedDict((k, tdict[k]) for k in ks)
            torch.save(sd, os.path.join(d, fn))
            for k in ks:
                wm[k] = fn
                if k != "lm_head.weight":                          # shared storage counted once
                    total += tdict[k].numel() * 2
        with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2, sort_keys=True)
            f.write("\n")
    else:
        raise ValueError(layout)


def evaluate(cfg_dict, weights, seqs):
    model = ref.BTLMReference(ref.Config(cfg_dict), weights)
    results = []
    for name, ids in seqs:
        r, _ = ref.sequence_result(model, name, ids)
        results.append(r)
    return model, results


def sensitivity(cfg_dict, weights, seqs, name):
    """max |delta log-prob| (full-forward next-token log-probs + greedy-path first-step) when one
    feature is computed the wrong way: shows that the fixture discriminates it (>> 1e-4)."""
    base_model = ref.BTLMReference(ref.Config(cfg_dict), weights)

    def lps(model):
        out = []
        for _, ids in seqs:
            lp = ref.log_softmax(model.forward(ids))
            out.append(np.array([lp[t, ids[t + 1]] for t in range(len(ids) - 1)]))
        return np.concatenate(out) if out else np.zeros(0)

    base = lps(base_model)
    checks = {}

    def variant(label, cfg_changes=None, drop=None, w_changes=None, model_hook=None):
        cd = dict(cfg_dict)
        for k in drop or []:
            cd.pop(k, None)
        cd.update(cfg_changes or {})
        ww = dict(weights)
        ww.update(w_changes or {})
        m = ref.BTLMReference(ref.Config(cd), ww)
        if model_hook:
            model_hook(m)
        checks[label] = float(np.abs(lps(m) - base).max())

    c = base_model.cfg
    if c.pos_type == "alibi":
        if c.alibi_factor is not None or c.alibi_train_len is not None:
            variant("alibi_scaling ignored", {"alibi_scaling": None})
        if "transformer.relative_pe.slopes" in weights:
            ex = np.array(ref.alibi_slopes_formula(c.n_head))
            if np.abs(ex - base_model.slopes).max() > 0:
                variant("exact formula instead of stored slopes",
                        model_hook=lambda m: setattr(m, "slopes", ex))
        else:
            variant("power-of-two formula misapplied (2^(-8(h+1)/n))",
                    model_hook=lambda m: setattr(m, "slopes", np.array(
                        [2.0 ** (-8.0 * (h + 1) / c.n_head) for h in range(c.n_head)])))
        variant("no ALiBi bias", model_hook=lambda m: setattr(m, "slopes", np.zeros(c.n_head)))
    else:
        variant("wpe ignored", w_changes={"transformer.wpe.weight": np.zeros_like(weights["transformer.wpe.weight"])})
    variant("q.k by the other power of d", model_hook=lambda m: setattr(m.cfg, "qk_power", 1.5 - m.cfg.qk_power))
    variant("scale_attn_by_inverse_layer_idx flipped",
            model_hook=lambda m: setattr(m.cfg, "inv_layer_idx", not m.cfg.inv_layer_idx))
    if not c.tie:
        variant("head tied to wte instead of lm_head", model_hook=lambda m: setattr(m, "head", m.wte))
    if name == "old-keys":
        variant("old keys ignored (scales 1.0, sqrt(d))",
                model_hook=lambda m: (setattr(m.cfg, "s_emb", 1.0), setattr(m.cfg, "s_out", 1.0),
                                      setattr(m.cfg, "qk_power", 0.5)))
        variant("s_out = output_logits_scale * width_scale",
                model_hook=lambda m: setattr(m.cfg, "s_out", 0.222 * 0.1))
    if c.act == "gelu_new":
        variant("exact erf GELU instead of gelu_new",
                model_hook=lambda m: setattr(ref, "gelu_new", _gelu_erf))
        ref.gelu_new = _GELU_NEW
    return checks


_GELU_NEW = ref.gelu_new


def _gelu_erf(x):
    import math
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def dynamic_vs_recompute(model, seqs):
    """For dynamic ALiBi scaling: the greedy path's KV-cache logits vs recomputing the whole sequence
    at every step (max |delta logit| over steps), to show the two semantics are told apart."""
    worst = 0.0
    for _, ids in seqs:
        toks, _, steps = model.greedy(ids)
        seq = list(ids)
        for t, lg in zip(toks, steps):
            full = model.forward(seq)[-1]
            worst = max(worst, float(np.abs(full - lg).max()))
            seq.append(t)
    return worst


def recompute_greedy(model, ids):
    """Greedy tokens when every step recomputes the whole sequence in one call (NOT HF's semantics
    with dynamic ALiBi scaling; only used to pick a seed where the two differ)."""
    seq, toks = list(ids), []
    for _ in range(ref.GREEDY_NEW_TOKENS):
        t = int(np.argmax(model.forward(seq)[-1]))
        toks.append(t)
        seq.append(t)
    return toks


def build(v):
    name = v["name"]
    dtype = v.get("dtype", "BF16")
    cfg = make_config(v)
    lengths = v.get("lengths", [1, 7, 40])
    tied = cfg.get("tie_word_embeddings", True)
    stored_slopes = v.get("stored_slopes", True)
    seed = v["seed"]
    for attempt in range(MAX_SEED_TRIES):
        w = make_weights(cfg, seed, stored_slopes, not tied, v.get("perturb_slopes", False),
                         v.get("attn_gain", 0.6))
        wr = round_weights(w, dtype)
        seqs = make_sequences(seed, lengths)
        model, results = evaluate(cfg, wr, seqs)
        mm = min(r["min_margin"] for r in results)
        if mm >= v.get("min_margin", MIN_MARGIN) and (not v.get("require_cache_split") or any(
                recompute_greedy(model, ids) != r["greedy_new_tokens"] for (_, ids), r in zip(seqs, results))):
            break
        seed += 1
    else:
        raise RuntimeError("no seed with margins >= %g for %s" % (MIN_MARGIN, name))

    d = os.path.join(OUT, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    write_checkpoint(d, v, w, dtype, tied)

    # recompute everything from the files as written (independent read path)
    model, dtypes = ref.load_model(d)
    for k, a in wr.items():
        assert np.array_equal(model.w[k], a), k
    if "lm_head.weight" in model.w and tied:
        assert np.array_equal(model.w["lm_head.weight"], model.w["transformer.wte.weight"])
    results = []
    for sname, ids in seqs:
        r, _ = ref.sequence_result(model, sname, ids)
        results.append(r)
    mm = min(r["min_margin"] for r in results)
    assert mm >= MIN_MARGIN

    exp = collections.OrderedDict()
    exp["format"] = "btlm-reference-v1"
    exp["generated_by"] = "tools/btlm_reference.py: independent float64 numpy reference of the BTLM forward pass"
    exp["variant"] = name
    exp["description"] = v["description"]
    exp["storage_dtype"] = dtype
    exp["weights_seed"] = seed
    exp["values"] = "float64 reference results rounded to float32"
    if model.slopes is not None:
        exp["alibi_slopes_used"] = [float(s) for s in model.slopes]
        exp["alibi_slopes_formula"] = ref.alibi_slopes_formula(model.cfg.n_head)
        exp["alibi_slopes_source"] = model.slopes_source + (
            " (deliberately perturbed from the formula)" if v.get("perturb_slopes") else "")
    else:
        exp["alibi_slopes_used"] = None
    exp["greedy_new_tokens_count"] = ref.GREEDY_NEW_TOKENS
    if model.cfg.alibi_train_len is None:
        exp["kv_cache_check"] = {"max_abs_diff_all_rows": ref.kv_cache_check(model, seqs[-1][1])}
    else:
        exp["kv_cache_check"] = {
            "note": "dynamic ALiBi scaling: token-by-token decoding differs from a whole-sequence call past "
                    "train_seq_len by design; greedy steps use the KV cache (HF semantics)",
            "max_abs_diff_rows_within_train_seq_len": ref.kv_cache_check(model, seqs[-1][1][:model.cfg.alibi_train_len]),
            "greedy_cache_vs_full_recompute_max_abs_logit_diff": dynamic_vs_recompute(model, seqs),
        }
        for (_, ids), r in zip(seqs, results):
            r["greedy_new_tokens_if_recomputed_without_cache"] = recompute_greedy(model, ids)
    exp["sequences"] = results
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)
        f.write("\n")

    sens = sensitivity(cfg, wr, seqs, name)
    size = sum(os.path.getsize(os.path.join(d, fn)) for fn in os.listdir(d))
    return dict(name=name, seed=seed, tries=attempt + 1, min_margin=mm,
                per_seq={r["name"]: r["min_margin"] for r in results}, size=size, sensitivity=sens,
                kv=exp["kv_cache_check"])


def main(argv):
    want = set(argv)
    os.makedirs(OUT, exist_ok=True)
    summary = []
    for v in VARIANTS:
        if want and v["name"] not in want:
            continue
        s = build(v)
        summary.append(s)
        print("%-20s seed %d (%d tries)  %8d bytes  min margin %.4g  %s" % (
            s["name"], s["seed"], s["tries"], s["size"], s["min_margin"],
            " ".join("%s=%.3g" % kv for kv in s["per_seq"].items())))
        print("    kv: %s" % json.dumps(s["kv"])[:300])
        for k, val in s["sensitivity"].items():
            print("    sensitivity: %-48s max|dlogprob| %.3g" % (k, val))
    total = 0
    for root, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print("total size of %s: %d bytes" % (OUT, total))


if __name__ == "__main__":
    main(sys.argv[1:])
