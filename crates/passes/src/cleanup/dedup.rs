//! `dedup-initializers`: initializers with the same type, shape and bytes become one.

use crate::pass::{Grant, Pass, PassCx, PassError};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use whittle_ir::{Graph, ValueId};

/// Bytes compared at each end of a tensor before it is read in full.
const EDGE: usize = 64;

/// Type code, dims, and the first and last [`EDGE`] bytes.
type Key = (i32, Vec<i64>, Vec<u8>);

/// Readers of a duplicate constant read the first copy. Graph inputs (overridable) and
/// outputs (interface) are never merged; only tensors whose type, shape and first and last
/// bytes collide with another are hashed, so big distinct weights are not read in full.
pub struct DedupInitializers;

impl Pass for DedupInitializers {
    /// Safe over any encoding: it only removes what nothing reads, or merges equals.
    fn phase(&self) -> whittle_ir::Phase {
        whittle_ir::Phase::Cleanup
    }

    fn name(&self) -> &'static str {
        "dedup-initializers"
    }

    fn description(&self) -> &'static str {
        "merge initializers holding identical tensors"
    }

    fn run(&self, g: &mut Graph, _is_subgraph: bool, cx: &mut PassCx) -> Result<bool, PassError> {
        let candidates: Vec<ValueId> = g
            .initializers()
            .iter()
            .copied()
            .filter(|v| g.constant(*v).is_some() && !g.is_output(*v))
            // A deferred encoding is computed only when written: reading it here would
            // encode the model twice. Its source was deduplicated before it was encoded.
            .filter(|v| g.constant(*v).is_some_and(|t| t.deferred().is_none()))
            .collect();
        // Grouped by type, shape and the bytes at both ends: only tensors that agree on
        // all of those are read in full.
        let mut by_shape: HashMap<Key, Vec<ValueId>> = HashMap::new();
        for v in candidates {
            if let Some(t) = g.constant(v) {
                let Ok(bytes) = t.le_bytes() else { continue };
                let n = bytes.len();
                let ends = [&bytes[..n.min(EDGE)], &bytes[n.saturating_sub(EDGE)..]].concat();
                by_shape
                    .entry((t.dtype().code(), t.dims.clone(), ends))
                    .or_default()
                    .push(v);
            }
        }
        let mut groups: Vec<Vec<ValueId>> =
            by_shape.into_values().filter(|g| g.len() > 1).collect();
        groups.sort();
        let mut changed = false;
        for group in groups {
            let mut first_of: HashMap<u64, Vec<ValueId>> = HashMap::new();
            for v in group {
                let Some(bytes) = g.constant(v).and_then(|t| t.le_bytes().ok()) else {
                    continue;
                };
                let mut h = DefaultHasher::new();
                bytes.hash(&mut h);
                // Hashing touched every page; a mapped weight need not stay resident.
                if let Some(t) = g.constant(v) {
                    t.release();
                }
                let slot = first_of.entry(h.finish()).or_default();
                let same = slot.iter().copied().find(|k| {
                    g.constant(*k)
                        .and_then(|t| t.le_bytes().ok())
                        .is_some_and(|b| b == bytes)
                });
                let Some(k) = same else {
                    slot.push(v);
                    continue;
                };
                let name = g.value(v).name().to_string();
                match cx.grant("dedup-initializers", "dedup-initializers", &name) {
                    Grant::Yes => {}
                    Grant::Denied => continue,
                    Grant::Spent => return Ok(changed),
                }
                cx.begin_edit(g);
                g.replace_all_uses(v, k);
                g.remove_initializer(v);
                cx.end_edit(g);
                changed = true;
            }
        }
        Ok(changed)
    }
}
