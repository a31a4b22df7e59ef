//! Command-line arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// whittle: make exported ONNX models smaller and faster without changing their answers.
#[derive(Parser, Debug)]
#[command(name = "whittle", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Errors only: no report on stdout, no logs or progress bars on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Rewrite a model and write the result.
    #[command(
        after_help = "Examples:\n  whittle optimize model.onnx -o model.opt.onnx\n  \
        whittle optimize model.onnx -o static.onnx --input-shape input=1,3,224,224\n  \
        whittle optimize model.onnx -o out.onnx --report report.json --print-after fuse\n  \
        whittle optimize models/ extra.onnx -o optimized/\n  \
        whittle optimize 'exports/**/*.onnx' -o optimized/ --report all.json\n  \
        whittle optimize model.onnx -o out.onnx --config whittle.toml --exclude node:/head/Gemm\n  \
        whittle optimize model.onnx -o model.int8.onnx --quantize int8-weights\n  \
        whittle optimize cnn.onnx -o cnn.small.onnx --decompose conv,gemm --budget top1=0.995 --calibrate calib.npy\n  \
        whittle optimize big.onnx -o out/big.onnx --external-data-threshold 1024"
    )]
    Optimize(Box<OptimizeArgs>),
    /// Check that two models compute the same outputs (tract, same inputs).
    #[command(
        after_help = "Examples:\n  whittle verify model.onnx model.opt.onnx\n  \
        whittle verify a.onnx b.onnx --runs 5 --input-shape input_ids=1,128 --min-cosine 0.9999\n  \
        whittle verify a.onnx b.onnx --inputs test_data_set_0 --format json\n\n\
        Exit status: 0 within tolerance, 1 outside it or on any error."
    )]
    Verify(VerifyArgs),
    /// Measure tract latency and memory of one model, or two side by side.
    #[command(after_help = "Examples:\n  whittle bench model.onnx\n  \
        whittle bench model.onnx model.opt.onnx --runs 50 --warmup 5")]
    Bench(BenchArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  whittle completions bash > /etc/bash_completion.d/whittle\n  \
        whittle completions zsh > ~/.zfunc/_whittle"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Describe a model: typed listing, summary, per-node cost, JSON or Graphviz.
    #[command(after_help = "Examples:\n  whittle dump model.onnx\n  \
        whittle dump model.onnx --summary --input-shape input_ids=1,128\n  \
        whittle dump model.onnx --cost --sort macs\n  \
        whittle dump model.onnx --format dot | dot -Tsvg > model.svg\n  \
        whittle dump model.onnx model.opt.onnx --compare")]
    Dump(DumpArgs),
}

/// Optimization level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Level {
    /// No rewriting: a faithful re-encoding.
    #[value(name = "0")]
    O0,
    /// Clean-up and constant folding.
    #[value(name = "1")]
    O1,
    /// Clean-up, folding and fusions (default).
    #[value(name = "2")]
    O2,
}

#[derive(Args, Debug)]
pub struct OptimizeArgs {
    /// The model to read. Several models or folders (searched for *.onnx) are optimized
    /// in parallel into the folder given by -o, keeping their relative paths.
    #[arg(required_unless_present = "list_passes", num_args = 1.., value_name = "INPUT")]
    pub models: Vec<PathBuf>,
    /// Where to write the result (never the input unless --in-place).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Overwrite the input file (atomically).
    #[arg(long, conflicts_with = "output")]
    pub in_place: bool,
    /// Optimization level: -O0, -O1 or -O2 (default 2, or the config's).
    #[arg(short = 'O')]
    pub level: Option<Level>,
    /// Settings file (default: whittle.toml beside each model, if there is one).
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Ignore whittle.toml files.
    #[arg(long, conflicts_with = "config")]
    pub no_config: bool,
    /// Lossy, after the lossless passes: int8-weights (weights stored int8 behind
    /// DequantizeLinear, per output channel; about 4x smaller), int8-dynamic (MatMul/Gemm
    /// as MatMulInteger with run-time activation quantization; smaller and faster on
    /// CPUs), int8-static (QDQ: Conv/MatMul/Gemm activations quantized with ranges from
    /// --calibrate data, int8 weights, int32 biases), fp16 (computes in float16, float32
    /// inputs and outputs kept; 2x smaller), fp16-weights (float16 behind a Cast; 2x
    /// smaller, float32 compute) or int4 (MatMul/Gemm weights in 4 bits, blockwise;
    /// about 7x smaller; GPTQ with --calibrate, streamed from the input without).
    /// Reports each layer's error.
    #[arg(long, value_name = "MODE", value_parser = ["int8-weights", "int8-dynamic", "int8-static", "int4", "fp16", "fp16-weights"])]
    pub quantize: Option<String>,
    /// With --quantize int8-weights: cast (Cast -> Mul, the default, which ONNX Runtime
    /// and tract fold into the float weight at load: float compute at float speed) or dq
    /// (DequantizeLinear; ORT turns DequantizeLinear -> MatMul into MatMulNBits, which by
    /// default quantizes the activations as well).
    #[arg(long, value_name = "FORM", value_parser = ["cast", "dq"], requires = "quantize")]
    pub int8_form: Option<String>,
    /// With --quantize int8-dynamic: the op types taken, comma-separated (default
    /// MatMul,Gemm; add Conv for ConvInteger).
    #[arg(long, value_delimiter = ',', value_name = "OPS", requires = "quantize")]
    pub ops: Option<Vec<String>>,
    /// With --quantize int8-dynamic: row (default: each row of a MatMul/Gemm activation,
    /// e.g. one token, is divided by its own peak before quantization and the result
    /// multiplied back; far more accurate on transformers for a few cheap ops) or tensor
    /// (DynamicQuantizeLinear alone: one scale per tensor, the fewest ops) or auto (per
    /// tensor, except the fewest layers --budget needs per row).
    #[arg(long, value_name = "SCALE", value_parser = ["row", "tensor", "auto"], requires = "quantize")]
    pub act_scale: Option<String>,
    /// With --quantize int4: rows of K per scale (a power of two, at least 16; default 32).
    #[arg(long, value_name = "N", requires = "quantize")]
    pub block_size: Option<u64>,
    /// With --quantize int4: dq (blocked DequantizeLinear, needs opset 21; ORT runs it)
    /// or matmulnbits (com.microsoft MatMulNBits; ORT and tract run it).
    #[arg(long, value_name = "FORMAT", value_parser = ["dq", "matmulnbits"], requires = "quantize")]
    pub int4_format: Option<String>,
    /// With --quantize int8-static: how each activation's range is taken from the
    /// calibration data: minmax (default), percentile[=P] (both tails clipped at P,
    /// default 99.99) or entropy (the KL-divergence threshold).
    #[arg(long, value_name = "METHOD", requires = "quantize")]
    pub calibration: Option<String>,
    /// With --quantize int8-static or int8-dynamic: weights use all of [-127, 127]. The
    /// default [-64, 64] is exact on every runtime; ONNX Runtime's integer kernels on x86
    /// CPUs without VNNI saturate on full-range weights.
    #[arg(long, requires = "quantize")]
    pub full_range: bool,
    /// With --quantize: one scale per tensor instead of per output channel.
    #[arg(long, requires = "quantize")]
    pub per_tensor: bool,
    /// With --quantize: weights with fewer elements stay float (default 1024; 0 for
    /// int8-static, which quantizes every layer it can).
    #[arg(long, value_name = "N", requires = "quantize")]
    pub min_elements: Option<u64>,
    /// Lossy, after the lossless passes and before --quantize: factor layers into cheaper
    /// ones (comma-separated): conv (depthwise + pointwise), gemm (two low-rank products),
    /// spatial (k×1 then 1×k). Reports each layer's rank, error and MACs.
    #[arg(long, value_delimiter = ',', value_name = "KINDS", value_parser = ["conv", "gemm", "spatial"])]
    pub decompose: Option<Vec<String>>,
    /// Lossy, after the lossless passes and before --decompose and --quantize: remove
    /// whole output channels (comma-separated): conv (filters), dense (neurons of 2-D
    /// dense layers), ffn (transformer FFN neurons), heads (attention heads: query, key and
    /// value columns), with the matching inputs of the layer reading them, which is refit
    /// by least squares on the data. Reports each group's kept channels, error and MACs.
    #[arg(long, value_delimiter = ',', value_name = "KINDS", value_parser = ["conv", "dense", "ffn", "heads"])]
    pub prune: Option<Vec<String>>,
    /// With --decompose or --prune: tol=X (per-layer relative error), cosine=X or top1=X (whole-model
    /// outputs vs the original on the data), exact (full rank, forced); default tol=0.1.
    /// With --quantize: cosine=X or top1=X keeps the layers whose quantization costs the
    /// most in float until the whole model meets it (on --calibrate data, else random).
    #[arg(long, value_name = "KIND=X")]
    pub budget: Option<String>,
    /// With --decompose or --prune: rewrite a layer (group) only when its MACs fall by this
    /// factor (default 1.2 for --decompose, 1.1 for --prune).
    #[arg(long, value_name = "FACTOR")]
    pub min_gain: Option<f64>,
    /// With --decompose or --prune: keep a rewrite (a group's size) only if tract also runs
    /// the layer (the group's layers) faster.
    #[arg(long)]
    pub measure: bool,
    /// Calibration data for --decompose, --prune, --quantize int8-static (activation
    /// ranges) and --quantize int4 (GPTQ rounding from the layers' inputs): a .npy
    /// (single-input model; first axis = samples), an .npz (arrays named after the
    /// inputs) or a folder of test_data_set_N. Without it, --decompose uses random inputs
    /// and says so, and int4 rounds to nearest.
    #[arg(long, value_name = "PATH")]
    pub calibrate: Option<PathBuf>,
    /// Rewrites not to do (comma-separated): node:NAME (none anchored at that node),
    /// op:TYPE (none anchored at nodes of that op), rule:NAME (that rule nowhere).
    #[arg(long, value_delimiter = ',', value_name = "WHAT")]
    pub exclude: Option<Vec<String>>,
    /// Fusions that are off by default to do anyway (comma-separated rule:NAME): those
    /// measured slower in some runtime (docs/benchmarks.md). `--list-passes` names them.
    #[arg(long, value_delimiter = ',', value_name = "WHAT")]
    pub enable: Option<Vec<String>>,
    /// Store tensors of at least this many bytes in an external data file.
    #[arg(long, value_name = "BYTES")]
    pub external_data_threshold: Option<u64>,
    /// The file name of the output's external data, beside it (default: the output's file
    /// name + `.data`). whittle never writes it over a file that is not the output's own.
    #[arg(long, value_name = "NAME")]
    pub external_data_name: Option<String>,
    /// Run exactly these passes (comma-separated), instead of the level's.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub passes: Option<Vec<String>>,
    /// Skip these passes (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub disable: Option<Vec<String>>,
    /// Stop after N rewrites (to find the rewrite that breaks a model).
    #[arg(long, value_name = "N")]
    pub bisect_limit: Option<usize>,
    /// List the passes with a line each, and exit.
    #[arg(long)]
    pub list_passes: bool,
    /// Print the model as text (stderr) after each run of this pass.
    #[arg(long, value_name = "PASS")]
    pub print_after: Option<String>,
    /// Write the report (before/after, passes, rewrites) as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Largest constant folding may create, in bytes (default 1 MiB); larger results are
    /// kept only when no larger than the constants they replace.
    #[arg(long, value_name = "BYTES")]
    pub fold_limit: Option<u64>,
    /// Raise the model's default-domain opset to N (13 to 24) before optimizing: the ops
    /// whose encoding changed on the way are converted; one that cannot be is an error
    /// naming the node. Never lowers an opset.
    #[arg(long, value_name = "N")]
    pub opset: Option<i64>,
    /// Write nothing: exit 0 if OUT already holds what would be written, 1 if it would
    /// change (with a short diff), 2 on error.
    #[arg(long, conflicts_with = "in_place")]
    pub check: bool,
    /// Check the result against the original in tract; on a mismatch find the rewrite
    /// that breaks it, roll it back and retry (`--verify=strict`: fail instead).
    /// Lossy steps are judged against their --budget instead (and reported). The mode
    /// takes `=` (`--verify=strict`), so `--verify MODEL` reads MODEL as the model.
    #[arg(long, value_name = "MODE", num_args = 0..=1, default_missing_value = "rollback",
          require_equals = true, value_parser = ["rollback", "strict"])]
    pub verify: Option<String>,
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub tolerance: ToleranceArgs,
}

/// Output format of `dump`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Dot,
}

/// Row order of `dump --cost`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    /// Graph (topological) order.
    Order,
    Macs,
    Flops,
    Params,
    /// Output bytes.
    Bytes,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// The model to describe (two with --compare).
    #[arg(required = true, num_args = 1..=2, value_name = "MODEL")]
    pub inputs: Vec<PathBuf>,
    /// Totals instead of the listing: ops, parameters, bytes, MACs and FLOPs, dynamic dims.
    #[arg(long)]
    pub summary: bool,
    /// Per-node cost: MACs, share of MACs, parameters, output bytes.
    #[arg(long, conflicts_with = "summary")]
    pub cost: bool,
    /// Row order for --cost.
    #[arg(long, value_enum, default_value = "order")]
    pub sort: SortKey,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Show the summaries of two models side by side.
    #[arg(long)]
    pub compare: bool,
    /// Fix an input's dims (repeatable); symbols it declared are bound everywhere.
    #[arg(long = "input-shape", value_name = "NAME=D0,D1,...")]
    pub input_shape: Vec<String>,
    /// Elements of each constant to show in the listing.
    #[arg(long, default_value = "4", value_name = "N")]
    pub max_values: usize,
    /// Show every element of every constant (the listing then parses back exactly).
    #[arg(long)]
    pub full: bool,
}

/// Where test inputs come from (verify, bench, optimize --verify).
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Fix an input's dims (repeatable); symbols it declared are bound everywhere.
    #[arg(long = "input-shape", value_name = "NAME=D0,D1,...")]
    pub input_shape: Vec<String>,
    /// Integer input range [LO, HI) (repeatable); masks default to ones, token ids to the
    /// embedding table's size.
    #[arg(long = "input-range", value_name = "NAME=LO,HI")]
    pub input_range: Vec<String>,
    /// Real inputs: a test_data_set_N folder (or a folder of them), a .npy or a .npz.
    #[arg(long = "inputs", value_name = "PATH")]
    pub inputs: Option<PathBuf>,
    /// Random input sets to try (ignored with --inputs).
    #[arg(long, default_value = "3", value_name = "N")]
    pub runs: usize,
    /// Seed of the random inputs.
    #[arg(long, default_value = "0", value_name = "S")]
    pub seed: u64,
}

/// When outputs count as the same.
#[derive(Args, Debug, Clone)]
pub struct ToleranceArgs {
    /// Relative tolerance: |a - b| <= atol + rtol * |a|.
    #[arg(long, default_value = "1e-4")]
    pub rtol: f64,
    /// Absolute tolerance.
    #[arg(long, default_value = "1e-5")]
    pub atol: f64,
    /// Also require this cosine similarity per output.
    #[arg(long, value_name = "X")]
    pub min_cosine: Option<f64>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The reference model.
    pub a: PathBuf,
    /// The model to check against it.
    pub b: PathBuf,
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub tolerance: ToleranceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The model to measure (two: side by side, with the ratio).
    #[arg(required = true, num_args = 1..=2, value_name = "MODEL")]
    pub models: Vec<PathBuf>,
    /// Timed runs.
    #[arg(long = "runs", default_value = "20", value_name = "N")]
    pub timed: usize,
    /// Untimed runs first.
    #[arg(long, default_value = "3", value_name = "W")]
    pub warmup: usize,
    /// Fix an input's dims (repeatable).
    #[arg(long = "input-shape", value_name = "NAME=D0,D1,...")]
    pub input_shape: Vec<String>,
    /// Integer input range [LO, HI) (repeatable).
    #[arg(long = "input-range", value_name = "NAME=LO,HI")]
    pub input_range: Vec<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// `--quantize`'s values (for completions and usage errors) are exactly the modes the
    /// option types accept.
    #[test]
    fn quantize_values_are_the_modes_of_the_option_type() {
        let cmd = super::Cli::command();
        let optimize = cmd.find_subcommand("optimize").expect("optimize");
        let arg = optimize
            .get_arguments()
            .find(|a| a.get_id() == "quantize")
            .expect("--quantize");
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_string())
            .collect();
        for v in &values {
            let s = whittle::Settings {
                quantize: Some(v.clone()),
                ..whittle::Settings::default()
            };
            assert!(whittle::Optimizer::from_settings(&s).is_ok(), "{v}");
        }
        let bad = whittle::Settings {
            quantize: Some("int3".into()),
            ..whittle::Settings::default()
        };
        let err = whittle::Optimizer::from_settings(&bad)
            .unwrap_err()
            .to_string();
        let listed = err.matches('`').count() / 2 - 1; // less the bad value itself
        assert_eq!(listed, values.len(), "{err} vs {values:?}");
    }
}
