#!/usr/bin/env python3
"""Generate the small GGUF files that GgufInteropTest reads, with llama.cpp's own ``gguf`` package.

Writes into btlm4j-core/src/test/resources/gguf/ (or --out DIR):

* ``llamacpp.gguf``: written by ``gguf.GGUFWriter`` (default alignment 32): F32, F16, Q8_0 and
  Q4_0 tensors (the quantized ones from arbitrary bytes) and metadata of every value type;
* ``llamacpp-align64.gguf``: the same with ``general.alignment`` = 64;
* ``llamacpp.json``: what the Java reader must find in both: each metadata key's GGUF type and
  value, each tensor's ggml type, row-major shape and bytes (hex).

The ``gguf`` package is not part of this repository. Install it (``pip install --target DIR gguf``)
or point at llama.cpp's ``gguf-py`` directory:

    /usr/bin/python3 tools/make_gguf_test_files.py --gguf-py /path/to/gguf-py

``--dump FILE`` instead reads FILE with ``gguf.GGUFReader`` and prints its metadata and tensors
(used to check files written by btlm4j's GgufWriter).
"""
import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "btlm4j-core", "src", "test", "resources", "gguf")


def tensors():
    rng = np.random.default_rng(1234)
    f32 = (np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5) / 4
    f16 = np.linspace(-2, 2, 8, dtype=np.float16)
    f32_3d = rng.standard_normal((2, 3, 5)).astype(np.float32)
    # Q8_0: logical [2, 64] -> 2 rows of 2 blocks of 34 bytes; Q4_0: logical [3, 32] -> 3 rows of 18 bytes.
    q8 = rng.integers(0, 256, size=(2, 68), dtype=np.uint8)
    q4 = rng.integers(0, 256, size=(3, 18), dtype=np.uint8)
    return [
        ("blk.0.attn_norm.weight", f32, None, "F32", [3, 4]),
        ("token_scales", f16, None, "F16", [8]),
        ("cube", f32_3d, None, "F32", [2, 3, 5]),
        ("blk.0.ffn_up.weight", q8, "Q8_0", "Q8_0", [2, 64]),
        ("blk.0.ffn_down.weight", q4, "Q4_0", "Q4_0", [3, 32]),
    ]


METADATA = [
    # key, gguf type name, value
    ("general.architecture", "STRING", "btlm"),
    ("general.name", "STRING", "interop \u00e9\u00e8 \u2603"),
    ("test.uint8", "UINT8", 200),
    ("test.int8", "INT8", -100),
    ("test.uint16", "UINT16", 60000),
    ("test.int16", "INT16", -30000),
    ("test.uint32", "UINT32", 4000000000),
    ("test.int32", "INT32", -2000000000),
    ("test.float32", "FLOAT32", 0.25),
    ("test.bool", "BOOL", True),
    ("test.uint64", "UINT64", 9000000000000000000),
    ("test.int64", "INT64", -9000000000000000000),
    ("test.float64", "FLOAT64", 3.141592653589793),
    ("test.strings", "ARRAY", ["a", "", "\u00fcml", "Ġhello"]),
    ("test.ints", "ARRAY", [1, -2, 3]),
    ("test.floats", "ARRAY", [0.5, -1.5]),
]


def write(gguf, path, alignment):
    w = gguf.GGUFWriter(path, arch="btlm")  # adds general.architecture itself
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for key, kind, value in METADATA:
        if key == "general.architecture":
            continue
        if kind == "STRING":
            w.add_string(key, value)
        elif kind == "ARRAY":
            if key == "test.ints":
                w.add_key_value(key, value, gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.INT32)
            elif key == "test.floats":
                w.add_key_value(key, value, gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.FLOAT32)
            else:
                w.add_array(key, value)
        else:
            w.add_key_value(key, value, gguf.GGUFValueType[kind])
    for name, array, raw, _, _ in tensors():
        if raw is None:
            w.add_tensor(name, array)
        else:
            w.add_tensor(name, array, raw_dtype=gguf.GGMLQuantizationType[raw])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def expected(alignment_files):
    meta = {}
    for key, kind, value in METADATA:
        entry = {"type": kind, "value": value}
        if key == "test.ints":
            entry["element"] = "INT32"
        elif key == "test.floats":
            entry["element"] = "FLOAT32"
        elif key == "test.strings":
            entry["element"] = "STRING"
        meta[key] = entry
    ts = {}
    for name, array, _, ggml, shape in tensors():
        ts[name] = {"type": ggml, "shape": shape, "hex": np.ascontiguousarray(array).tobytes().hex()}
    return {"files": alignment_files, "metadata": meta, "tensors": ts}


def dump(gguf, path):
    r = gguf.GGUFReader(path)
    print(f"{path}: alignment {r.alignment}, {len(r.fields)} fields, {len(r.tensors)} tensors")
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        types = "/".join(t.name for t in field.types)
        value = field.contents()
        text = repr(value)
        print(f"  {name} [{types}] = {text[:120]}{'...' if len(text) > 120 else ''}")
    for t in r.tensors:
        data = np.asarray(t.data)
        print(f"  tensor {t.name}: {t.tensor_type.name} ne={list(int(x) for x in t.shape)} "
              f"offset={t.data_offset} nbytes={t.n_bytes} first={data.reshape(-1)[:4].tolist()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf-py", help="directory holding the gguf package (llama.cpp's gguf-py, or a pip --target)")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--dump", metavar="FILE", help="print FILE as gguf.GGUFReader reads it, write nothing")
    args = ap.parse_args()
    if args.gguf_py:
        sys.path.insert(0, args.gguf_py)
    import gguf

    if args.dump:
        dump(gguf, args.dump)
        return
    os.makedirs(args.out, exist_ok=True)
    files = {"llamacpp.gguf": 32, "llamacpp-align64.gguf": 64}
    for name, alignment in files.items():
        write(gguf, os.path.join(args.out, name), None if alignment == 32 else alignment)
    with open(os.path.join(args.out, "llamacpp.json"), "w", encoding="utf-8") as f:
        json.dump(expected(files), f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote", ", ".join(files), "and llamacpp.json to", args.out)


if __name__ == "__main__":
    main()
