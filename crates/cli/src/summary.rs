//! Before/after tables of model summaries ([`whittle::Summary`]), as `whittle optimize`
//! prints them.

pub use whittle::Summary;

/// A before/after table: one row per op type whose count changed or exists, then totals.
pub fn table(before: &Summary, after: &Summary) -> String {
    table_with(before, after, ["before", "after"])
}

/// [`table`] with other column headings.
pub fn table_with(before: &Summary, after: &Summary, heads: [&str; 2]) -> String {
    let mut rows = vec![format!("{:<28} {:>8} {:>8}", "", heads[0], heads[1])];
    let ops: std::collections::BTreeSet<&String> =
        before.ops.keys().chain(after.ops.keys()).collect();
    for op in ops {
        let b = before.ops.get(op).copied().unwrap_or(0);
        let a = after.ops.get(op).copied().unwrap_or(0);
        rows.push(format!("{op:<28} {b:>8} {a:>8}"));
    }
    let totals = [
        ("nodes", before.nodes as u64, after.nodes as u64),
        (
            "initializers",
            before.initializers as u64,
            after.initializers as u64,
        ),
        (
            "initializer bytes",
            before.initializer_bytes,
            after.initializer_bytes,
        ),
    ];
    for (name, b, a) in totals {
        rows.push(format!("{name:<28} {b:>8} {a:>8}"));
    }
    rows.join("\n")
}
