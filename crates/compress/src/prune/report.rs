//! The pruning report as lines for the notes and the terminal.

use super::PruneReport;

impl PruneReport {
    /// One line per group (and per layer left alone) and a total.
    pub fn lines(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .groups
            .iter()
            .map(|g| {
                let text = match g.kind {
                    Some(k) if g.kept < g.total => format!(
                        "prune {} {}/{} kept (into {}): error {:.2e}, MACs {} -> {} ({:.2}x), params {} -> {}{}",
                        k.name(),
                        g.kept,
                        g.total,
                        g.consumer,
                        g.error,
                        g.macs_before,
                        g.macs_after,
                        g.macs_before as f64 / g.macs_after.max(1) as f64,
                        g.params_before,
                        g.params_after,
                        g.ridge
                            .map(|r| format!(", ridge {r} (chosen on held-back sets)"))
                            .unwrap_or_default()
                            + &g.latency
                                .map(|(b, a)| format!(", tract {b:.3} -> {a:.3} ms"))
                                .unwrap_or_default()
                    ),
                    Some(k) => format!("prune {}: kept {}/{} ({})", k.name(), g.total, g.total, g.why),
                    None => format!("prune: left alone ({})", g.why),
                };
                (g.site.clone(), text)
            })
            .collect();
        let total = crate::budget::total_note(
            self.budget,
            "conv/dense",
            (self.macs_before, self.macs_after),
            &self.data,
            self.score.as_ref(),
        );
        out.push(("(prune total)".into(), total));
        out
    }
}
