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
    /// Find the fastest (or smallest) model within an accuracy budget, by measurement.
    #[command(after_help = "Examples:\n  \
        whittle tune model.onnx -o model.tuned.onnx --budget cosine=0.995 --calibrate calib.npz\n  \
        whittle tune cnn.onnx -o cnn.tuned.onnx --budget top1=0.99 --calibrate images.npy --runtime ort --html report.html\n  \
        whittle tune decoder.onnx -o small.onnx --budget cosine=0.99 --objective size --time-limit 5m\n\n\
        Exit status: 0 a plan met the budget and was written; 1 none did (nothing is written) or an error.")]
    Tune(Box<TuneArgs>),
    /// Check a certificate: replay its rewrites on the original, compare with the
    /// optimized model, and judge each rewrite (proved, checked, or not certified).
    #[command(after_help = "Examples:\n  \
        whittle optimize model.onnx -o model.opt.onnx --certificate model.cert\n  \
        whittle certify model.onnx model.opt.onnx model.cert\n  \
        whittle certify model.onnx model.opt.onnx model.cert --runtime ort --format json\n  \
        whittle certify model.onnx model.opt.onnx    (no certificate: structural comparison)\n\n\
        Exit status: 0 every rewrite replays and none is refuted; 1 the certificate does not \
        describe the two models, a rewrite is wrong, or an error.")]
    Certify(CertifyArgs),
    /// Describe a model: typed listing, summary, per-node cost, JSON or Graphviz.
    #[command(after_help = "Examples:\n  whittle dump model.onnx\n  \
        whittle dump model.onnx --summary --input-shape input_ids=1,128\n  \
        whittle dump model.onnx --cost --sort macs\n  \
        whittle dump model.onnx --format dot | dot -Tsvg > model.svg\n  \
        whittle dump model.onnx model.opt.onnx --compare")]
    Dump(DumpArgs),
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
    /// Settings file (default: whittle.toml beside each model, if there is one).
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Ignore whittle.toml files.
    #[arg(long, conflicts_with = "config")]
    pub no_config: bool,
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
    /// Write a self-contained HTML report (what each pass and step did, per-layer
    /// figures, ops before and after, the graph around each rewrite, verification).
    #[arg(long, value_name = "REPORT.html")]
    pub html: Option<PathBuf>,
    /// Write a certificate: every rewrite with the nodes it changed and the constants it
    /// made (by digest), for `whittle certify` to check.
    #[arg(long, value_name = "OUT.cert", conflicts_with = "check")]
    pub certificate: Option<PathBuf>,
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
    pub settings: SettingFlags,
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub tolerance: ToleranceArgs,
}

#[derive(Args, Debug)]
pub struct TuneArgs {
    /// The model to tune.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Where to write the chosen plan's model.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Stop measuring after this long (e.g. 90s, 10m) and keep the best plan so far.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub time_limit: Option<std::time::Duration>,
    /// What to minimise among the plans that meet the budget.
    #[arg(long, default_value = "latency", value_parser = ["latency", "size"])]
    pub objective: String,
    /// Where measurements are cached (default: $XDG_CACHE_HOME/whittle/tune, else
    /// ~/.cache/whittle/tune).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Measure every plan again, reading and writing no cache.
    #[arg(long, conflicts_with = "cache")]
    pub no_cache: bool,
    /// Also write a self-contained HTML report (Pareto chart, per-plan table, what the
    /// chosen plan did).
    #[arg(long, value_name = "REPORT.html")]
    pub html: Option<PathBuf>,
    /// Report format on stdout.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Fix an input's dims (repeatable); symbols it declared are bound everywhere.
    #[arg(long = "input-shape", value_name = "NAME=D0,D1,...")]
    pub input_shape: Vec<String>,
    #[command(flatten)]
    pub settings: SettingFlags,
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
    /// Write a self-contained HTML page (ops, inputs and outputs, costliest nodes) to
    /// this file instead of printing.
    #[arg(long, value_name = "PAGE.html", conflicts_with_all = ["compare", "format"])]
    pub html: Option<PathBuf>,
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
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// `whittle certify`.
#[derive(Args, Debug)]
pub struct CertifyArgs {
    /// The model as it was before `whittle optimize`.
    pub original: PathBuf,
    /// What `whittle optimize` wrote.
    pub optimized: PathBuf,
    /// The certificate `--certificate` wrote (without one, the two models are compared
    /// structurally and what differs is evaluated as one region).
    pub certificate: Option<PathBuf>,
    /// Inputs the original is run on to feed the regions that are evaluated.
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Where regions are evaluated (ONNX Runtime is independent of whittle's folding,
    /// which uses tract; `auto` takes it when found).
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Replay and lemmas only: evaluating regions runs the original once, whole, which
    /// a model larger than memory cannot do.
    #[arg(long)]
    pub no_evaluate: bool,
    /// What regions are fed: `original` (the values one run of the whole original
    /// computes on the input set) or `random` (random values of the dims inference gives
    /// for it; no run of the whole model, for models larger than memory).
    #[arg(long, default_value = "original", value_parser = ["original", "random"], value_name = "FROM")]
    pub region_inputs: String,
    /// Also write a self-contained HTML page of the verdicts.
    #[arg(long, value_name = "PAGE.html")]
    pub html: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// The runtime `whittle verify` and `whittle bench` run models in (`whittle optimize`
/// takes the same flags from its settings).
#[derive(Args, Debug, Clone)]
pub struct RuntimeArgs {
    /// tract (embedded), ort (ONNX Runtime, loaded in process), auto (ONNX Runtime when
    /// its library is found, else tract) or, for `bench` only, all (tract, and ONNX
    /// Runtime when found, side by side).
    #[arg(long, default_value = "tract", value_parser = ["tract", "ort", "auto", "all"], value_name = "RUNTIME")]
    pub runtime: String,
    /// The ONNX Runtime library (a file, or a folder holding one); else ORT_DYLIB_PATH, else
    /// the onnxruntime Python package's.
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Intra-op threads for ONNX Runtime (default: its own).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub threads: Option<u64>,
}

impl RuntimeArgs {
    /// The runtimes these flags name: `all` is tract and, when found, ONNX Runtime.
    pub fn load_all(&self) -> anyhow::Result<Vec<whittle_eval::Runtime>> {
        if self.runtime != "all" {
            return Ok(vec![self.load()?]);
        }
        let auto = RuntimeArgs {
            runtime: "auto".into(),
            ..self.clone()
        };
        let mut out = vec![whittle_eval::Runtime::Tract];
        let other = auto.load()?;
        if other != whittle_eval::Runtime::Tract {
            out.push(other);
        }
        Ok(out)
    }

    /// Loads the runtime these flags name.
    pub fn load(&self) -> anyhow::Result<whittle_eval::Runtime> {
        if self.runtime == "all" {
            anyhow::bail!("--runtime all is for `whittle bench`; give tract, ort or auto");
        }
        let choice: whittle_eval::RuntimeChoice = self
            .runtime
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?;
        let threads = self.threads.map(|n| n as usize);
        Ok(whittle_eval::Runtime::choose(
            choice,
            self.ort_lib.as_deref(),
            threads,
        )?)
    }
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
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Expands the settings table ([`whittle::for_each_setting`]) into the flags of
/// `whittle optimize`: each setting's doc is its help, its clap attributes its flag
/// (`skip` for `input-shapes`, which `--input-shape` of [`InputArgs`] gives).
macro_rules! setting_flags {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty = $key:literal, $group:ident,
        [$($clap:tt)*]; )*) => {
        /// The settings as flags (each unset flag leaves its key to the config or the
        /// default).
        #[derive(Args, Clone, Debug, Default)]
        pub struct SettingFlags {
            $( $(#[doc = $doc])* #[arg($($clap)*)] pub $name: Option<$ty>, )*
        }

        impl SettingFlags {
            /// The settings the flags give.
            pub fn to_settings(&self) -> whittle::Settings {
                whittle::Settings { $( $name: self.$name.clone(), )* }
            }
        }
    };
}

whittle::for_each_setting!(setting_flags);

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

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

    /// Every key of `whittle.toml` is a flag of the same name (the level is `-O`, the
    /// input shapes `--input-shape`, shared with `whittle verify`), and back.
    #[test]
    fn every_setting_is_a_flag_of_its_name() {
        let cmd = super::Cli::command();
        let optimize = cmd.find_subcommand("optimize").expect("optimize");
        let flag = |key: &str| {
            optimize.get_arguments().any(|a| match key {
                "level" => a.get_short() == Some('O'),
                "input-shapes" => a.get_long() == Some("input-shape"),
                _ => a.get_long() == Some(key),
            })
        };
        for key in whittle::config::keys() {
            assert!(flag(key), "no flag for `{key}`");
        }
        let argv = [
            "whittle",
            "optimize",
            "m.onnx",
            "-O1",
            "--measure",
            "--min-gain",
            "1.5",
        ];
        let parsed = super::Cli::try_parse_from(argv).expect("parses");
        let super::Command::Optimize(a) = parsed.command else {
            panic!("not optimize")
        };
        let s = a.settings.to_settings();
        assert_eq!(
            (s.level, s.measure, s.min_gain),
            (Some(1), Some(true), Some(1.5))
        );
        assert_eq!(s.budget, None);
    }
}
