//! The end-of-run report of `whittle optimize` as JSON (`--report FILE.json`).

use crate::summary::Summary;
use serde::Serialize;
use std::collections::BTreeMap;
use whittle_passes::PassStat;

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
    pub before: Side,
    pub after: Side,
    pub passes: Vec<PassJson>,
    pub rewrites: Vec<RewriteJson>,
    /// Present with `--verify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<serde_json::Value>,
    pub read_ms: f64,
    pub total_ms: f64,
}

/// Pass statistics as rows.
pub fn passes(stats: &[PassStat]) -> Vec<PassJson> {
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
pub fn rewrites(log: &[(&'static str, &'static str, String)]) -> Vec<RewriteJson> {
    log.iter()
        .map(|(pass, rule, node)| RewriteJson {
            pass,
            rule,
            node: node.clone(),
        })
        .collect()
}

/// The `--verify` part of the report.
pub fn verify_json(v: &whittle_passes::verified::Verification, what: &str) -> serde_json::Value {
    let worst = v.diffs.iter().flatten().fold((0f64, 1f64), |(m, c), d| {
        (m.max(d.max_abs), c.min(d.cosine))
    });
    serde_json::json!({
        "inputs": what,
        "max_abs": worst.0,
        "min_cosine": worst.1,
        "pipeline_runs": v.runs,
        "rolled_back": v.rolled_back.iter().map(|(p, r, s, k)| serde_json::json!({"pass": p, "rule": r, "node": s, "rewrite": k})).collect::<Vec<_>>(),
    })
}
