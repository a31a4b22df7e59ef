"""Relative latency of two ONNX Runtime sessions, robust to the machine's drift.

Timing one model and then the other lets anything that changes in between (other load,
clock, caches) pass for a speed difference; on a 0.2 ms model that reached ±30 %. Here
the two are timed in alternating rounds and the median of the per-round ratios is kept.
"""

import time

import numpy as np


def session(path):
    """An ONNX Runtime session on one thread (CPU), its logs quiet: what the benchmarks
    time."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def median_s(sess, feed, runs):
    t = []
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(None, feed)
        t.append(time.perf_counter() - start)
    return float(np.median(t))


def speed(base, sess, feed, rounds=7, runs=30):
    """How many times faster `sess` runs `feed` than `base` (>1: faster)."""
    for s in (base, sess):
        for _ in range(3):
            s.run(None, feed)
    return float(np.median([median_s(base, feed, runs) / median_s(sess, feed, runs)
                            for _ in range(rounds)]))
