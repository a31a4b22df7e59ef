# whittle's everyday commands. `just --list` shows them.
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") / ".cache/whittle/target")

# Optimize a fixture model and print what was done.
demo:
    scripts/whittle optimize fixtures/models/bert_tiny.ts.onnx -o /tmp/bert_tiny.opt.onnx

# Build everything the tests use (the workspace's one feature set; `cargo build
# --workspace` alone would give tract other features and compile it again).
build:
    cargo test --workspace --no-run

# The Python wheel (dev profile, sharing the test build's crates) into target/wheels.
wheel:
    "$(scripts/venv scripts/requirements-python.txt)/bin/maturin" build --profile dev -o target/wheels

# All tests: cargo tests, the conformance harness, the Python package's pytest suite
# (each makes its own venv).
test:
    scripts/test

# Only the conformance harness (whittle judged by onnx/onnxruntime).
conformance:
    cargo test --workspace --no-run --quiet
    "$(scripts/venv scripts/requirements-conformance.txt)/bin/python" scripts/conformance.py --whittle "$CARGO_TARGET_DIR/debug/whittle"

# Regenerate fixtures/models with PyTorch (both exporters).
fixtures:
    "$(scripts/venv scripts/requirements-gen.txt)/bin/python" fixtures/gen/make_fixtures.py
    "$(scripts/venv scripts/requirements-gen.txt)/bin/python" fixtures/gen/make_decoders.py

# Train the byte-level decoder the GPTQ check uses (about 10 minutes of CPU) and write it
# with its calibration and held-out text to fixtures/.
trained-decoder:
    "$(scripts/venv scripts/requirements-gen.txt)/bin/python" fixtures/gen/make_trained_decoder.py

# Read/write throughput and peak memory on a ~100 MB export; writes docs/benchmarks.md rows.
bench:
    cargo build --release -p whittle-cli
    "$(scripts/venv scripts/requirements-gen.txt)/bin/python" scripts/bench_io.py --whittle "$CARGO_TARGET_DIR/release/whittle" --write

# whittle beside onnxsim and onnxslim on torchvision CNNs and BERT-base, three exports each.
bench-peers:
    cargo build --release -p whittle-cli
    "$(scripts/venv scripts/requirements-gen.txt)/bin/python" scripts/bench_peers.py --whittle "$CARGO_TARGET_DIR/release/whittle" --write

# `whittle dump` on a BERT-base-shaped model beside --summary and -O0, cold and warm;
# writes the "Inspecting" section of docs/benchmarks.md.
bench-dump:
    cargo build --release -p whittle-cli
    "$(scripts/venv scripts/requirements-conformance.txt)/bin/python" scripts/bench_dump.py --whittle "$CARGO_TARGET_DIR/release/whittle" --write

# Trained models shipped in PyPI packages: load, optimize, judge in ORT, beside onnxslim and
# onnxsim; writes the "Real models" section of docs/benchmarks.md.
real-models:
    cargo build --release -p whittle-cli
    "$(scripts/venv scripts/requirements-gen.txt)/bin/python" scripts/real_models.py --whittle "$CARGO_TARGET_DIR/release/whittle" --write

# A tree-ensemble model (trees in node attributes, ~195 MB) through -O0 and -O2: time and
# peak RSS beside a plain copy, onnxsim and onnxslim (docs/benchmarks.md, "Attributes").
bench-attributes:
    cargo build --release -p whittle-cli
    "$(scripts/venv scripts/requirements-gen.txt)/bin/python" scripts/bench_attributes.py --whittle "$CARGO_TARGET_DIR/release/whittle" --peers "$(scripts/venv scripts/requirements-gen.txt)/bin"

# Formatting and lints as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# What CI runs.
ci:
    bash .ci/run

# Regenerate fixtures/hostile (broken models for the hostile-input tests).
hostile-fixtures:
    "$(scripts/venv scripts/requirements-gen.txt)/bin/python" fixtures/gen/make_hostile.py

# Fuzz every target for SECS seconds each (cargo-fuzz, nightly toolchain).
fuzz SECS="60":
    scripts/fuzz {{SECS}}

# A model with 2.25 GiB of external weights: load, optimize, save; prints time and peak RSS.
big-model:
    cargo test -p whittle-cli --test big_model -- --ignored --nocapture

# whittle's quantization beside ORT's quantizer on a trained MiniLM and a trained CNN;
# writes the "Quantization" section of docs/benchmarks.md.
bench-quant:
    cargo build --release -p whittle-cli
    HF_HUB_OFFLINE=1 "$(scripts/venv scripts/requirements-gen.txt)/bin/python" scripts/bench_quant.py --whittle "$CARGO_TARGET_DIR/release/whittle" --write

# Structured pruning on the trained digits CNNs (vgg_digits, fire_digits) and MiniLM: accuracy vs ORT/tract speed;
# writes the "Pruning" section of docs/benchmarks.md.
bench-prune:
    cargo build --release -p whittle-cli
    HF_HUB_OFFLINE=1 "$(scripts/venv scripts/requirements-gen.txt)/bin/python" scripts/bench_prune.py --whittle "$CARGO_TARGET_DIR/release/whittle" --write

# Decoder LLMs at scale: whittle -O2 and int4 on a 7B-shaped Llama (26 GiB, written here
# and kept in ~/.cache/whittle/big-llm) and a ~1 GB one, beside onnxsim and ORT's int4
# quantizer; writes the "Decoder LLMs at scale" section of docs/benchmarks.md. Needs ~60 GB
# of free disk for the 7B -O2 copy (it is skipped, and says so, with less).
big-llm:
    cargo build --release -p whittle-cli
    "$(scripts/venv scripts/requirements-gen.txt)/bin/python" scripts/big_llm.py --whittle "$CARGO_TARGET_DIR/release/whittle" --write

# MatMulNBits on the ~1 GB decoder: whittle's int8 forms and int4 (measured in ORT) vs
# float and ORT's MatMulNBitsQuantizer, one decode step, with ORT's per-op profile;
# writes the "MatMulNBits on a 1 GB decoder" section of docs/benchmarks.md.
bench-nbits:
    cargo build --release -p whittle-cli
    "$(scripts/venv scripts/requirements-gen.txt)/bin/python" scripts/bench_nbits.py --whittle "$CARGO_TARGET_DIR/release/whittle" --write

# Decoder fusions into standard opset-23 ops, each on and off, timed in ORT and tract;
# writes the "Decoder fusions" section of docs/benchmarks.md.
bench-fusions:
    cargo build --release -p whittle-cli
    "$(scripts/venv scripts/requirements-gen.txt)/bin/python" scripts/bench_fusions.py --whittle "$CARGO_TARGET_DIR/release/whittle" --write

# Decomposition budgets on the trained vgg_digits CNN: accuracy vs MACs, ORT/tract speed;
# writes the "Decomposition" section of docs/benchmarks.md.
# Budgets on held-out data: vgg_digits decomposed and pruned at top1=0.995, judged on 449 unseen images.
bench-holdout:
    cargo build --release -p whittle-cli
    "$(scripts/venv scripts/requirements-gen.txt)/bin/python" scripts/bench_holdout.py --whittle "$CARGO_TARGET_DIR/release/whittle" --write

bench-decompose:
    cargo build --release -p whittle-cli
    "$(scripts/venv scripts/requirements-gen.txt)/bin/python" scripts/bench_decompose.py --whittle "$CARGO_TARGET_DIR/release/whittle" --write

# whittle certify beside onnxsim's certify (Z3) on the same model pairs
bench-certify:
    cargo build --release -p whittle-cli
    HF_HUB_OFFLINE=1 "$(scripts/venv scripts/requirements-gen.txt)/bin/python" scripts/bench_certify.py --whittle "$CARGO_TARGET_DIR/release/whittle" --write --big

# whittle tune against the README's single flag on a trained CNN, MiniLM and the byte
# decoder, two budgets each (ORT and tract speeds, held-out metrics, tune's wall time with
# and without its cache); writes the "tune" section of docs/benchmarks.md.
bench-tune:
    cargo build --release -p whittle-cli
    HF_HUB_OFFLINE=1 "$(scripts/venv scripts/requirements-gen.txt)/bin/python" scripts/bench_tune.py --whittle "$CARGO_TARGET_DIR/release/whittle" --write
