#!/usr/bin/env python3
"""Generate the hostile-checkpoint corpus and the fuzzers' seed inputs.

Writes into btlm4j-core/src/test/resources/ (or the directory given as the first argument):

* ``hostile/``: small model files that try to break the loaders, each loaded by HostileCorpusTest
  through ``BtlmModel.load`` as a user would. ``hostile/manifest.tsv`` lists every case:
  ``path<TAB>expectation<TAB>words the message must contain<TAB>what it covers``, where the
  expectation is ``refused`` (a BtlmException naming the problem), ``warns`` (the model loads and
  ``BtlmModel.warnings()`` names the problem) or ``loads`` (a control that must load cleanly).
  A case is a weights file (copied beside ``hostile/config.json`` under the name a user's
  directory would have), a ``.gguf`` file (loaded on its own), or a directory (a whole model:
  sharded checkpoints, hostile ``config.json`` files).
* the fuzzers' seeds under ``org/btlm4j/.../<FuzzTest>Inputs/<target>/`` (Jazzer's layout).

Every payload that would run code tries to create SENTINEL; the test checks that it never appears.
Nothing here ever unpickles or loads a hostile file: the bytes are only built.

The files extend those of make_torch_test_files.py (whose zip writer and torch-like pickler are
reused) without repeating its cases. Needs Python 3, numpy and torch (only for those helpers and
``torch.save`` of the valid base); Debian's python3-torch 1.13 was used:
    /usr/bin/python3 tools/make_hostile_corpus.py
"""
import collections
import io
import json
import os
import pickle
import shutil
import struct
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_torch_test_files as mt  # noqa: E402  (write_zip, TorchLikePickler, FakeStorage, FakeTensor, Reduce)

import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RES = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "btlm4j-core", "src", "test", "resources")
OUT = os.path.join(RES, "hostile")
SENTINEL = "/tmp/btlm4j-hostile-sentinel"
SHELL = "touch " + SENTINEL

# A BTLM small enough that every file stays a few KB: swiglu, ALiBi, tied head.
CONFIG = {
    "model_type": "btlm", "activation_function": "swiglu", "position_embedding_type": "alibi",
    "vocab_size": 64, "n_embd": 8, "n_head": 2, "n_inner": 16, "n_layer": 1, "n_positions": 16,
    "layer_norm_epsilon": 1e-5, "mup_embeddings_scale": 14.6, "mup_output_alpha": 2.22, "mup_width_scale": 0.1,
    "mup_scale_qk_dot_by_d": True, "scale_attn_weights": True, "tie_word_embeddings": True,
    "bos_token_id": 63, "eos_token_id": 63,
}
LINEAR = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_fc2.weight", "mlp.c_proj.weight")

manifest = []


def case(rel, expect, words, covers):
    assert "\t" not in words + covers
    manifest.append((rel, expect, words, covers))


def tensors(dtype=np.float32, seed=1):
    """The tiny model's tensors by HF name, Conv1D [in, out] linear weights, random but finite."""
    e, inner, v = CONFIG["n_embd"], CONFIG["n_inner"], CONFIG["vocab_size"]
    shapes = collections.OrderedDict([("transformer.wte.weight", (v, e))])
    p = "transformer.h.0."
    for name, shape in [("ln_1.weight", (e,)), ("ln_1.bias", (e,)), ("attn.c_attn.weight", (e, 3 * e)),
                        ("attn.c_attn.bias", (3 * e,)), ("attn.c_proj.weight", (e, e)), ("attn.c_proj.bias", (e,)),
                        ("ln_2.weight", (e,)), ("ln_2.bias", (e,)), ("mlp.c_fc.weight", (e, inner)),
                        ("mlp.c_fc.bias", (inner,)), ("mlp.c_fc2.weight", (e, inner)), ("mlp.c_fc2.bias", (inner,)),
                        ("mlp.c_proj.weight", (inner, e)), ("mlp.c_proj.bias", (e,))]:
        shapes[p + name] = shape
    shapes["transformer.ln_f.weight"] = (e,)
    shapes["transformer.ln_f.bias"] = (e,)
    rng = np.random.default_rng(seed)
    return collections.OrderedDict((n, (rng.standard_normal(s) * 0.1).astype(dtype)) for n, s in shapes.items())


# ---------------------------------------------------------------------------------------------
# safetensors

ST_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.float64): "F64",
             np.dtype(np.int64): "I64"}


def st_header(ts):
    header, offset = {}, 0
    for name, a in ts.items():
        header[name] = {"dtype": ST_DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    return header


def st_bytes(header, data, header_len=None, raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h) if header_len is None else header_len & (2 ** 64 - 1)) + h + data


def st_data(ts):
    return b"".join(a.tobytes() for a in ts.values())


def put(rel, data):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return rel


def safetensors_cases():
    ts = tensors()
    header = st_header(ts)
    data = st_data(ts)
    good = st_bytes(header, data)
    case(put("safetensors/valid.safetensors", good), "loads", "", "control: the valid tiny model")
    hlen = struct.unpack("<Q", good[:8])[0]

    # truncated at every section boundary: inside the length, the header, and at each tensor's edges
    cuts = {0: "empty file", 4: "half the length field", 7: "one byte short of the length field",
            8: "the length field only", 9: "one byte of header", 8 + hlen // 2: "half the header",
            8 + hlen - 1: "the header's last byte missing", 8 + hlen: "the header without data"}
    for name, (b, e) in ((n, header[n]["data_offsets"]) for n in header):
        short = name.replace("transformer.", "").replace(".weight", ".w").replace(".bias", ".b")
        if b > 0:
            cuts.setdefault(8 + hlen + b + 1, "one byte into " + short)
        cuts.setdefault(8 + hlen + e - 1, "the last byte of " + short + " missing")
    for n, what in sorted(cuts.items()):
        case(put("safetensors/cut_%05d.safetensors" % n, good[:n]), "refused", "",
             "safetensors truncated at %d bytes: %s" % (n, what))

    # header lengths pointing outside the file
    for hl, what in [(0, "zero"), (1, "one"), (2 ** 63 - 1, "2^63-1"), (2 ** 64 - 1, "-1 as u64"),
                     (2 ** 63, "2^63 (negative as a long)"), (len(good), "the whole file"),
                     (len(good) - 8 + 1, "one past the end"), (100 * 2 ** 20 + 1, "just over the 100 MB limit")]:
        case(put("safetensors/header_len_%s.safetensors" % what.split()[0].replace("^", "").replace("-", "m"),
                 st_bytes(header, data, header_len=hl)), "refused", "header", "header length " + what)

    def variant(name, words, covers, edit=None, raw=None, data_=None):
        h = json.loads(json.dumps(header))
        if edit:
            edit(h)
        case(put("safetensors/%s.safetensors" % name, st_bytes(h, data if data_ is None else data_, raw_header=raw)),
             "refused", words, covers)

    wte = "transformer.wte.weight"
    ln = "transformer.h.0.ln_1.weight"
    fc = "transformer.h.0.mlp.c_fc.weight"

    def setf(name, key, value):
        return lambda h: h[name].__setitem__(key, value)

    # offsets outside the data or overlapping
    variant("offsets_past_end", "data_offsets", "data_offsets end past the data",
            setf(fc, "data_offsets", [len(data) - 16, len(data) + 496]))
    variant("offsets_reversed", "data_offsets", "data_offsets begin after end",
            setf(ln, "data_offsets", [header[ln]["data_offsets"][1], header[ln]["data_offsets"][0]]))
    variant("offsets_negative", "data_offsets", "negative data_offsets",
            setf(ln, "data_offsets", [-32, 0]))
    variant("offsets_2p64", "data_offsets", "data_offsets beyond a long",
            setf(ln, "data_offsets", [2 ** 64, 2 ** 64 + 32]))
    variant("offsets_float", "data_offsets", "data_offsets as floats",
            setf(ln, "data_offsets", [0.5, 32.5]))
    variant("offsets_three", "data_offsets", "three data_offsets", setf(ln, "data_offsets", [0, 16, 32]))
    variant("offsets_missing", "data_offsets", "no data_offsets", lambda h: h[ln].pop("data_offsets"))
    variant("offsets_overlap", "overlap", "two tensors over the same bytes",
            setf("transformer.h.0.ln_2.weight", "data_offsets", header[ln]["data_offsets"]))
    variant("offsets_overlap_partial", "overlap", "two tensors sharing 16 bytes",
            setf("transformer.h.0.ln_1.bias", "data_offsets",
                 [header[ln]["data_offsets"][0] + 16, header[ln]["data_offsets"][0] + 48]))
    variant("offsets_into_header", "data_offsets", "offsets counted from the file start (reaching into the header)",
            setf(ln, "data_offsets", [-(hlen + 8), -(hlen + 8) + 32]))

    # shapes whose product overflows, negative or non-integer dimensions, shape/bytes disagreement
    variant("shape_overflow", "shape", "shape [2^32, 2^32]: the product overflows a long",
            setf(ln, "shape", [2 ** 32, 2 ** 32]))
    variant("shape_overflow_bytes", "", "shape [2^62]: elements fit a long, bytes do not",
            setf(ln, "shape", [2 ** 62]))
    variant("shape_overflow_many", "shape", "shape of 64 dimensions of 4", setf(ln, "shape", [4] * 64))
    variant("shape_negative", "shape", "negative dimension", setf(ln, "shape", [-8]))
    variant("shape_float", "shape", "fractional dimension", setf(ln, "shape", [8.5]))
    variant("shape_string", "shape", "dimension as a string", setf(ln, "shape", ["8"]))
    variant("shape_not_array", "shape", "shape as a number", setf(ln, "shape", 8))
    variant("shape_too_small", "", "shape smaller than its bytes", setf(ln, "shape", [4]))
    variant("shape_too_large", "", "shape larger than its bytes", setf(ln, "shape", [16]))
    variant("shape_zero", "", "shape with a zero dimension but bytes", setf(ln, "shape", [0, 8]))
    variant("shape_wrong_for_config", "shape", "consistent file, shape not what config.json asks",
            lambda h: (h[wte].__setitem__("shape", [32, 16])))

    # dtypes that lie about sizes, or are not weights
    variant("dtype_f64_lie", "", "F64 over 4-byte data", setf(ln, "dtype", "F64"))
    variant("dtype_f16_lie", "", "F16 over 4-byte data", setf(ln, "dtype", "F16"))
    variant("dtype_unknown", "dtype", "unknown dtype F8_E4M3", setf(ln, "dtype", "F8_E4M3"))
    variant("dtype_empty", "dtype", "empty dtype", setf(ln, "dtype", ""))
    variant("dtype_number", "dtype", "dtype as a number", setf(ln, "dtype", 4))
    variant("dtype_missing", "dtype", "no dtype", lambda h: h[ln].pop("dtype"))
    variant("dtype_int_weight", "type", "an I32 weight of the right size", setf(ln, "dtype", "I32"))
    variant("dtype_bool_weight", "type", "a BOOL wte of the right size",
            lambda h: (h[wte].__setitem__("dtype", "BOOL"), h[wte].__setitem__("shape", [64, 8, 4])))

    # malformed headers
    variant("header_not_json", "JSON", "header is not JSON", raw=b"{\"a\": [1, 2" + b" " * 8)
    variant("header_array", "object", "header is a JSON array", raw=b"[]")
    variant("header_invalid_utf8", "", "header with invalid UTF-8", raw=b"{\"\xff\xfe\": 1}")
    variant("header_deep_nesting", "JSON", "header nested 20000 arrays deep (recursion)",
            raw=b"{\"x\":" + b"[" * 20000 + b"]" * 20000 + b"}")
    variant("header_entry_not_object", "object", "tensor entry is a string", lambda h: h.__setitem__(ln, "x"))
    variant("header_metadata_not_strings", "__metadata__", "__metadata__ with a number",
            lambda h: h.__setitem__("__metadata__", {"format": 1}))
    variant("header_metadata_array", "__metadata__", "__metadata__ as an array",
            lambda h: h.__setitem__("__metadata__", ["pt"]))
    dup = json.dumps(header, separators=(",", ":")).encode()
    dup = dup[:-1] + b',"' + ln.encode() + b'":' + json.dumps(header[wte], separators=(",", ":")).encode() + b"}"
    variant("header_duplicate_name", "duplicate", "a tensor name given twice", raw=dup)
    variant("missing_tensor", "missing tensor", "the file lacks ln_f.bias",
            lambda h: h.pop("transformer.ln_f.bias"))

    # NaN/Inf weights load, with a warning naming the tensor
    for name, where, value, dtype in [("nan_ln1", ln, np.nan, np.float32), ("inf_wte", wte, np.inf, np.float32),
                                      ("neginf_fc", fc, -np.inf, np.float32), ("nan_f16_fc", fc, np.nan, np.float16)]:
        t = tensors(dtype)
        t[where].flat[3] = value
        t[where].flat[5] = value
        case(put("safetensors/%s.safetensors" % name, st_bytes(st_header(t), st_data(t))), "warns",
             where + "|2", "%s in %s (%s)" % (value, where, np.dtype(dtype).name))


# ---------------------------------------------------------------------------------------------
# PyTorch zip checkpoints

def torch_state(dtype=torch.float32):
    return collections.OrderedDict((n, torch.from_numpy(a.copy()).to(dtype)) for n, a in tensors().items())


def torch_bytes(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def zip_bytes(entries, **kwargs):
    tmp = os.path.join(OUT, ".tmp.zip")
    mt.write_zip(tmp, entries, **kwargs)
    with open(tmp, "rb") as f:
        data = f.read()
    os.remove(tmp)
    return data


def pickle_case(name, pkl, words, covers, storages=None):
    entries = [("archive/data.pkl", pkl)]
    for key, data in (storages or {}).items():
        entries.append(("archive/data/" + key, data))
    entries.append(("archive/version", b"3\n"))
    case(put("torch/%s.bin" % name, zip_bytes(entries)), "refused", words, covers)


def zip_layout(data):
    """(local header offsets, data offsets and ends, central directory offset, EOCD offset) of a zip."""
    eocd = data.rindex(b"PK\x05\x06")
    n, cd_size, cd_offset = struct.unpack("<HII", data[eocd + 10:eocd + 20])
    locals_, at = [], cd_offset
    for _ in range(n):
        (csize, usize, nlen, xlen, clen) = struct.unpack("<IIHHH", data[at + 20:at + 34])
        off = struct.unpack("<I", data[at + 42:at + 46])[0]
        lnlen, lxlen = struct.unpack("<HH", data[off + 26:off + 30])
        start = off + 30 + lnlen + lxlen
        locals_.append((data[at + 46:at + 46 + nlen].decode(), off, start, start + csize))
        at += 46 + nlen + xlen + clen
    return locals_, cd_offset, eocd


def torch_cases():
    good = torch_bytes(torch_state())
    case(put("torch/valid.bin", good), "loads", "", "control: the valid tiny model saved by torch.save")
    entries, cd, eocd = zip_layout(good)
    cuts = {cd: "at the central directory", cd + 23: "inside the first central header",
            eocd: "at the end-of-central-directory record", len(good) - 1: "the last byte missing"}
    for name, off, start, end in entries:
        short = name.split("/", 1)[1]
        cuts.setdefault(off, "at the local header of " + short)
        cuts.setdefault(start, "at the data of " + short)
        if end - start > 2:
            cuts.setdefault((start + end) // 2, "in the middle of " + short)
    for n, what in sorted(cuts.items()):
        case(put("torch/cut_%05d.bin" % n, good[:n]), "refused", "", "torch zip truncated %s (%d bytes)" % (what, n))

    # zip entries with wrong sizes or compression, zip bombs
    real = mt.torch_entries(torch_state())
    pkl_name = [n for n, _ in real if n.endswith("data.pkl")][0]
    wte_key = [n for n, _ in real if n.endswith("/data/0")][0]

    def zcase(name, words, covers, entries_=None, **kw):
        case(put("torch/%s.bin" % name, zip_bytes(entries_ or real, **kw)), "refused", words, covers)

    zcase("entry_size_zero", "", "a storage entry whose size says 0", patch_cd_size={wte_key: 0})
    zcase("entry_size_4g", "", "a storage entry whose size says 4 GB", patch_cd_size={wte_key: 0xFFFFFFFE})
    zcase("pickle_size_past_end", "", "data.pkl whose size runs past the end", patch_cd_size={pkl_name: 0x7FFFFFFF})
    zcase("pickle_size_short", "", "data.pkl whose size cuts the pickle", patch_cd_size={pkl_name: 20})
    zcase("zip64_pickle_size_2p62", "", "ZIP64 data.pkl of 2^62 bytes", zip64=True, patch_cd_size={pkl_name: 2 ** 62})
    zcase("deflated_everything", "compressed", "every entry deflated", deflate={n for n, _ in real})
    bomb = [(pkl_name, b"\x80\x02" + b"N" * (8 << 20))] + [(n, d) for n, d in real if n != pkl_name]
    zcase("zip_bomb_pickle", "compressed", "data.pkl of 8 MB deflated to a few KB (zip bomb)", entries_=bomb,
          deflate={pkl_name})
    bomb2 = [(n, d) for n, d in real if n != wte_key] + [(wte_key, b"\0" * (16 << 20))]
    zcase("zip_bomb_storage", "compressed", "a 16 MB storage deflated to a few KB (zip bomb)", entries_=bomb2,
          deflate={wte_key})
    # raw edits of the stored archive
    g = bytearray(good)
    loc = {name: (off, start, end) for name, off, start, end in entries}

    def raw(name, words, covers, edits):
        b = bytearray(good)
        for at, data in edits:
            b[at:at + len(data)] = data
        case(put("torch/%s.bin" % name, bytes(b)), "refused", words, covers)

    cd_pkl = good.index(b"PK\x01\x02")  # the first central header is data.pkl's
    raw("method_bzip2", "compressed", "data.pkl claims bzip2 (method 12)", [(cd_pkl + 10, struct.pack("<H", 12))])
    raw("method_aes", "", "data.pkl claims AES (method 99)", [(cd_pkl + 10, struct.pack("<H", 99))])
    raw("encrypted_flag", "encrypted", "data.pkl flagged encrypted", [(cd_pkl + 8, struct.pack("<H", 0x0801))])
    raw("local_offset_past_end", "", "central header points past the end",
        [(cd_pkl + 42, struct.pack("<I", len(good) + 100))])
    raw("local_offset_into_cd", "", "central header points into the central directory",
        [(cd_pkl + 42, struct.pack("<I", cd))])
    raw("local_signature_bad", "", "local header signature overwritten", [(loc[pkl_name][0], b"XXXX")])
    raw("local_name_length_huge", "", "local header name length 65535", [(loc[pkl_name][0] + 26, b"\xff\xff")])
    plain = zip_bytes(real)
    peocd = plain.rindex(b"PK\x05\x06")

    def raw_plain(name, words, covers, at, data):
        b = bytearray(plain)
        b[peocd + at:peocd + at + len(data)] = data
        case(put("torch/%s.bin" % name, bytes(b)), "refused", words, covers)

    raw_plain("eocd_entries_65535", "", "EOCD claims 65535 entries", 8, b"\xff\xff\xff\xff")
    raw_plain("eocd_cd_offset_past_end", "", "EOCD central directory offset past the end",
        16, struct.pack("<I", 0x7FFFFFF0))
    raw_plain("eocd_cd_size_huge", "", "EOCD central directory size 4 GB", 12, b"\xff\xff\xff\xfe")
    raw_plain("eocd_disk_number", "", "EOCD of a multi-disk archive", 4, b"\x01\x00")
    raw("cd_name_length_huge", "", "central header name length 65535", [(cd_pkl + 28, b"\xff\xff")])
    raw("cd_extra_length_huge", "", "central header extra length 65535", [(cd_pkl + 30, b"\xff\xff")])
    # every central header pointing at the same local entry: overlapping entries
    b = bytearray(good)
    at = cd
    while b[at:at + 4] == b"PK\x01\x02":
        nlen, xlen, clen = struct.unpack("<HHH", b[at + 28:at + 34])
        b[at + 42:at + 46] = struct.pack("<I", loc[pkl_name][0])
        at += 46 + nlen + xlen + clen
    case(put("torch/overlapping_entries.bin", bytes(b)), "refused", "", "every central header names data.pkl's bytes")

    # pickles using every opcode the unpickler rejects (EXT1, INST and OBJ are in torch/ already)
    rejected = {"INT": b"I1\n", "LONG": b"L1L\n", "FLOAT": b"F1.0\n", "STRING": b"S'a'\n",
                "BINSTRING": b"T\x01\x00\x00\x00a", "SHORT_BINSTRING": b"U\x01a", "UNICODE": b"Va\n",
                "PERSID": b"P0\n", "GET": b"N0g0\n", "PUT": b"Np0\n", "LIST": b"(l", "DICT": b"(d",
                "DUP": b"N2", "EXT2": b"\x83\x01\x00", "EXT4": b"\x84\x01\x00\x00\x00",
                "EMPTY_SET": b"\x8f", "ADDITEMS": b"](N\x90", "FROZENSET": b"(\x91",
                "NEWOBJ_EX": b"N)}\x92", "BYTEARRAY8": b"\x96\x01\x00\x00\x00\x00\x00\x00\x00a",
                "NEXT_BUFFER": b"\x97", "READONLY_BUFFER": b"N\x98", "UNKNOWN_0x00": b"\x00",
                "UNKNOWN_0xff": b"\xff", "UNKNOWN_0x99": b"\x99", "UNKNOWN_A": b"A"}
    for op, body in rejected.items():
        pickle_case("opcode_" + op.lower(), b"\x80\x02" + body + b".",
                    "opcode|" + ("unknown opcode (0x%02x)" % body[-1] if op.startswith("UNKNOWN") else op + " (0x"),
                    "pickle opcode " + op + ", which the unpickler rejects")
    pickle_case("proto_6", b"\x80\x06}.", "protocol", "pickle protocol 6")
    pickle_case("proto_twice", b"\x80\x02\x80\x02}.", "", "PROTO in the middle (protocol 2 twice)")

    # GLOBALs outside the allow-list, as GLOBAL (protocol 2) and STACK_GLOBAL (protocol 4)
    def glob2(mod, name):
        return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"

    def glob4(mod, name):
        m, n = mod.encode(), name.encode()
        return b"\x8c" + bytes([len(m)]) + m + b"\x8c" + bytes([len(n)]) + n + b"\x93"

    def call(arg):
        a = arg.encode()
        return b"(X" + struct.pack("<I", len(a)) + a + b"tR"

    calls = [("os", "system", SHELL), ("posix", "system", SHELL), ("nt", "system", SHELL),
             ("builtins", "eval", "__import__('os').system('%s')" % SHELL),
             ("builtins", "exec", "import os; os.system('%s')" % SHELL),
             ("__builtin__", "eval", "__import__('os').system('%s')" % SHELL),
             ("builtins", "__import__", "os"), ("builtins", "open", SENTINEL),
             ("subprocess", "Popen", SHELL), ("subprocess", "check_output", SHELL),
             ("subprocess", "run", SHELL), ("shutil", "rmtree", "/tmp/btlm4j-hostile-nothing"),
             ("pickle", "loads", "x"), ("io", "open", SENTINEL), ("runpy", "run_path", SENTINEL),
             ("webbrowser", "open", "file://" + SENTINEL), ("torch", "load", SENTINEL),
             ("torch.serialization", "load", SENTINEL), ("numpy", "load", SENTINEL),
             ("torch._utils", "_rebuild_tensor", SHELL), ("collections", "defaultdict", SHELL),
             ("functools", "partial", SHELL), ("operator", "attrgetter", "system"),
             ("os", "popen", SHELL), ("pty", "spawn", SHELL)]
    for mod, name, arg in calls:
        tag = (mod + "_" + name).replace(".", "_").strip("_")
        words = "%s.%s" % (mod, name) + ("" if mod == "torch._utils" else "|forbidden global")
        pickle_case("global_%s" % tag, b"\x80\x02" + glob2(mod, name) + call(arg) + b".", words,
                    "GLOBAL %s.%s (protocol 2)" % (mod, name))
        pickle_case("stack_global_%s" % tag, b"\x80\x04" + glob4(mod, name) + call(arg) + b".", words,
                    "STACK_GLOBAL %s.%s (protocol 4)" % (mod, name))
    # __reduce__ chains: a forbidden call hidden inside an allowed one, or reached by getattr
    od = glob2("collections", "OrderedDict")
    pickle_case("reduce_chain_ordereddict", b"\x80\x02" + od + b"(" + glob2("os", "system") + call(SHELL)
                + b"tR.", "forbidden global os.system", "OrderedDict(os.system(...)): the forbidden call is an argument")
    pickle_case("reduce_chain_getattr", b"\x80\x02" + glob2("builtins", "getattr") + b"(" + glob2("builtins", "__import__")
                + b"(X\x02\x00\x00\x00ostRX\x06\x00\x00\x00systemtR" + call(SHELL) + b".", "forbidden global",
                "getattr(__import__('os'), 'system')(...)")
    pickle_case("reduce_on_allowed_result", b"\x80\x02" + od + b")R" + call(SHELL) + b".", "",
                "calling the result of OrderedDict() (REDUCE on a non-callable)")
    pickle_case("reduce_on_string", b"\x80\x02X\x06\x00\x00\x00system" + call(SHELL) + b".", "",
                "REDUCE on a plain string")
    pickle_case("newobj_forbidden", b"\x80\x02" + glob2("subprocess", "Popen") + b"(X\x05\x00\x00\x00touch"
                b"t\x81.", "", "NEWOBJ of subprocess.Popen")
    pickle_case("build_setstate", b"\x80\x02" + od + b")R" + glob2("os", "system") + b"b.", "",
                "BUILD with a forbidden global as the state")
    rebuild = mt.FakeTensor(mt.FakeStorage(mt.Reduce(eval, ("__import__('os').system('%s')" % SHELL,)), "0", 8),
                            0, (8,), (1,))
    pickle_case("rebuild_storage_from_eval", mt.torch_like_pickle({"t": rebuild}), "",
                "_rebuild_tensor_v2 whose storage type is builtins.eval(...)", {"0": b"\0" * 32})
    pickle_case("persistent_id_reduce", b"\x80\x02" + glob2("os", "system") + call(SHELL) + b"Q.", "",
                "BINPERSID whose id is os.system(...)")

    # deep recursion, huge memo indices, long strings and numbers
    pickle_case("deep_marks", b"\x80\x02" + b"(" * 20000 + b".", "", "20000 nested MARKs")
    pickle_case("deep_lists", b"\x80\x02" + b"]" * 20000 + b"a" * 19999 + b".", "",
                "a list nested 20000 deep as the state dict")
    pickle_case("deep_tuples", b"\x80\x02N" + b"\x85" * 20000 + b".", "", "a tuple nested 20000 deep")
    pickle_case("deep_dict_values", b"\x80\x02" + b"}X\x01\x00\x00\x00a" * 10000 + b"}" + b"s" * 10000 + b".", "",
                "dicts nested 10000 deep")
    pickle_case("memo_get_huge", b"\x80\x02j\xff\xff\xff\xff.", "memo", "LONG_BINGET 4294967295 (never put)")
    pickle_case("memo_put_huge", b"\x80\x02}r\xff\xff\xff\xffj\xff\xff\xff\xff.", "", "LONG_BINPUT 4294967295")
    pickle_case("memo_put_empty_stack", b"\x80\x02q\x00.", "", "BINPUT with an empty stack")
    pickle_case("memoize_empty_stack", b"\x80\x04\x94.", "", "MEMOIZE with an empty stack")
    pickle_case("memo_self_reference", b"\x80\x02]q\x00h\x00a.", "", "a list that contains itself")
    pickle_case("long4_huge", b"\x80\x02\x8b\xff\xff\xff\x7f\x00.", "", "LONG4 of 2 GB")
    pickle_case("long4_negative", b"\x80\x02\x8b\xff\xff\xff\xff.", "", "LONG4 of negative length")
    pickle_case("long1_255", b"\x80\x02\x8a\xff" + b"\x7f" * 255 + b".", "", "LONG1 of 255 bytes (beyond 64 bits)")
    pickle_case("binunicode_4g", b"\x80\x02X\xff\xff\xff\xff.", "", "BINUNICODE of 4 GB")
    pickle_case("binunicode8_2p63", b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f.", "", "BINUNICODE8 of 2^63 bytes")
    pickle_case("binbytes8_negative", b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xff.", "", "BINBYTES8 of -1 bytes")
    pickle_case("binunicode_bad_utf8", b"\x80\x02X\x02\x00\x00\x00\xc3\x28.", "", "BINUNICODE of invalid UTF-8")
    pickle_case("frame_huge", b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff}.", "", "FRAME of 2^64-1 bytes")
    pickle_case("setitems_odd", b"\x80\x02}(X\x01\x00\x00\x00au.", "", "SETITEMS with an odd number of items")
    pickle_case("dict_unhashable_key", b"\x80\x02}]Ns.", "", "a dict keyed by a list")

    # storages and tensors that lie about sizes
    def tensor_case(name, words, covers, storage, offset, size, stride, data, stype="FloatStorage"):
        pkl = mt.torch_like_pickle({"transformer.wte.weight": mt.FakeTensor(
            mt.FakeStorage(getattr(torch, stype), "0", storage), offset, size, stride)})
        pickle_case(name, pkl, words, covers, {"0": data})

    tensor_case("storage_numel_2p62", "", "storage numel 2^62 over 2048 bytes", 2 ** 62, 0, (64, 8), (8, 1),
                b"\0" * 2048)
    tensor_case("storage_half_odd_bytes", "", "HalfStorage over 1023 bytes", 512, 0, (64, 8), (8, 1), b"\0" * 1023,
                "HalfStorage")
    tensor_case("offset_2p62", "", "storage offset 2^62", 512, 2 ** 62, (64, 8), (8, 1), b"\0" * 2048)
    tensor_case("stride_overflow", "", "strides whose products overflow", 512, 0, (64, 8), (2 ** 62, 1), b"\0" * 2048)
    tensor_case("size_negative", "", "size -64", 512, 0, (-64, 8), (8, 1), b"\0" * 2048)
    tensor_case("stride_zero", "", "stride 0 (a broadcast view)", 8, 0, (64, 8), (0, 1), b"\0" * 32)
    tensor_case("long_storage_weight", "type", "the embedding as LongStorage of the right shape", 512, 0, (64, 8),
                (8, 1), b"\0" * 4096, "LongStorage")
    tensor_case("storage_type_unknown", "", "a QInt8Storage", 512, 0, (64, 8), (8, 1), b"\0" * 512, "QInt8Storage")

    # NaN/Inf weights
    for name, where, value in [("nan_wte", "transformer.wte.weight", float("nan")),
                               ("inf_c_proj", "transformer.h.0.mlp.c_proj.weight", float("inf"))]:
        for dtype, dname in [(torch.float32, "f32"), (torch.bfloat16, "bf16")]:
            s = torch_state(dtype)
            s[where].view(-1)[7] = value
            case(put("torch/%s_%s.bin" % (name, dname), torch_bytes(s)), "warns", where + "|1",
                 "%s in %s (%s)" % (value, where, dname))


# ---------------------------------------------------------------------------------------------
# GGUF

GGUF_TYPES = {"u8": 0, "i8": 1, "u16": 2, "i16": 3, "u32": 4, "i32": 5, "f32": 6, "bool": 7, "str": 8, "arr": 9,
              "u64": 10, "i64": 11, "f64": 12}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gkv(key, typ, raw):
    return gstr(key) + struct.pack("<I", GGUF_TYPES[typ]) + raw


def gguf_parts(ts=None, kv_extra=(), config=None, align=32, version=3, ggml=None):
    """The sections of a btlm4j GGUF file: [(label, bytes)], linear weights stored [out, in]."""
    ts = tensors() if ts is None else ts
    kvs = [gkv("general.architecture", "str", gstr("btlm")),
           gkv("btlm.config_json", "str", gstr(json.dumps(CONFIG if config is None else config))),
           gkv("btlm4j.linear_layout", "str", gstr("out_in"))] + list(kv_extra)
    infos, blobs, offset = [], [], 0
    for name, a in ts.items():
        if name.split("h.0.")[-1] in LINEAR:
            a = np.ascontiguousarray(a.T)
        typ = (ggml or {}).get(name, {np.dtype(np.float32): 0, np.dtype(np.float16): 1}[a.dtype])
        ne = list(reversed(a.shape))
        infos.append((name, gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
                      + struct.pack("<IQ", typ, offset)))
        blob = a.tobytes()
        blob += b"\0" * ((-len(blob)) % align)
        blobs.append((name, blob))
        offset += len(blob)
    parts = [("magic", b"GGUF"), ("version", struct.pack("<I", version)),
             ("tensor count", struct.pack("<Q", len(infos))), ("kv count", struct.pack("<Q", len(kvs)))]
    parts += [("kv %d" % i, kv) for i, kv in enumerate(kvs)]
    parts += [("info " + n, i) for n, i in infos]
    head = sum(len(p) for _, p in parts)
    parts.append(("padding", b"\0" * ((-head) % align)))
    parts += [("data " + n, b) for n, b in blobs]
    return parts


def gguf_cases():
    parts = gguf_parts()
    good = b"".join(p for _, p in parts)
    case(put("gguf/valid.gguf", good), "loads", "", "control: the valid tiny model as a btlm4j GGUF file")
    at = 0
    cuts = {}
    for label, p in parts:
        if len(p) == 0:
            continue
        cuts.setdefault(at, "before " + label)
        if len(p) > 8 and not label.startswith("data"):
            cuts.setdefault(at + len(p) // 2, "inside " + label)
        at += len(p)
    cuts[len(good) - 1] = "the last byte missing"
    for n, what in sorted(cuts.items()):
        if n >= len(good) - 4 and n != len(good) - 1:
            continue
        case(put("gguf/cut_%05d.gguf" % n, good[:n]), "refused", "", "GGUF truncated %s (%d bytes)" % (what, n))

    def gcase(name, words, covers, data):
        case(put("gguf/%s.gguf" % name, data), "refused", words, covers)

    def with_part(label, new):
        return b"".join(new if l == label else p for l, p in parts)

    gcase("magic_bad", "GGUF", "wrong magic", b"GGUX" + good[4:])
    gcase("version_1", "version", "GGUF version 1", with_part("version", struct.pack("<I", 1)))
    gcase("version_4", "version", "GGUF version 4", with_part("version", struct.pack("<I", 4)))
    gcase("version_big_endian", "endian", "a big-endian GGUF", with_part("version", struct.pack(">I", 3)))
    gcase("tensor_count_huge", "tensors", "2^63-1 tensors", with_part("tensor count", struct.pack("<Q", 2 ** 63 - 1)))
    gcase("tensor_count_negative", "tensors", "tensor count -1", with_part("tensor count", struct.pack("<q", -1)))
    gcase("kv_count_huge", "metadata", "2^40 metadata entries", with_part("kv count", struct.pack("<Q", 2 ** 40)))
    kv0 = dict(parts)["kv 0"]
    gcase("key_length_huge", "", "a key of 2^62 bytes", with_part("kv 0", struct.pack("<Q", 2 ** 62) + kv0[8:]))
    gcase("key_length_negative", "", "a key of -1 bytes", with_part("kv 0", struct.pack("<q", -1) + kv0[8:]))
    gcase("value_type_unknown", "type", "value type 13",
          with_part("kv 0", gstr("general.architecture") + struct.pack("<I", 13) + kv0[28 + 4:]))
    extra = lambda raw: b"".join(p for _, p in gguf_parts(kv_extra=[raw]))  # noqa: E731
    gcase("string_value_huge", "", "a string value of 2^63-1 bytes",
          extra(gkv("x.s", "str", struct.pack("<Q", 2 ** 63 - 1))))
    gcase("array_count_huge", "array", "an array of 2^62 u32",
          extra(gkv("x.a", "arr", struct.pack("<IQ", GGUF_TYPES["u32"], 2 ** 62))))
    gcase("array_count_negative", "array", "an array of -1 values",
          extra(gkv("x.a", "arr", struct.pack("<Iq", GGUF_TYPES["u8"], -1))))
    deep = struct.pack("<IQ", GGUF_TYPES["arr"], 1) * 2000 + struct.pack("<IQ", GGUF_TYPES["u8"], 0)
    gcase("array_deep", "nest", "arrays nested 2000 deep (recursion)", extra(gstr("x.deep") + struct.pack("<I", 9) + deep))
    gcase("array_of_strings_huge", "", "an array of 200000 empty strings claimed, 10 present",
          extra(gkv("x.a", "arr", struct.pack("<IQ", GGUF_TYPES["str"], 200000) + gstr("") * 10)))
    gcase("bool_2", "BOOL", "a BOOL of 2", extra(gkv("x.b", "bool", b"\x02")))
    gcase("u64_above_long", "UINT64", "a UINT64 above 2^63", extra(gkv("x.u", "u64", struct.pack("<Q", 2 ** 64 - 1))))
    gcase("duplicate_key", "twice", "general.architecture twice", extra(gkv("general.architecture", "str", gstr("btlm"))))
    case(put("gguf/key_bad_utf8.gguf", extra(gkv(b"\xff\xfe", "u8", b"\x01"))), "loads", "",
         "a metadata key of invalid UTF-8 (decoded leniently, never used)")
    for value, what in [(0, "0"), (3, "3"), (2 ** 31, "2^31")]:
        gcase("alignment_%s" % what.replace("^", ""), "alignment", "general.alignment " + what,
              b"".join(p for _, p in gguf_parts(kv_extra=[gkv("general.alignment", "u32", struct.pack("<I", value))])))
    gcase("alignment_type", "alignment", "general.alignment as a string",
          extra(gkv("general.alignment", "str", gstr("32"))))

    ln = "transformer.h.0.ln_1.weight"

    def info_case(name, words, covers, body):
        gcase(name, words, covers, with_part("info " + ln, gstr(ln) + body))

    info_case("ndims_0", "dimensions", "n_dims 0", struct.pack("<IIQ", 0, 0, 0))
    info_case("ndims_5", "dimensions", "n_dims 5", struct.pack("<I5QIQ", 5, 1, 1, 1, 1, 8, 0, 0))
    info_case("ndims_huge", "dimensions", "n_dims 2^32-1", struct.pack("<I", 0xFFFFFFFF) + b"\0" * 16)
    info_case("ne_overflow", "overflow", "ne [2^32, 2^32]", struct.pack("<IQQIQ", 2, 2 ** 32, 2 ** 32, 0, 0))
    info_case("ne_overflow_bytes", "", "ne [2^62] of F32: the bytes overflow", struct.pack("<IQIQ", 1, 2 ** 62, 0, 0))
    info_case("ne_zero", "", "ne [0]", struct.pack("<IQIQ", 1, 0, 0, 0))
    info_case("ne_negative", "", "ne [-8]", struct.pack("<IqIQ", 1, -8, 0, 0))
    info_case("type_q4_k", "not supported", "ggml type Q4_K", struct.pack("<IQIQ", 1, 8, 12, 0))
    info_case("type_huge", "not supported", "ggml type 2^32-1", struct.pack("<IQIQ", 1, 8, 0xFFFFFFFF, 0))
    info_case("type_f16_lie", "", "F16 claimed over F32 bytes: fits, but shapes lie", struct.pack("<IQIQ", 1, 16, 1, 0))
    info_case("type_q8_0_unaligned", "block", "Q8_0 with ne[0] = 8", struct.pack("<IQIQ", 1, 8, 8, 0))
    info_case("offset_misaligned", "alignment", "data offset 7", struct.pack("<IQIQ", 1, 8, 0, 7))
    info_case("offset_past_end", "past the end", "data offset 2^40", struct.pack("<IQIQ", 1, 8, 0, 2 ** 40))
    info_case("offset_negative", "", "data offset -32", struct.pack("<IQIq", 1, 8, 0, -32))
    info_case("offset_overlap", "overlap", "ln_1.weight over the bytes of wte", struct.pack("<IQIQ", 1, 8, 0, 0))
    dup = dict(parts)["info " + ln].replace(gstr(ln), gstr("transformer.wte.weight"), 1)
    gcase("name_duplicate", "twice", "ln_1.weight renamed to wte: a tensor name given twice",
          with_part("info " + ln, dup))

    for name, words, covers, arch, layout, cfg in [
            ("arch_llama", "architecture", "a llama GGUF", "llama", "out_in", CONFIG),
            ("layout_unknown", "layout", "an unknown linear layout", "btlm", "in_out", CONFIG),
            ("config_not_json", "not a JSON object", "btlm.config_json not JSON", "btlm", "out_in", None),
            ("config_bad", "n_head", "btlm.config_json with n_head 3", "btlm", "out_in", dict(CONFIG, n_head=3))]:
        kvs = [gkv("general.architecture", "str", gstr(arch)),
               gkv("btlm.config_json", "str", gstr("{not json" if cfg is None else json.dumps(cfg))),
               gkv("btlm4j.linear_layout", "str", gstr(layout))]
        ps = [(l, kvs[int(l[3:])] if l.startswith("kv ") and l != "kv count" else p) for l, p in parts]
        gcase(name, words, covers, b"".join(p for _, p in ps))
    gcase("tokens_not_strings", "non-string", "tokenizer.ggml.tokens of integers",
          b"".join(p for _, p in gguf_parts(kv_extra=[
              gkv("tokenizer.ggml.tokens", "arr", struct.pack("<IQ", GGUF_TYPES["u32"], 2) + b"\0" * 8),
              gkv("tokenizer.ggml.merges", "arr", struct.pack("<IQ", GGUF_TYPES["str"], 0))])))
    gcase("missing_tensor", "missing tensor", "no ln_f.bias",
          b"".join(p for _, p in gguf_parts(ts=collections.OrderedDict(
              (n, a) for n, a in tensors().items() if n != "transformer.ln_f.bias"))))
    t = tensors()
    t["transformer.wte.weight"].flat[0] = np.nan
    t["transformer.h.0.attn.c_attn.weight"].flat[1] = np.inf
    case(put("gguf/nan_inf.gguf", b"".join(p for _, p in gguf_parts(ts=t))), "warns",
         "transformer.wte.weight|transformer.h.0.attn.c_attn.weight", "NaN in wte and Inf in c_attn")
    # Q8_0 wte with a NaN scale in one block
    q = tensors()
    wte = q.pop("transformer.wte.weight")
    blocks = bytearray()
    for row in wte.reshape(-1, 8):
        scale = np.float16(np.max(np.abs(row)) / 127)
        qs = np.round(row / np.float32(scale)).astype(np.int8)
        blocks += scale.tobytes() + qs.tobytes() + b"\0" * 24
    blocks[0:2] = np.float16(np.nan).tobytes()
    qparts = gguf_parts(ts=q)
    # a Q8_0 tensor of ne [32, 64] (rows padded to one block of 32), appended after the others
    head_parts = [(l, p) for l, p in qparts if not l.startswith("data") and l != "padding"]
    data_parts = [(l, p) for l, p in qparts if l.startswith("data")]
    data_len = sum(len(p) for _, p in data_parts)
    info = gstr("transformer.wte.weight") + struct.pack("<IQQIQ", 2, 32, 64, 8, data_len)
    head_parts = [(l, struct.pack("<Q", len(q) + 1) if l == "tensor count" else p) for l, p in head_parts]
    head = b"".join(p for _, p in head_parts) + info
    head += b"\0" * ((-len(head)) % 32)
    case(put("gguf/nan_q8_0_scale.gguf", head + b"".join(p for _, p in data_parts) + bytes(blocks)), "warns",
         "transformer.wte.weight", "a Q8_0 block whose scale is NaN")


# ---------------------------------------------------------------------------------------------
# sharded checkpoints whose index disagrees with the shards, hostile config.json files

def model_dir(rel, files, expect, words, covers):
    d = os.path.join(OUT, rel)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
    case(rel, expect, words, covers)


def sharded_cases():
    ts = tensors()
    names = list(ts)
    half = len(names) // 2
    a = collections.OrderedDict((n, ts[n]) for n in names[:half])
    b = collections.OrderedDict((n, ts[n]) for n in names[half:])
    sa, sb = st_bytes(st_header(a), st_data(a)), st_bytes(st_header(b), st_data(b))
    cfg = json.dumps(CONFIG)
    wm = {n: "model-00001-of-00002.safetensors" for n in a}
    wm.update({n: "model-00002-of-00002.safetensors" for n in b})

    def sh(name, expect, words, covers, weight_map=None, shards=None, index=None):
        files = {"config.json": cfg, "model.safetensors.index.json":
                 index if index is not None else json.dumps({"metadata": {}, "weight_map": weight_map or wm})}
        files.update(shards if shards is not None else
                     {"model-00001-of-00002.safetensors": sa, "model-00002-of-00002.safetensors": sb})
        model_dir("sharded/" + name, files, expect, words, covers)

    sh("valid", "loads", "", "control: two valid shards and their index")
    sh("index_wrong_shard", "refused", "says tensor", "the index puts a tensor in the other shard",
       weight_map=dict(wm, **{names[0]: "model-00002-of-00002.safetensors"}))
    sh("index_extra_tensor", "refused", "does not contain", "the index lists a tensor no shard has",
       weight_map=dict(wm, **{"transformer.h.0.extra.weight": "model-00001-of-00002.safetensors"}))
    sh("tensor_in_both_shards", "refused", "", "a tensor stored in both shards",
       shards={"model-00001-of-00002.safetensors": sa,
               "model-00002-of-00002.safetensors": st_bytes(st_header(collections.OrderedDict(
                   list(b.items()) + [(names[0], ts[names[0]])])), st_data(collections.OrderedDict(
                       list(b.items()) + [(names[0], ts[names[0]])])))})
    sh("shard_missing", "refused", "not found", "the index names a shard that is not there",
       shards={"model-00001-of-00002.safetensors": sa})
    sh("index_path_traversal", "refused", "not a file name", "the index names ../../etc/passwd",
       weight_map=dict(wm, **{names[0]: "../../etc/passwd"}))
    sh("index_absolute_path", "refused", "not a file name", "the index names /etc/passwd",
       weight_map=dict(wm, **{names[0]: "/etc/passwd"}))
    sh("index_names_itself", "refused", "", "the index names itself as a shard",
       weight_map=dict(wm, **{names[0]: "model.safetensors.index.json"}))
    sh("index_not_json", "refused", "JSON", "the index is not JSON", index="{\"weight_map\": ")
    sh("index_deep", "refused", "JSON", "the index nested 20000 deep", index="[" * 20000 + "]" * 20000)
    sh("index_empty_map", "refused", "weight_map", "an empty weight_map", index=json.dumps({"weight_map": {}}))
    sh("index_map_not_strings", "refused", "weight_map", "a weight_map of numbers",
       weight_map=dict(wm, **{names[0]: 1}))
    sh("shard_truncated", "refused", "", "the second shard cut short",
       shards={"model-00001-of-00002.safetensors": sa, "model-00002-of-00002.safetensors": sb[:len(sb) // 2]})
    sh("shard_is_torch", "refused", "", "a shard that is a PyTorch zip",
       shards={"model-00001-of-00002.safetensors": sa,
               "model-00002-of-00002.safetensors": torch_bytes(collections.OrderedDict(
                   (n, torch.from_numpy(t.copy())) for n, t in b.items()))})
    # a torch-sharded model whose index disagrees
    ta = torch_bytes(collections.OrderedDict((n, torch.from_numpy(t.copy())) for n, t in a.items()))
    tb = torch_bytes(collections.OrderedDict((n, torch.from_numpy(t.copy())) for n, t in b.items()))
    bwm = {n: "pytorch_model-00001-of-00002.bin" for n in a}
    bwm.update({n: "pytorch_model-00002-of-00002.bin" for n in b})
    bwm[names[-1]] = "pytorch_model-00001-of-00002.bin"
    model_dir("sharded/bin_index_wrong_shard", {"config.json": cfg, "pytorch_model.bin.index.json":
              json.dumps({"weight_map": bwm}), "pytorch_model-00001-of-00002.bin": ta,
              "pytorch_model-00002-of-00002.bin": tb}, "refused", "says tensor",
              "a .bin index that puts a tensor in the wrong shard")

    weights = st_bytes(st_header(ts), st_data(ts))

    def cc(name, words, covers, config_text):
        model_dir("config/" + name, {"config.json": config_text, "model.safetensors": weights}, "refused", words,
                  covers)

    cc("n_layer_huge", "", "n_layer 2147483647 with a one-layer checkpoint", json.dumps(dict(CONFIG, n_layer=2 ** 31 - 1)))
    cc("n_embd_huge", "", "n_embd 2147483646", json.dumps(dict(CONFIG, n_embd=2 ** 31 - 2)))
    model_dir("config/n_positions_huge", {"config.json": json.dumps(dict(CONFIG, n_positions=2 ** 31 - 1)),
              "model.safetensors": weights}, "loads", "",
              "n_positions 2147483647 with ALiBi: valid, and the KV cache is not sized by it at load")
    cc("vocab_huge", "", "vocab_size 2147483647", json.dumps(dict(CONFIG, vocab_size=2 ** 31 - 1)))
    cc("n_head_0", "n_head", "n_head 0", json.dumps(dict(CONFIG, n_head=0)))
    cc("n_head_3", "n_head", "n_head 3 does not divide 8", json.dumps(dict(CONFIG, n_head=3)))
    cc("n_embd_negative", "n_embd", "n_embd -8", json.dumps(dict(CONFIG, n_embd=-8)))
    cc("n_embd_2p40", "n_embd", "n_embd 2^40", json.dumps(dict(CONFIG, n_embd=2 ** 40)))
    cc("n_embd_float", "n_embd", "n_embd 8.5", json.dumps(dict(CONFIG, n_embd=8.5)))
    cc("epsilon_inf", "layer_norm_epsilon", "layer_norm_epsilon 1e400", json.dumps(CONFIG).replace(
        "\"layer_norm_epsilon\": 1e-05", "\"layer_norm_epsilon\": 1e400"))
    cc("bos_negative", "bos_token_id", "bos_token_id -1", json.dumps(dict(CONFIG, bos_token_id=-1)))
    cc("not_json", "JSON", "config.json is not JSON", "{\"n_embd\": 8,")
    cc("array", "object", "config.json is an array", "[]")
    cc("deep", "JSON", "config.json nested 20000 deep", "{\"a\":" + "[" * 20000 + "]" * 20000 + "}")
    cc("model_type_llama", "model_type", "model_type llama", json.dumps(dict(CONFIG, model_type="llama")))
    cc("alibi_factor_nan", "alibi_scaling", "alibi_scaling factor 1e400",
       json.dumps(dict(CONFIG, alibi_scaling={"type": "linear", "factor": 2})).replace("\"factor\": 2", "\"factor\": 1e400"))


# ---------------------------------------------------------------------------------------------
# the fuzzers' seeds

def seeds():
    def seed(test, target, name, data):
        d = os.path.join(RES, test.replace(".", "/") + "Inputs", target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())

    cf = "org.btlm4j.checkpoint.CheckpointFuzzTest"
    ts = tensors(np.float16)
    small = collections.OrderedDict(list(ts.items())[:3])
    st = st_bytes(dict(st_header(small), __metadata__={"format": "pt"}), st_data(small))
    seed(cf, "safetensors", "three-tensors", st)
    small_gguf = b"".join(p for _, p in gguf_parts(ts=collections.OrderedDict(list(tensors(np.float16).items())[:2]),
                                                    kv_extra=[gkv("x.arr", "arr", struct.pack("<IQ", 4, 2) + b"\1\0\0\0\2\0\0\0")]))
    seed(cf, "gguf", "two-tensors", small_gguf)
    with open(os.path.join(RES, "gguf", "llamacpp.gguf"), "rb") as f:
        seed(cf, "gguf", "llamacpp", f.read())
    small_torch = torch_bytes(collections.OrderedDict((n, torch.from_numpy(a.copy())) for n, a in small.items()))
    seed(cf, "torchFile", "three-tensors", small_torch)
    seed(cf, "zipDirectory", "three-tensors", small_torch)
    seed(cf, "zipDirectory", "zip64", zip_bytes([("a/data.pkl", b"\x80\x02}."), ("a/data/0", b"\0" * 8)], zip64=True))
    # data.pkl seeds over the fuzz target's four 64-byte storages
    st = [mt.FakeStorage(torch.FloatStorage, str(i), 16) for i in range(4)]
    seed(cf, "pickle", "four-tensors", mt.torch_like_pickle(collections.OrderedDict([
        ("a", mt.FakeTensor(st[0], 0, (4, 4), (4, 1))), ("b", mt.FakeTensor(st[1], 4, (3,), (1,))),
        ("c", mt.FakeTensor(st[2], 0, (2, 8), (8, 1))), ("d", mt.FakeTensor(st[0], 2, (2,), (1,)))])))
    seed(cf, "pickle", "protocol4", mt.torch_like_pickle({"w": mt.FakeTensor(
        mt.FakeStorage(torch.HalfStorage, "3", 32), 0, (32,), (1,))}, protocol=4))
    seed(cf, "pickle", "globals", b"\x80\x02c__builtin__\nset\n(X\x01\x00\x00\x00atR}(K\x01G?\xf0\x00\x00\x00\x00\x00"
         b"\x00\x88\x89N\x8a\x02\x01\x01C\x01a]\x85\x86\x87uq\x00h\x00\x94.")
    tf = "org.btlm4j.tokenizer.TokenizerFuzzTest"
    texts = ["Hello, world! It's 2024 — naïve café 🙂 日本語", "<|endoftext|>", "  \t\n\r  x  ", "'s'll'd 're",
             "a<|endoftext|>b<|endoftext|>"]
    for i, t in enumerate(texts):
        seed(tf, "bytesRoundTrip", str(i), t.encode())
        seed(tf, "textRoundTrip", str(i), t.encode("utf-16-le"))
    seed(tf, "bytesRoundTrip", "invalid-utf8", b"\xff\xc3(\xed\xa0\x80\xf0\x9f")
    seed(tf, "textRoundTrip", "lone-surrogates", struct.pack("<4H", 0xD800, 0x41, 0xDC00, 0xD83D))
    seed(tf, "decodeIds", "0", bytes(range(0, 256, 7)))
    mf = "org.btlm4j.model.BtlmConfigFuzzTest"
    with open(os.path.join(RES, "fixtures", "btlm-tiny", "config.json"), "rb") as f:
        seed(mf, "configJson", "btlm-tiny", f.read())
    seed(mf, "configJson", "gpt2", json.dumps({"model_type": "gpt2", "n_embd": 16, "n_head": 2, "n_layer": 1,
                                               "vocab_size": 100, "bos_token_id": 0, "eos_token_id": 0,
                                               "alibi_scaling": {"type": "linear", "train_seq_len": 8}}))
    seed(mf, "configFields", "0", bytes(range(64)))


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=1)
    safetensors_cases()
    torch_cases()
    gguf_cases()
    sharded_cases()
    seeds()
    with open(os.path.join(OUT, "manifest.tsv"), "w") as f:
        f.write("# path\texpectation\twords the message or warnings must all contain, separated by |\tcovers\n")
        for row in manifest:
            f.write("\t".join(row) + "\n")
    assert not os.path.exists(SENTINEL)
    print("%d cases in %s" % (len(manifest), OUT))


if __name__ == "__main__":
    main()
