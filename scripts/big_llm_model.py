"""A Llama-shaped decoder written straight to ONNX, weights streamed to external data.

`write(path, shape)` emits the graph a torch export of a Llama decoder computes (RMSNorm
as Pow/ReduceMean/Add/Sqrt/Reciprocal/Mul, rotary embedding from the cos and sin of the
positions' angles as transformers computes them, causal attention with a KV cache, SwiGLU
MLP, tied nothing) with random weights, writing each
weight to `<path>.data` as soon as it is drawn: the generator never holds more than one
tensor, so a 7B-shaped model (26 GiB) is written in a few hundred MiB.

Inputs: input_ids [batch, seq] int64 and, per layer, past_key_i / past_value_i
[batch, heads, past, head_dim]; outputs: logits [batch, seq, vocab] and present_key_i /
present_value_i [batch, heads, past + seq, head_dim]. A prompt is a call with past = 0.
"""
import dataclasses

import numpy as np
import onnx
from onnx import TensorProto, helper


@dataclasses.dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    mlp: int
    vocab: int
    heads: int

    @property
    def head_dim(self):
        return self.hidden // self.heads

    def params(self):
        per_layer = 4 * self.hidden ** 2 + 3 * self.hidden * self.mlp + 2 * self.hidden
        return self.layers * per_layer + 2 * self.vocab * self.hidden + self.hidden


PRESETS = {
    # Llama-2-7B's shape: 6.74 B parameters, 25.1 GiB of float32.
    "7b": Shape(layers=32, hidden=4096, mlp=11008, vocab=32000, heads=32),
    # A ~1 GB decoder (271 M parameters), for the peers and for decode-step latency.
    "1gb": Shape(layers=16, hidden=1024, mlp=2816, vocab=32000, heads=16),
    # 58 M parameters, for timing fusions (scripts/bench_fusions.py).
    "small": Shape(layers=8, hidden=512, mlp=1408, vocab=32000, heads=8),
    # A few MB, for checking the graph itself.
    "tiny": Shape(layers=2, hidden=64, mlp=160, vocab=500, heads=4),
}


class _Writer:
    """Appends tensors to one external data file and builds their references."""

    def __init__(self, path, seed):
        self.path = path
        self.location = path.name + ".data"
        self.f = open(path.parent / self.location, "wb")
        self.rng = np.random.default_rng(seed)
        self.offset = 0

    def external(self, name, array):
        pad = -self.offset % 64
        self.f.write(b"\0" * pad)
        self.offset += pad
        array = np.ascontiguousarray(array, dtype=np.float32)
        array.tofile(self.f)
        t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=array.shape)
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", self.location), ("offset", str(self.offset)),
                     ("length", str(array.nbytes))):
            e = t.external_data.add()
            e.key, e.value = k, v
        self.offset += array.nbytes
        return t

    def random(self, name, shape, scale):
        a = self.rng.standard_normal(shape, dtype=np.float32)
        a *= np.float32(scale)
        return self.external(name, a)


class _Graph:
    """Nodes and initializers with generated names."""

    def __init__(self, writer):
        self.w = writer
        self.nodes, self.inits, self.count = [], [], 0

    def op(self, op, inputs, n_out=1, **attrs):
        self.count += 1
        outs = [f"{op.lower()}_{self.count}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=f"{op}_{self.count}", **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, name, array):
        self.inits.append(helper.make_tensor(
            name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape,
            array.flatten().tolist()))
        return name

    def weight(self, name, shape, scale=0.02):
        self.inits.append(self.w.random(name, shape, scale))
        return name

    def ones(self, name, n):
        self.inits.append(self.w.external(name, np.ones(n, dtype=np.float32)))
        return name


def _rms_norm(g, x, weight):
    sq = g.op("Pow", [x, "two"])
    mean = g.op("ReduceMean", [sq, "axis_last"], keepdims=1)
    r = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [mean, "eps"])])])
    return g.op("Mul", [g.op("Mul", [x, r]), weight])


def _heads(g, x, s, heads):
    """[b, s, h*d] -> [b, h, s, d]."""
    r = g.op("Reshape", [x, g.op("Concat", [s.batch, s.seq, f"c_{heads}", "c_-1"], axis=0)])
    return g.op("Transpose", [r], perm=[0, 2, 1, 3])


def _rotary(g, x, cos, sin, half):
    a = g.op("Slice", [x, "c_0", half, "c_-1"])
    b = g.op("Slice", [x, half, "c_max", "c_-1"])
    rotated = g.op("Concat", [g.op("Neg", [b]), a], axis=-1)
    return g.op("Add", [g.op("Mul", [x, cos]), g.op("Mul", [rotated, sin])])


def _attention(g, x, i, shape, s):
    hd = shape.head_dim
    p = f"layers.{i}.attn"
    q, k, v = (g.op("MatMul", [x, g.weight(f"{p}.{n}_proj", (shape.hidden, shape.hidden))])
               for n in "qkv")
    q, k, v = (_heads(g, t, s, shape.heads) for t in (q, k, v))
    q, k = (_rotary(g, t, s.cos, s.sin, f"c_{hd // 2}") for t in (q, k))
    k = g.op("Concat", [f"past_key_{i}", k], axis=2)
    v = g.op("Concat", [f"past_value_{i}", v], axis=2)
    s.present += [(f"present_key_{i}", k), (f"present_value_{i}", v)]
    kt = g.op("Transpose", [k], perm=[0, 1, 3, 2])
    scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, kt]), "scale"]), s.mask])
    ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
    ctx = g.op("Transpose", [ctx], perm=[0, 2, 1, 3])
    ctx = g.op("Reshape", [ctx, g.op("Concat", [s.batch, s.seq, "c_-1"], axis=0)])
    return g.op("MatMul", [ctx, g.weight(f"{p}.o_proj", (shape.hidden, shape.hidden))])


def _mlp(g, x, i, shape):
    p = f"layers.{i}.mlp"
    gate = g.op("MatMul", [x, g.weight(f"{p}.gate_proj", (shape.hidden, shape.mlp))])
    up = g.op("MatMul", [x, g.weight(f"{p}.up_proj", (shape.hidden, shape.mlp))])
    act = g.op("Mul", [gate, g.op("Sigmoid", [gate])])
    return g.op("MatMul", [g.op("Mul", [act, up]),
                           g.weight(f"{p}.down_proj", (shape.mlp, shape.hidden))])


class _Symbols:
    """Values every layer reads: batch/seq dims, rotary tables, the causal mask."""

    def __init__(self, g, shape):
        ids_shape = g.op("Shape", ["input_ids"])
        self.batch = g.op("Slice", [ids_shape, "c_0", "c_1", "c_0"])
        self.seq = g.op("Slice", [ids_shape, "c_1", "c_2", "c_0"])
        past = g.op("Squeeze", [g.op("Slice", [g.op("Shape", ["past_key_0"]), "c_2", "c_3",
                                                 "c_0"]), "c_0"])
        seq = g.op("Squeeze", [self.seq, "c_0"])
        total = g.op("Add", [past, seq])
        positions = g.op("Range", [past, total, "one_i64"])
        # As transformers computes them: the angles of each position [1, seq, d/2],
        # duplicated over the last axis, Cos and Sin, unsqueezed to [1, 1, seq, d].
        at = g.op("Cast", [g.op("Unsqueeze", [positions, "axes_0_2"])], to=TensorProto.FLOAT)
        freqs = g.op("Mul", [at, "inv_freq"])
        emb = g.op("Concat", [freqs, freqs], axis=-1)
        self.cos = g.op("Unsqueeze", [g.op("Cos", [emb]), "c_1"])
        self.sin = g.op("Unsqueeze", [g.op("Sin", [emb]), "c_1"])
        # Causal mask: key j is visible to query i (absolute position past + i) when j <= it.
        keys = g.op("Range", ["zero_i64", total, "one_i64"])
        visible = g.op("LessOrEqual", [g.op("Unsqueeze", [keys, "c_0"]),
                                       g.op("Unsqueeze", [positions, "c_1"])])
        self.mask = g.op("Where", [visible, "zero", "minus_big"])
        self.present = []


def _constants(g, shape):
    for v in (-1, 0, 1, 2, 3, shape.heads, shape.head_dim // 2):
        g.const(f"c_{v}", np.array([v], dtype=np.int64))
    g.const("c_max", np.array([np.iinfo(np.int64).max], dtype=np.int64))
    g.const("axis_last", np.array([-1], dtype=np.int64))
    g.const("one_i64", np.array(1, dtype=np.int64))
    g.const("zero_i64", np.array(0, dtype=np.int64))
    for name, v in (("two", 2.0), ("eps", 1e-5), ("zero", 0.0), ("minus_big", -1e9),
                    ("scale", shape.head_dim ** -0.5)):
        g.const(name, np.array(v, dtype=np.float32))
    g.const("axes_0_2", np.array([0, 2], dtype=np.int64))
    inv = 1.0 / (10000 ** (np.arange(0, shape.head_dim, 2) / shape.head_dim))
    g.const("inv_freq", inv.astype(np.float32))


def write(path, shape, seed=0):
    """Writes the decoder to `path` (graph) and `path`.data (weights); returns its size."""
    w = _Writer(path, seed)
    g = _Graph(w)
    _constants(g, shape)
    s = _Symbols(g, shape)
    x = g.op("Gather", [g.weight("embed_tokens", (shape.vocab, shape.hidden)), "input_ids"],
             axis=0)
    for i in range(shape.layers):
        h = _rms_norm(g, x, g.ones(f"layers.{i}.input_norm", shape.hidden))
        x = g.op("Add", [x, _attention(g, h, i, shape, s)])
        h = _rms_norm(g, x, g.ones(f"layers.{i}.post_norm", shape.hidden))
        x = g.op("Add", [x, _mlp(g, h, i, shape)])
    x = _rms_norm(g, x, g.ones("norm", shape.hidden))
    logits = g.op("MatMul", [x, g.weight("lm_head", (shape.hidden, shape.vocab))])
    w.f.close()
    kv = ["batch", shape.heads, "past", shape.head_dim]
    kv_out = ["batch", shape.heads, "total", shape.head_dim]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                             ["batch", "seq", shape.vocab])]
    g.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits"))
    for i in range(shape.layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_{kind}_{i}", TensorProto.FLOAT, kv))
    for name, value in s.present:
        g.nodes.append(helper.make_node("Identity", [value], [name], name=name))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, kv_out))
    graph = helper.make_graph(g.nodes, "llama", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                              producer_name="whittle big_llm")
    model.ir_version = 8
    onnx.save(model, str(path))
    return w.offset
