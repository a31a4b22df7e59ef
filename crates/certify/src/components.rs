//! Rewrites grouped by what they share: a rewrite that removes a node or initializer
//! another one added joins its group. A group's nodes before are then all nodes of the
//! original model and its nodes after all nodes of the optimized one, so the region can be
//! evaluated from the two files alone (the constants in between are never written).

use crate::record::Rewrite;
use std::collections::{BTreeSet, HashMap};

/// A group of rewrites in one graph, with the region they changed together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Component {
    /// Rewrite indices (0-based, in log order).
    pub members: Vec<usize>,
    /// Their rules, in the same order.
    pub rules: Vec<String>,
    /// The graph they changed (empty: the main graph).
    pub scope: Vec<String>,
    /// Keys (`NodeRec::key`) of the original's nodes the group removed.
    pub before: BTreeSet<String>,
    /// Keys of the optimized model's nodes the group added (and kept).
    pub after: BTreeSet<String>,
}

/// Union-find over rewrite indices.
struct Sets(Vec<usize>);

impl Sets {
    fn find(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[rb] = ra;
        }
    }
}

/// The components of `rewrites` (all with regions, in the order they were applied).
pub fn of(rewrites: &[Rewrite]) -> Vec<Component> {
    let mut sets = Sets((0..rewrites.len()).collect());
    // Who added each node or initializer still present: (scope, key) -> rewrite.
    let mut creator: HashMap<(Vec<String>, String), usize> = HashMap::new();
    let mut from_original: Vec<Vec<String>> = vec![Vec::new(); rewrites.len()];
    for (k, rw) in rewrites.iter().enumerate() {
        let Some(r) = &rw.region else { continue };
        let removed = r
            .removed
            .iter()
            .map(|n| n.key())
            .chain(r.inits_removed.iter().map(|t| format!("init {}", t.name)));
        for key in removed {
            match creator.remove(&(r.scope.clone(), key.clone())) {
                Some(i) => sets.union(i, k),
                None if !key.starts_with("init ") => from_original[k].push(key),
                None => {}
            }
        }
        let added = r
            .added
            .iter()
            .map(|n| n.key())
            .chain(r.inits_added.iter().map(|t| format!("init {}", t.name)));
        for key in added {
            creator.insert((r.scope.clone(), key), k);
        }
    }
    let mut groups: HashMap<usize, Component> = HashMap::new();
    for (k, rw) in rewrites.iter().enumerate() {
        let Some(r) = &rw.region else { continue };
        let root = sets.find(k);
        let c = groups.entry(root).or_default();
        c.members.push(k);
        c.rules.push(rw.rule.clone());
        c.scope = r.scope.clone();
        c.before.extend(from_original[k].drain(..));
    }
    for ((scope, key), k) in creator {
        if key.starts_with("init ") {
            continue;
        }
        let root = sets.find(k);
        if let Some(c) = groups.get_mut(&root).filter(|c| c.scope == scope) {
            c.after.insert(key);
        }
    }
    let mut out: Vec<Component> = groups.into_values().collect();
    out.sort_by_key(|c| c.members[0]);
    out
}
