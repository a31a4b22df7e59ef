"""Writes a tree-ensemble classifier whose trees live in node attributes, as skl2onnx and
onnxmltools export LightGBM/sklearn forests: `python scripts/tree_ensemble_model.py OUT.onnx
[--mb 195]`. Random splits (the benchmark measures whittle's cost, not the model)."""

from __future__ import annotations

import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper


def forest(mb: float, features: int, depth: int, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    per_tree = 2 ** (depth + 1) - 1
    # About 27 bytes per tree node in the file (ids, feature, mode, threshold, children).
    trees = max(1, int(mb * 1e6 / (27 * per_tree)))
    n = trees * per_tree
    tree_ids = np.repeat(np.arange(trees), per_tree)
    node_ids = np.tile(np.arange(per_tree), trees)
    leaf = node_ids >= per_tree // 2
    true_ids = np.where(leaf, 0, 2 * node_ids + 1)
    false_ids = np.where(leaf, 0, 2 * node_ids + 2)
    modes = [b"LEAF" if l else b"BRANCH_LEQ" for l in leaf]
    leaves = np.flatnonzero(leaf)
    node = helper.make_node(
        "TreeEnsembleClassifier",
        ["X"],
        ["label", "probabilities"],
        domain="ai.onnx.ml",
        nodes_treeids=tree_ids.tolist(),
        nodes_nodeids=node_ids.tolist(),
        nodes_featureids=rng.integers(0, features, n).tolist(),
        nodes_modes=modes,
        nodes_values=rng.standard_normal(n).astype(np.float32).tolist(),
        nodes_truenodeids=true_ids.tolist(),
        nodes_falsenodeids=false_ids.tolist(),
        class_treeids=tree_ids[leaves].tolist(),
        class_nodeids=node_ids[leaves].tolist(),
        class_ids=rng.integers(0, 2, leaves.size).tolist(),
        class_weights=rng.random(leaves.size).astype(np.float32).tolist(),
        classlabels_int64s=[0, 1],
        post_transform="NONE",
    )
    graph = helper.make_graph(
        [node],
        "forest",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", features])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2]),
        ],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out")
    p.add_argument("--mb", type=float, default=195.0)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--depth", type=int, default=8)
    a = p.parse_args()
    model = forest(a.mb, a.features, a.depth)
    onnx.save(model, a.out)


if __name__ == "__main__":
    main()
