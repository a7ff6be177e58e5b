#!/usr/bin/env python3
"""Makes the GGUF golden files for tests/formats/gguf_golden_test.cpp with the `gguf` Python package
(gguf-py, the llama.cpp project's reference writer/reader), so our reader and writer are checked
against an independent implementation.

  gguf_all_types_v3.gguf  every metadata value type (scalars, arrays of each, a nested array, UTF-8
                          strings), custom alignment 64, tensors of f32/f16/bf16/q8_0/q4_K/i8/i32.
  gguf_small_v2.gguf      a small file at the default alignment (32), written by gguf-py as v3 and
                          then given version 2 in its header: v2 and v3 share the little-endian layout.
  gguf_golden.json        what gguf.GGUFReader reads back from both files (metadata with the type
                          chain and contents, which gguf-py flattens for nested arrays; tensors with
                          ggml-order shape, type id, absolute data offset, byte count and sha256).

Run from this directory:  python3 make_gguf_golden.py   (gguf 0.19.0, numpy)
"""
import hashlib
import json

import numpy as np
from gguf import GGUFReader, GGUFValueType as T, GGUFWriter, GGMLQuantizationType as Q


def write_all_types(path):
    w = GGUFWriter(path, arch="testarch")  # adds general.architecture first
    w.add_custom_alignment(64)             # general.alignment = 64 (u32)
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 0.1)
    w.add_bool("t.bool_true", True)
    w.add_bool("t.bool_false", False)
    w.add_string("t.string", "h\u00e9llo w\u00f6rld \u2603 \U0001F600")
    w.add_uint64("t.u64", 18000000000000000000)
    w.add_int64("t.i64", -9000000000000000000)
    w.add_float64("t.f64", -1.0e-300)
    w.add_key_value("t.arr_u8", [0, 1, 255], T.ARRAY, sub_type=T.UINT8)
    w.add_key_value("t.arr_i8", [-128, 0, 127], T.ARRAY, sub_type=T.INT8)
    w.add_key_value("t.arr_u16", [0, 65535], T.ARRAY, sub_type=T.UINT16)
    w.add_key_value("t.arr_i16", [-32768, 32767], T.ARRAY, sub_type=T.INT16)
    w.add_key_value("t.arr_u32", [1, 4294967295], T.ARRAY, sub_type=T.UINT32)
    w.add_key_value("t.arr_i32", [-2147483648, 2147483647, 7], T.ARRAY, sub_type=T.INT32)
    w.add_key_value("t.arr_f32", [1.5, -0.25, 3.0e38], T.ARRAY, sub_type=T.FLOAT32)
    w.add_key_value("t.arr_bool", [True, False, True], T.ARRAY, sub_type=T.BOOL)
    w.add_key_value("t.arr_string", ["a", "", "\u00fcber", "x y"], T.ARRAY, sub_type=T.STRING)
    w.add_key_value("t.arr_u64", [0, 18446744073709551615], T.ARRAY, sub_type=T.UINT64)
    w.add_key_value("t.arr_i64", [-9223372036854775808, 9223372036854775807], T.ARRAY, sub_type=T.INT64)
    w.add_key_value("t.arr_f64", [2.5, -1.0e100], T.ARRAY, sub_type=T.FLOAT64)
    # Nested: an array of arrays of i32 (inner lengths differ).
    w.add_key_value("t.arr_nested", [[1, 2], [3], [4, 5, 6]], T.ARRAY, sub_type=T.ARRAY)

    rng = np.random.default_rng(0)
    w.add_tensor("a.f32", rng.standard_normal((3, 8)).astype(np.float32))        # ggml shape {8, 3}
    w.add_tensor("b.f16", rng.standard_normal((5,)).astype(np.float16))           # odd size: padding
    bf16 = rng.integers(0, 65536, size=(2, 4), dtype=np.uint16)
    w.add_tensor("c.bf16", bf16.view(np.uint8), raw_dtype=Q.BF16)                 # raw bytes, shape {4, 2}
    q8 = rng.integers(0, 256, size=(2, 34 * 2), dtype=np.uint8)                   # 2 rows x 64 elements
    w.add_tensor("d.q8_0", q8, raw_dtype=Q.Q8_0)                                   # shape {64, 2}
    q4k = rng.integers(0, 256, size=(1, 144), dtype=np.uint8)                     # 1 row x 256 elements
    w.add_tensor("e.q4_K", q4k, raw_dtype=Q.Q4_K)                                  # shape {256, 1}
    w.add_tensor("f.i8", rng.integers(-128, 128, size=(2, 3, 2), dtype=np.int8))  # 3-d: {2, 3, 2}
    w.add_tensor("g.i32", rng.integers(-1000, 1000, size=(7,), dtype=np.int32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_small_v2(path):
    w = GGUFWriter(path, arch="tiny")
    w.add_uint32("tiny.block_count", 2)
    w.add_string("general.name", "small v2")
    w.add_key_value("tiny.list", [1.0, 2.0], T.ARRAY, sub_type=T.FLOAT32)
    w.add_tensor("w", np.arange(12, dtype=np.float32).reshape(3, 4))
    w.add_tensor("v", np.arange(3, dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(path, "r+b") as f:
        f.seek(4)
        f.write((2).to_bytes(4, "little"))


def summarize(path):
    r = GGUFReader(path)
    raw = open(path, "rb").read()
    out = {"version": int(r.fields["GGUF.version"].contents()), "metadata": [], "tensors": []}
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        out["metadata"].append({"key": name, "types": [t.name for t in field.types], "value": field.contents()})
    for t in r.tensors:
        start = int(t.data_offset)
        out["tensors"].append({
            "name": t.name,
            "type": int(t.tensor_type),
            "shape": [int(d) for d in t.shape],  # as stored: ggml order
            "data_offset": start,                # absolute, from the start of the file
            "n_bytes": int(t.n_bytes),
            "sha256": hashlib.sha256(raw[start:start + int(t.n_bytes)]).hexdigest(),
        })
    out["file_size"] = len(raw)
    return out


if __name__ == "__main__":
    write_all_types("gguf_all_types_v3.gguf")
    write_small_v2("gguf_small_v2.gguf")
    summary = {"gguf_all_types_v3.gguf": summarize("gguf_all_types_v3.gguf"),
               "gguf_small_v2.gguf": summarize("gguf_small_v2.gguf")}
    with open("gguf_golden.json", "w") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
        f.write("\n")
