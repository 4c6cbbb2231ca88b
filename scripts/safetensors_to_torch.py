#!/usr/bin/env python3
"""Convert a smyrf .safetensors file into a PyTorch state dict (.pt).

    python3 scripts/safetensors_to_torch.py model.safetensors model.pt
    # then: model.load_state_dict(torch.load("model.pt"))

Needs only torch (no `safetensors` package): the format is parsed by hand — an 8-byte
little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__":
{...}}, then the raw little-endian row-major data. Key order is the header's (state_dict order).
"""
import json
import struct
import sys
from collections import OrderedDict

import torch

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64,
          "BOOL": torch.bool, "F16": torch.float16, "BF16": torch.bfloat16, "U8": torch.uint8,
          "I8": torch.int8, "I16": torch.int16}


def load(path):
    """Returns (OrderedDict name -> tensor, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path}: header length {n} exceeds the file ({len(data)} bytes)")
    header = json.loads(data[8:8 + n], object_pairs_hook=OrderedDict)
    metadata = header.pop("__metadata__", {})
    buf = bytearray(data[8 + n:])  # writable, so frombuffer does not warn
    tensors = OrderedDict()
    for name, e in header.items():
        dtype, (begin, end) = DTYPES[e["dtype"]], e["data_offsets"]
        count = end - begin
        elem = torch.empty((), dtype=dtype).element_size()
        if count != elem * int(torch.tensor(e["shape"], dtype=torch.int64).prod()) or end > len(buf):
            raise ValueError(f"{path}: tensor {name!r} has inconsistent shape/offsets")
        t = (torch.frombuffer(buf, dtype=dtype, count=count // elem, offset=begin) if count
             else torch.empty(0, dtype=dtype))
        tensors[name] = t.reshape(e["shape"]).clone()  # clone: own the memory, not the file buffer
    return tensors, metadata


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    state, meta = load(sys.argv[1])
    torch.save(state, sys.argv[2])
    for k, v in state.items():
        print(f"{k}: {tuple(v.shape)} {v.dtype}")
    if meta:
        print("metadata:", meta)
