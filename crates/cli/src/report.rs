//! The end-of-run report of `whittle optimize` as JSON (`--report FILE.json`).

use crate::summary::Summary;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use whittle::{LossyCheck, PassReport, Rewrite, Verification};

/// Bumped whenever a key is renamed or removed.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
pub struct Side {
    pub nodes: usize,
    pub op_counts: BTreeMap<String, usize>,
    pub initializers: usize,
    pub initializer_bytes: u64,
    pub file_bytes: u64,
}

impl Side {
    pub fn new(s: &Summary, file_bytes: u64) -> Side {
        Side {
            nodes: s.nodes,
            op_counts: s.ops.clone(),
            initializers: s.initializers,
            initializer_bytes: s.initializer_bytes,
            file_bytes,
        }
    }
}

#[derive(Serialize)]
pub struct PassJson {
    pub name: &'static str,
    pub rewrites: usize,
    pub ms: f64,
}

#[derive(Serialize)]
pub struct RewriteJson {
    pub pass: &'static str,
    pub rule: &'static str,
    pub node: String,
}

#[derive(Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub input: String,
    pub output: String,
    /// The settings the run resolved (config, then flags or keywords): every key set.
    pub settings: whittle::Settings,
    pub before: Side,
    pub after: Side,
    pub passes: Vec<PassJson>,
    pub rewrites: Vec<RewriteJson>,
    /// What lossy passes measured per node (quantization error).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<NoteJson>,
    /// Present with `--verify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<serde_json::Value>,
    pub read_ms: f64,
    pub total_ms: f64,
}

#[derive(Serialize)]
pub struct NoteJson {
    pub node: String,
    pub note: String,
}

/// Lossy-pass notes as rows.
pub fn notes(notes: &[(String, String)]) -> Vec<NoteJson> {
    notes
        .iter()
        .map(|(node, note)| NoteJson {
            node: node.clone(),
            note: note.clone(),
        })
        .collect()
}

/// Pass statistics as rows.
pub fn passes(stats: &[PassReport]) -> Vec<PassJson> {
    stats
        .iter()
        .map(|s| PassJson {
            name: s.name,
            rewrites: s.rewrites,
            ms: s.time.as_secs_f64() * 1e3,
        })
        .collect()
}

/// The rewrite log as rows.
pub fn rewrites(log: &[Rewrite]) -> Vec<RewriteJson> {
    log.iter()
        .map(|r| RewriteJson {
            pass: r.pass,
            rule: r.rule,
            node: r.node.clone(),
        })
        .collect()
}

/// The `--verify` part of the report: the lossless check and, when lossy steps ran,
/// their score against the original.
pub fn verify_json(v: &Verification, lossy: Option<&LossyCheck>, what: &str) -> serde_json::Value {
    let worst = v.diffs.iter().flatten().fold((0f64, 1f64), |(m, c), d| {
        (m.max(d.max_abs), c.min(d.cosine))
    });
    let rolled_back: Vec<_> = v
        .rolled_back
        .iter()
        .map(|(p, r, s, k)| serde_json::json!({"pass": p, "rule": r, "node": s, "rewrite": k}))
        .collect();
    let mut out = serde_json::json!({
        "inputs": what,
        "max_abs": worst.0,
        "min_cosine": worst.1,
        "pipeline_runs": v.runs,
        "rolled_back": rolled_back,
    });
    if let Some(l) = lossy {
        out["lossy"] = serde_json::json!({
            "cosine": l.score.cosine,
            "top1": l.score.top1,
            "rel_err": l.score.rel_err,
            "budget": l.budget.map(|b| b.to_string()),
            "held": l.held,
        });
    }
    out
}

/// One model of a many-model run: its report, or why it failed.
#[derive(Serialize)]
pub struct BatchEntry {
    pub input: String,
    pub output: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

impl BatchEntry {
    pub fn new(input: &Path, output: &Path, r: anyhow::Result<Report>) -> BatchEntry {
        let (report, error) = match r {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(crate::one_line(&e))),
        };
        BatchEntry {
            input: input.display().to_string(),
            output: output.display().to_string(),
            ok: error.is_none(),
            error,
            report,
        }
    }
}

/// Sums over the models that were optimized.
#[derive(Serialize, Default)]
pub struct Totals {
    pub models: usize,
    pub optimized: usize,
    pub failed: usize,
    pub nodes_before: usize,
    pub nodes_after: usize,
    pub file_bytes_before: u64,
    pub file_bytes_after: u64,
}

/// The combined report of `whittle optimize A B ... -o OUT_DIR`.
#[derive(Serialize)]
pub struct BatchReport {
    pub schema_version: u32,
    pub totals: Totals,
    pub models: Vec<BatchEntry>,
}

impl BatchReport {
    pub fn new(models: Vec<BatchEntry>) -> BatchReport {
        let mut t = Totals {
            models: models.len(),
            ..Totals::default()
        };
        for r in models.iter().filter_map(|m| m.report.as_ref()) {
            t.optimized += 1;
            t.nodes_before += r.before.nodes;
            t.nodes_after += r.after.nodes;
            t.file_bytes_before += r.before.file_bytes;
            t.file_bytes_after += r.after.file_bytes;
        }
        t.failed = t.models - t.optimized;
        BatchReport {
            schema_version: SCHEMA_VERSION,
            totals: t,
            models,
        }
    }

    /// One line per model, then the totals, for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for m in &self.models {
            match (&m.report, &m.error) {
                (Some(r), _) => {
                    out += &format!(
                        "{} -> {}: nodes {} -> {}, file bytes {} -> {}\n",
                        m.input,
                        m.output,
                        r.before.nodes,
                        r.after.nodes,
                        r.before.file_bytes,
                        r.after.file_bytes
                    )
                }
                (None, e) => {
                    out += &format!("{}: FAILED: {}\n", m.input, e.as_deref().unwrap_or("?"))
                }
            }
        }
        let t = &self.totals;
        out += &format!(
            "{} models: {} optimized, {} failed; nodes {} -> {}, file bytes {} -> {}\n",
            t.models,
            t.optimized,
            t.failed,
            t.nodes_before,
            t.nodes_after,
            t.file_bytes_before,
            t.file_bytes_after
        );
        out
    }
}
