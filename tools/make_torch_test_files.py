#!/usr/bin/env python3
"""Generate the small PyTorch checkpoints that TorchCheckpointTest reads.

Writes into btlm4j-core/src/test/resources/torch/ (or the directory given as the first argument):

* valid checkpoints written by the real ``torch.save`` (several dtypes, storage-offset views,
  shared storages, nn.Parameter, a module state_dict with ``_metadata``, nested
  ``state_dict``/``model`` dicts, pickle protocol 4, saved to a buffer), plus ZIP64 re-packs of a
  real ``torch.save`` archive;
* ``expected.json``: for every valid file, each tensor's dtype, shape and values (as numbers);
* hostile or broken files the reader must reject with a CheckpointException: pickles that name
  ``os.system``, ``builtins.eval``, ``subprocess.Popen`` (their bytes are only *built* here, never
  unpickled), forbidden opcodes, truncated and inconsistent zips, tensors whose
  size/offset/stride do not fit their storage, the legacy (pre-1.6) format and so on.

The hostile pickles all try to create SENTINEL; the Java test checks that it never appears.

Needs torch (Debian's python3-torch 1.13 was used) and numpy. Run from anywhere:
    /usr/bin/python3 tools/make_torch_test_files.py
"""
import collections
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile
import zlib

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "btlm4j-core", "src", "test", "resources", "torch")
SENTINEL = "/tmp/btlm4j-torch-pickle-sentinel"

DTYPE_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}

expected = {}


def path(name):
    return os.path.join(OUT, name)


def describe(t):
    """dtype, shape and the values (row-major) of a tensor, for expected.json."""
    if t.dtype == torch.bool:
        values = [int(v) for v in t.flatten().tolist()]
    elif t.dtype.is_floating_point:
        values = t.double().flatten().tolist()  # bf16/f16/f32 values are exact as doubles
    else:
        values = t.flatten().tolist()
    return {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "values": values}


def save_valid(name, obj, tensors=None, **kwargs):
    """torch.save obj to name and record the tensors the reader must return (default: obj itself)."""
    torch.save(obj, path(name), **kwargs)
    record(name, obj if tensors is None else tensors)


def record(name, tensors):
    expected[name] = {k: describe(v) for k, v in tensors.items()}
    # sanity: torch itself reads it back to the same values
    loaded = torch.load(path(name))
    flat = loaded
    for key in ("state_dict", "model"):
        if isinstance(loaded, dict) and key in loaded and not isinstance(loaded[key], torch.Tensor):
            flat = loaded[key]
    for k, v in tensors.items():
        assert torch.equal(flat[k], v), (name, k)


# ---------------------------------------------------------------------------------------------
# A small zip writer laid out like torch's (stored entries, data 64-byte aligned), which can also
# force ZIP64 structures everywhere (the layout torch uses for > 4 GB files).

def write_zip(file, entries, zip64=False, align=64, deflate=(), patch_cd_size=None):
    """entries: list of (name, bytes). deflate: names to store deflated (method 8).
    patch_cd_size: {name: size} to write a wrong uncompressed/compressed size in the central directory."""
    out = bytearray()
    central = []
    for name, data in entries:
        nb = name.encode()
        method = 8 if name in deflate else 0
        if method == 8:
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            payload = c.compress(data) + c.flush()
        else:
            payload = data
        crc = zlib.crc32(data)
        offset = len(out)
        extra = b""
        if zip64:
            extra += struct.pack("<HHQQ", 1, 16, len(data), len(payload))
        if align:
            pad = (-(offset + 30 + len(nb) + len(extra) + 4)) % align
            extra += struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        version = 45 if zip64 else 20
        csize = 0xFFFFFFFF if zip64 else len(payload)
        usize = 0xFFFFFFFF if zip64 else len(data)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, version, 0x0800, method, 0, 0x21, crc, csize, usize,
                           len(nb), len(extra))
        out += nb + extra + payload
        central.append((nb, method, crc, len(payload), len(data), offset, version))
    cd_offset = len(out)
    for nb, method, crc, csize, usize, offset, version in central:
        name = nb.decode()
        if patch_cd_size and name in patch_cd_size:
            csize = usize = patch_cd_size[name]
        if zip64:
            extra = struct.pack("<HHQQQ", 1, 24, usize, csize, offset)
            csize32 = usize32 = offset32 = 0xFFFFFFFF
        else:
            extra = b""
            csize32, usize32, offset32 = csize, usize, offset
        out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, version, version, 0x0800, method, 0, 0x21, crc,
                           csize32, usize32, len(nb), len(extra), 0, 0, 0, 0, offset32)
        out += nb + extra
    cd_size = len(out) - cd_offset
    n = len(central)
    if zip64:
        eocd64 = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, cd_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, eocd64, 1)
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_size, cd_offset, 0)
    with open(file, "wb") as f:
        f.write(out)


def torch_entries(obj, **kwargs):
    """The (name, bytes) entries of a real torch.save archive of obj."""
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def pickle_zip(name, pkl, storages=None, extra_entries=()):
    """A torch-style zip whose data.pkl is the given bytes (never unpickled here)."""
    entries = [("archive/data.pkl", pkl)]
    for key, data in (storages or {}).items():
        entries.append(("archive/data/" + key, data))
    entries += list(extra_entries)
    entries.append(("archive/version", b"3\n"))
    write_zip(path(name), entries)


# ---------------------------------------------------------------------------------------------
# Pickles with the torch tensor protocol but values torch would never write: a Pickler that
# emits torch's own persistent ids and _rebuild_tensor_v2 reductions for stand-in objects.

class FakeStorage:
    def __init__(self, stype, key, numel, tag="storage"):
        self.stype, self.key, self.numel, self.tag = stype, key, numel, tag


class FakeTensor:
    def __init__(self, storage, offset, size, stride, extra_args=()):
        self.storage, self.offset, self.size, self.stride, self.extra_args = storage, offset, size, stride, extra_args


class TorchLikePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return (obj.tag, obj.stype, obj.key, "cpu", obj.numel)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, FakeTensor):
            return (torch._utils._rebuild_tensor_v2,
                    (obj.storage, obj.offset, obj.size, obj.stride, False, collections.OrderedDict())
                    + tuple(obj.extra_args))
        return NotImplemented


def torch_like_pickle(obj, protocol=2):
    buf = io.BytesIO()
    TorchLikePickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


class Reduce:
    """Pickles as func(*args); only ever serialised here."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def f32_bytes(values):
    return struct.pack("<%df" % len(values), *values)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".pt") or f == "expected.json":
            os.remove(path(f))
    torch.manual_seed(1234)

    # ---- valid checkpoints, written by torch.save ---------------------------------------------
    dtypes = collections.OrderedDict()
    dtypes["f64"] = torch.tensor([1.5, -2.25, 1e300], dtype=torch.float64)
    dtypes["f32"] = torch.randn(2, 3)
    dtypes["f16"] = torch.randn(4).half()
    dtypes["bf16"] = torch.randn(2, 2).bfloat16()
    dtypes["i64"] = torch.tensor([-(2 ** 40), 7, 2 ** 62], dtype=torch.int64)
    dtypes["i32"] = torch.tensor([[-5, 6], [2 ** 30, 0]], dtype=torch.int32)
    dtypes["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    dtypes["i8"] = torch.tensor([-128, 127, 0], dtype=torch.int8)
    dtypes["u8"] = torch.tensor([0, 200, 255], dtype=torch.uint8)
    dtypes["bool"] = torch.tensor([True, False, True])
    dtypes["scalar"] = torch.tensor(3.25)
    dtypes["empty"] = torch.zeros(0, 3)
    dtypes["ones_1x1x2"] = torch.ones(1, 1, 2, dtype=torch.bfloat16)
    save_valid("dtypes.pt", dtypes)

    base = torch.arange(12, dtype=torch.float32)
    m = torch.arange(12, dtype=torch.bfloat16).reshape(3, 4)
    views = {
        "base": base,
        "offset_view": base[3:],           # storage offset 3, contiguous
        "middle": base[5:9].view(2, 2),    # storage offset 5
        "row": m[1],                        # offset 4 in a bf16 storage
        "row2d": m[1:2, :],                 # size-1 dim: stride (4, 1) is fine
        "unsqueezed": base[2:6].unsqueeze(1).unsqueeze(0),  # (1, 4, 1) with size-1 strides
        "expanded_size1": torch.arange(3, dtype=torch.float16).as_strided((3, 1), (1, 7)),
    }
    save_valid("views.pt", views)

    x = torch.randn(2, 3).half()
    shared = {"w": x, "tied": x, "alias": x.view(3, 2), "second_row": x[1]}
    save_valid("shared.pt", shared)

    params = {"weight": torch.nn.Parameter(torch.randn(2, 3)),
              "frozen": torch.nn.Parameter(torch.ones(2, dtype=torch.bfloat16), requires_grad=False)}
    save_valid("parameter.pt", params, {k: v.detach() for k, v in params.items()})

    module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    state = module.state_dict()  # OrderedDict with _metadata: pickled with BUILD
    save_valid("module_state.pt", state)

    inner = {"a": torch.randn(3), "b": torch.arange(4, dtype=torch.int64)}
    save_valid("nested_state_dict.pt", {"state_dict": inner, "epoch": 3, "optimizer": "adam"}, inner)
    save_valid("nested_model.pt", {"model": inner, "step": 5}, inner)
    save_valid("protocol4.pt", dtypes, pickle_protocol=4)  # FRAME, SHORT_BINUNICODE, STACK_GLOBAL, MEMOIZE
    save_valid("empty.pt", {})

    buf = io.BytesIO()  # saved to a buffer: archive prefix "archive"
    torch.save({"v": torch.arange(5, dtype=torch.float32)}, buf)
    with open(path("buffer_saved.pt"), "wb") as f:
        f.write(buf.getvalue())
    record("buffer_saved.pt", {"v": torch.arange(5, dtype=torch.float32)})

    # ZIP64 everywhere (sizes/offsets 0xFFFFFFFF with zip64 extra fields, zip64 end records): the
    # layout torch writes for > 4 GB checkpoints, re-packed from a real torch.save archive.
    write_zip(path("zip64.pt"), torch_entries(shared), zip64=True)
    record("zip64.pt", shared)
    # Python's zipfile with force_zip64: zip64 extra fields in the local headers only.
    with zipfile.ZipFile(path("zip64_local.pt"), "w", zipfile.ZIP_STORED) as z:
        for n, data in torch_entries(views):
            with z.open(n, "w", force_zip64=True) as w:
                w.write(data)
    record("zip64_local.pt", views)

    # ---- rejected: not tensor checkpoints ----------------------------------------------------
    torch.save([torch.ones(2)], path("list_top.pt"))
    torch.save(torch.ones(2), path("bare_tensor.pt"))
    torch.save({"a": torch.ones(2), "b": 3}, path("mixed_values.pt"))
    torch.save({0: torch.ones(2)}, path("int_key.pt"))
    torch.save({"c": torch.ones(2, dtype=torch.complex64)}, path("complex.pt"))
    torch.save({"t": torch.arange(6.0).reshape(2, 3).t()}, path("noncontig_transpose.pt"))
    torch.save({"col": torch.arange(12.0).reshape(3, 4)[:, 1:2]}, path("noncontig_column.pt"))
    torch.save({"a": torch.ones(2)}, path("legacy.pt"), _use_new_zipfile_serialization=False)
    torch.save({"state_dict": inner, "model": inner}, path("both_nested.pt"))
    torch.save({"state_dict": {"a": torch.ones(2), "n": 1}, "epoch": 1}, path("nested_not_tensor.pt"))
    torch.save({"s": torch.eye(2).to_sparse()}, path("sparse.pt"))
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 1)), path("torchscript.pt"))

    # ---- hostile pickles (built, never unpickled) ---------------------------------------------
    cmd = ("touch " + SENTINEL).encode()
    pickle_zip("os_system_handmade.pt",
               b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(cmd)) + cmd + b"\x85R.")
    pickle_zip("posix_system.pt", pickle.dumps({"x": Reduce(os.system, "touch " + SENTINEL)}, protocol=2))
    pickle_zip("builtins_eval.pt",
               pickle.dumps(Reduce(eval, "__import__('os').system('touch %s')" % SENTINEL), protocol=2))
    pickle_zip("builtins_eval_p4.pt",
               pickle.dumps(Reduce(eval, "open('%s','w')" % SENTINEL), protocol=4))  # STACK_GLOBAL
    # protocol 2 writes Python 2 module names (fix_imports): this one says commands.Popen
    pickle_zip("subprocess_popen.pt",
               pickle.dumps({"x": Reduce(subprocess.Popen, ["touch", SENTINEL])}, protocol=2))
    pickle_zip("subprocess_popen_p4.pt",
               pickle.dumps({"x": Reduce(subprocess.Popen, ["touch", SENTINEL])}, protocol=4))
    # an allowed-looking callable name in a forbidden module, and a forbidden torch function
    pickle_zip("torch_load_global.pt", pickle.dumps(Reduce(torch.load, SENTINEL), protocol=2))
    # INST and OBJ: protocol 0/1 ways to call a class
    pickle_zip("inst_opcode.pt", b"\x80\x02(X\x04\x00\x00\x00trueios\nsystem\n.")
    pickle_zip("obj_opcode.pt", b"\x80\x02(}o.")
    pickle_zip("ext1_opcode.pt", b"\x80\x02\x82\x01.")
    # (100k-deep nesting would make 300 KB files: TorchCheckpointTest builds those itself)
    pickle_zip("memo_missing.pt", b"\x80\x02}h\x05.")
    pickle_zip("string_past_end.pt", b"\x80\x02X\xff\xff\xff\x7fabc.")
    pickle_zip("no_stop.pt", b"\x80\x02}q\x00(X\x01\x00\x00\x00a")
    pickle_zip("stack_underflow.pt", b"\x80\x02s.")

    # ---- torch-shaped pickles with impossible tensors ------------------------------------------
    fs = torch.FloatStorage
    four = f32_bytes([1, 2, 3, 4])
    pickle_zip("offset_out_of_range.pt",
               torch_like_pickle({"t": FakeTensor(FakeStorage(fs, "0", 4), 3, (2,), (1,))}), {"0": four})
    pickle_zip("storage_entry_short.pt",
               torch_like_pickle({"t": FakeTensor(FakeStorage(fs, "0", 8), 0, (8,), (1,))}), {"0": four})
    pickle_zip("size_overflow.pt",
               torch_like_pickle({"t": FakeTensor(FakeStorage(fs, "0", 4), 0, (2 ** 40, 2 ** 40), (2 ** 40, 1))}),
               {"0": four})
    pickle_zip("negative_size.pt",
               torch_like_pickle({"t": FakeTensor(FakeStorage(fs, "0", 4), 0, (-1,), (1,))}), {"0": four})
    pickle_zip("negative_offset.pt",
               torch_like_pickle({"t": FakeTensor(FakeStorage(fs, "0", 4), -1, (2,), (1,))}), {"0": four})
    pickle_zip("stride_rank_mismatch.pt",
               torch_like_pickle({"t": FakeTensor(FakeStorage(fs, "0", 4), 0, (2, 2), (1,))}), {"0": four})
    pickle_zip("missing_storage_entry.pt",
               torch_like_pickle({"t": FakeTensor(FakeStorage(fs, "7", 4), 0, (4,), (1,))}), {"0": four})
    pickle_zip("bad_persistent_id.pt",
               torch_like_pickle({"t": FakeTensor(FakeStorage(fs, "0", 4, tag="module"), 0, (4,), (1,))}),
               {"0": four})
    pickle_zip("rebuild_extra_args.pt",
               torch_like_pickle({"t": FakeTensor(FakeStorage(fs, "0", 4), 0, (4,), (1,), (None, 1, 2))}),
               {"0": four})
    # big-endian byteorder record
    pickle_zip("big_endian.pt", torch_like_pickle({"t": FakeTensor(FakeStorage(fs, "0", 4), 0, (4,), (1,))}),
               {"0": four}, [("archive/byteorder", b"big")])
    # a good one from the same machinery (checks the hand-made zip writer and torch's own view of it)
    good = torch_like_pickle({"t": FakeTensor(FakeStorage(fs, "0", 4), 1, (3,), (1,))})
    pickle_zip("handmade_ok.pt", good, {"0": four}, [("archive/byteorder", b"little")])
    assert torch.equal(torch.load(path("handmade_ok.pt"))["t"], torch.tensor([2.0, 3.0, 4.0]))
    expected["handmade_ok.pt"] = {"t": describe(torch.tensor([2.0, 3.0, 4.0]))}

    # ---- broken zips ---------------------------------------------------------------------------
    with open(path("dtypes.pt"), "rb") as f:
        real = f.read()
    with open(path("truncated.pt"), "wb") as f:
        f.write(real[: len(real) // 2])
    with open(path("truncated_end.pt"), "wb") as f:
        f.write(real[:-10])  # end-of-central-directory record cut
    entries = torch_entries({"t": torch.arange(4, dtype=torch.float32)})
    data0 = [n for n, _ in entries if n.endswith("/data/0")][0]
    write_zip(path("entry_size_past_end.pt"), entries, patch_cd_size={data0: 0x7FFFFFF0})
    write_zip(path("entry_size_short.pt"), entries, patch_cd_size={data0: 8})
    write_zip(path("zip64_entry_size_past_end.pt"), entries, zip64=True, patch_cd_size={data0: 2 ** 62})
    write_zip(path("deflated_storage.pt"), entries, deflate={data0})
    # deflated data.pkl: rejected too (torch.save never compresses)
    pkl_name = [n for n, _ in entries if n.endswith("/data.pkl")][0]
    write_zip(path("deflated_pickle.pt"), entries, deflate={pkl_name})
    write_zip(path("no_data_pkl.pt"), [(n, d) for n, d in entries if not n.endswith("data.pkl")])
    write_zip(path("two_data_pkl.pt"), entries + [("other/data.pkl", dict(entries)[pkl_name])])
    write_zip(path("duplicate_entry.pt"), entries + [(data0, b"\0" * 16)])
    with open(path("not_a_checkpoint.pt"), "wb") as f:
        f.write(b"hello, this is not a checkpoint\n")
    with open(path("empty_file.pt"), "wb"):
        pass

    for f in os.listdir(OUT):
        size = os.path.getsize(path(f))
        assert size < 50_000, (f, size)
    with open(path("expected.json"), "w") as f:
        json.dump({"torch_version": torch.__version__, "sentinel": SENTINEL, "files": expected}, f, indent=1)
        f.write("\n")
    print("wrote %d files to %s (torch %s)" % (len(os.listdir(OUT)), OUT, torch.__version__))


if __name__ == "__main__":
    main()
