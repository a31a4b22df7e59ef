//! Every setting of an optimization, declared once.
//!
//! [`for_each_setting!`] holds the one table: per setting its doc, its key in
//! `whittle.toml` (and, with `_` for `-`, its Python keyword), its group, its type, and
//! the clap attributes of its command-line flag. This crate expands the table into
//! [`Settings`] (the TOML/JSON/Python form), [`Settings::overlay`] and the key lists; the
//! CLI expands it into its flags (`whittle_cli::cli::SettingFlags`). The build step's
//! cache key covers every field of the resolved optimizer ([`crate::Optimizer::fingerprint`]),
//! and the report echoes the resolved settings. Adding a setting is one row here, plus
//! the code that reads it in [`crate::Optimizer::from_settings`].
//!
//! The clap attributes are tokens this crate never expands (it does not depend on clap).

use serde::{Deserialize, Serialize};

/// Calls `$m! { rows }` with the table of settings. A row is
/// `/// doc` `name: Type = "key", group, [clap attributes];` where group is `general`
/// (read by the optimizer) or `quantize` (read by the quantize mode's option type). A
/// setting with no flag of its own says `[skip]` (`input-shapes` comes from
/// `--input-shape`, shared with `whittle verify`).
#[macro_export]
macro_rules! for_each_setting {
    ($m:ident) => {
        $m! {
            /// Optimization level: 0, 1 or 2 (`-O0`, `-O1`, `-O2`; default 2).
            level: u8 = "level", general,
                [short = 'O', value_name = "N", value_parser = clap::value_parser!(u8).range(0..=2)];
            /// Run exactly these passes (comma-separated), instead of the level's.
            passes: Vec<String> = "passes", general,
                [long, value_delimiter = ',', value_name = "NAMES"];
            /// Skip these passes (comma-separated).
            disable: Vec<String> = "disable", general,
                [long, value_delimiter = ',', value_name = "NAMES"];
            /// Fixed dims per input name (`--input-shape NAME=D0,D1,...`, repeatable).
            input_shapes: std::collections::BTreeMap<String, Vec<$crate::config::DimSetting>> = "input-shapes", general, [skip];
            /// Largest constant folding may create, in bytes (default 1 MiB); larger results
            /// are kept only when no larger than the constants they replace.
            fold_limit: u64 = "fold-limit", general, [long, value_name = "BYTES"];
            /// Store tensors of at least this many bytes in the output's external data file.
            external_data_threshold: u64 = "external-data-threshold", general,
                [long, value_name = "BYTES"];
            /// The file name of the output's external data, beside it (default: the output's
            /// file name + `.data`). whittle never writes it over a file that is not the
            /// output's own.
            external_data_name: String = "external-data-name", general,
                [long, value_name = "NAME"];
            /// Rewrites not to do (comma-separated): node:NAME (none anchored at that node),
            /// op:TYPE (none anchored at nodes of that op), rule:NAME (that rule nowhere).
            exclude: Vec<String> = "exclude", general,
                [long, value_delimiter = ',', value_name = "WHAT"];
            /// Fusions that are off by default to do anyway (comma-separated rule:NAME): those
            /// measured slower in some runtime (docs/benchmarks.md). `--list-passes` names them.
            enable: Vec<String> = "enable", general,
                [long, value_delimiter = ',', value_name = "WHAT"];
            /// Lossy, after the lossless passes: int8-weights (weights stored int8 behind
            /// Cast -> Mul or DequantizeLinear, per output channel; about 4x smaller),
            /// int8-dynamic (MatMul/Gemm as MatMulInteger with run-time activation
            /// quantization; smaller and faster on CPUs), int8-static (QDQ: Conv/MatMul/Gemm
            /// activations quantized with ranges from --calibrate data, int8 weights, int32
            /// biases), fp16 (computes in float16, float32 inputs and outputs kept; 2x
            /// smaller), fp16-weights (float16 behind a Cast; 2x smaller, float32 compute)
            /// or int4 (MatMul/Gemm weights in 4 bits, blockwise; about 7x smaller; GPTQ
            /// with --calibrate, streamed from the input without). Reports each layer's error.
            quantize: String = "quantize", quantize,
                [long, value_name = "MODE", value_parser = ["int8-weights", "int8-dynamic", "int8-static", "int4", "fp16", "fp16-weights"]];
            /// With --quantize: one scale per tensor instead of per output channel.
            per_tensor: bool = "per-tensor", quantize,
                [long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", requires = "quantize"];
            /// With --quantize: weights with fewer elements stay float (default 1024; 0 for
            /// int8-static, which quantizes every layer it can).
            min_elements: u64 = "min-elements", quantize,
                [long, value_name = "N", requires = "quantize"];
            /// Lossy, after the lossless passes and before --quantize: factor layers into
            /// cheaper ones (comma-separated): conv (depthwise + pointwise), gemm (two
            /// low-rank products), spatial (k×1 then 1×k). Reports each layer's rank, error
            /// and MACs.
            decompose: Vec<String> = "decompose", general,
                [long, value_delimiter = ',', value_name = "KINDS", value_parser = ["conv", "gemm", "spatial"]];
            /// Lossy, after the lossless passes and before --decompose and --quantize: remove
            /// whole output channels (comma-separated): conv (filters), dense (neurons of 2-D
            /// dense layers), ffn (transformer FFN neurons), heads (attention heads: query,
            /// key and value columns), with the matching inputs of the layer reading them,
            /// which is refit by least squares on the data. Reports each group's kept
            /// channels, error and MACs.
            prune: Vec<String> = "prune", general,
                [long, value_delimiter = ',', value_name = "KINDS", value_parser = ["conv", "dense", "ffn", "heads"]];
            /// With --decompose or --prune: tol=X (per-layer relative error), cosine=X or
            /// top1=X (whole-model outputs vs the original on the data), exact (full rank,
            /// forced); default tol=0.1. With --quantize: cosine=X or top1=X keeps the layers
            /// whose quantization costs the most in float until the whole model meets it (on
            /// --calibrate data, else random).
            budget: String = "budget", general, [long, value_name = "KIND=X"];
            /// With --decompose or --prune: rewrite a layer (group) only when its MACs fall by
            /// this factor (default 1.2 for --decompose, 1.1 for --prune).
            min_gain: f64 = "min-gain", general, [long, value_name = "FACTOR"];
            /// With --decompose or --prune: keep a rewrite (a group's size) only if the runtime
            /// (--runtime: tract or ONNX Runtime) also runs the layer (the group's layers)
            /// faster.
            measure: bool = "measure", general,
                [long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL"];
            /// Calibration data for --decompose, --prune, --quantize int8-static (activation
            /// ranges) and --quantize int4 (GPTQ rounding from the layers' inputs): a .npy
            /// (single-input model; first axis = samples), an .npz (arrays named after the
            /// inputs) or a folder of test_data_set_N; in a config file, relative to the
            /// file's folder. Without it, --decompose uses random inputs and says so, and
            /// int4 rounds to nearest.
            calibrate: std::path::PathBuf = "calibrate", general, [long, value_name = "PATH"];
            /// With --quantize int8-static: how each activation's range is taken from the
            /// calibration data: minmax (default), percentile[=P] (both tails clipped at P,
            /// default 99.99) or entropy (the KL-divergence threshold).
            calibration: String = "calibration", quantize,
                [long, value_name = "METHOD", requires = "quantize"];
            /// With --quantize int8-static or int8-dynamic: weights use all of [-127, 127].
            /// The default [-64, 64] is exact on every runtime; ONNX Runtime's integer kernels
            /// on x86 CPUs without VNNI saturate on full-range weights.
            full_range: bool = "full-range", quantize,
                [long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", requires = "quantize"];
            /// With --quantize int4: rows of K per scale (a power of two, at least 16), or
            /// auto (the default: 32; in ONNX Runtime with data to run, 32, 64 and 128 are
            /// each quantized, timed and judged, and the fastest within the budget is
            /// kept).
            block_size: $crate::BlockSize = "block-size", quantize,
                [long, value_name = "N|auto", requires = "quantize"];
            /// With --quantize int4: dq (blocked DequantizeLinear, needs opset 21; ORT runs
            /// it) or matmulnbits (com.microsoft MatMulNBits; ORT and tract run it).
            int4_format: String = "int4-format", quantize,
                [long, value_name = "FORMAT", value_parser = ["dq", "matmulnbits"], requires = "quantize"];
            /// With --quantize int4 --int4-format matmulnbits, or int8-weights written as
            /// MatMulNBits: its accuracy_level, 0 to 4 (4: ONNX Runtime computes with int8
            /// activations, much faster when decoding, one more rounding), or auto (the
            /// default: levels 0 and 4 timed and judged in ONNX Runtime, 4 kept when faster
            /// and within the budget; unset with tract, which does not read it).
            accuracy_level: String = "accuracy-level", quantize,
                [long, value_name = "LEVEL", value_parser = ["0", "1", "2", "3", "4", "auto"], requires = "quantize"];
            /// With --quantize int8-dynamic: the op types taken, comma-separated (default
            /// MatMul,Gemm; add Conv for ConvInteger).
            ops: Vec<String> = "ops", quantize,
                [long, value_delimiter = ',', value_name = "OPS", requires = "quantize"];
            /// With --quantize int8-weights: cast (Cast -> Mul, which ONNX Runtime and tract
            /// fold into the float weight at load: float compute at float speed), dq
            /// (DequantizeLinear; ORT turns DequantizeLinear -> MatMul into MatMulNBits, which
            /// by default quantizes the activations as well), matmulnbits (MatMul/Gemm
            /// weights as 8-bit MatMulNBits, which ORT reads as int8 at run time: faster where
            /// reading weights is the cost) or auto (the default: cast, except in ONNX Runtime
            /// with data to run, where cast and matmulnbits are timed and judged and
            /// matmulnbits is kept when faster within the budget).
            int8_form: String = "int8-form", quantize,
                [long, value_name = "FORM", value_parser = ["cast", "dq", "matmulnbits", "auto"], requires = "quantize"];
            /// With --quantize int8-dynamic: row (default: each row of a MatMul/Gemm
            /// activation, e.g. one token, is divided by its own peak before quantization and
            /// the result multiplied back; far more accurate on transformers for a few cheap
            /// ops) or tensor (DynamicQuantizeLinear alone: one scale per tensor, the fewest
            /// ops) or auto (per tensor, except the fewest layers --budget needs per row).
            act_scale: String = "act-scale", quantize,
                [long, value_name = "SCALE", value_parser = ["row", "tensor", "auto"], requires = "quantize"];
            /// With --calibrate: the share of samples held out (0 to below 1; default 0.5):
            /// lossy steps fit on the rest and their budgets are judged on these, with a 95%
            /// lower confidence bound. 0 judges on the data the steps were fit on.
            holdout: f64 = "holdout", general, [long, value_name = "SHARE"];
            /// The runtime that runs models for --verify, budgets and calibration: tract
            /// (embedded, the default), ort (ONNX Runtime, loaded in process from --ort-lib,
            /// ORT_DYLIB_PATH or the onnxruntime Python package) or auto (ONNX Runtime when
            /// its library is found, else tract). The report names the one used.
            runtime: String = "runtime", general,
                [long, value_name = "RUNTIME", value_parser = ["tract", "ort", "auto"]];
            /// The ONNX Runtime library (a file, or a folder holding one) for --runtime ort or
            /// auto; in a config file, relative to the file's folder.
            ort_lib: std::path::PathBuf = "ort-lib", general, [long, value_name = "PATH"];
            /// Intra-op threads for ONNX Runtime, as the model is deployed (default: ONNX
            /// Runtime's own, one per core). tract runs on one thread.
            threads: u64 = "threads", general, [long, value_name = "N"];
            /// Raise the model's default-domain opset to N (13 to 24) before optimizing: the
            /// ops whose encoding changed on the way are converted; one that cannot be is an
            /// error naming the node. Never lowers an opset.
            opset: i64 = "opset", general, [long, value_name = "N"];
        }
    };
}

/// Expands the table into [`Settings`], its overlay and the key lists.
macro_rules! settings_struct {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty = $key:literal, $group:ident,
        [$($clap:tt)*]; )*) => {
        /// Optimization settings; `None` means "not said here" (a later layer or the
        /// default decides). Keys are kebab-case in TOML and JSON.
        #[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct Settings {
            $( $(#[doc = $doc])* #[serde(skip_serializing_if = "Option::is_none")]
               pub $name: Option<$ty>, )*
        }

        impl Settings {
            /// These settings with every key that `over` sets replaced by its value.
            pub fn overlay(&self, over: &Settings) -> Settings {
                Settings {
                    $( $name: over.$name.clone().or_else(|| self.$name.clone()), )*
                }
            }
        }

        /// Every key a settings table may hold, in table order, with its group.
        const KEYS: &[(&str, Group)] = &[ $( ($key, settings_struct!(@group $group)), )* ];
    };
    (@group general) => { Group::General };
    (@group quantize) => { Group::Quantize };
}

/// Who reads a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    /// The optimizer itself.
    General,
    /// The quantize mode's option type ([`crate::modes::Quantize`]).
    Quantize,
}

for_each_setting!(settings_struct);

/// Every key a settings table may hold (the Python keywords, with `_` for `-`).
pub fn keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|(k, _)| *k)
}

/// The keys of `quantize` and its modes, read by the mode's option type.
pub(crate) fn is_quantize_key(key: &str) -> bool {
    KEYS.iter().any(|(k, g)| *k == key && *g == Group::Quantize)
}
