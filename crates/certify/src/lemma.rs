//! The lemmas the checker proves from a region and the state around it, exactly: each
//! is the identity a rule relies on, checked on the recorded nodes with the checker's
//! own arithmetic (no rewrite code). A rule without a lemma here is left to evaluation.

use crate::record::{NodeRec, Region, TensorRec};
use crate::replay::GraphState;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Ops whose result is not a function of their inputs: never merged.
const RANDOM: &[&str] = &[
    "|RandomNormal",
    "|RandomUniform",
    "|RandomNormalLike",
    "|RandomUniformLike",
    "|Multinomial",
    "|Bernoulli",
];

/// The lemma of `rule`, checked before the region applies (`before`) and after it
/// (`after`, the same graph with the region applied). Ok(Some(lemma)) proves the rewrite
/// exact; Ok(None): no lemma for this rule; Err: the lemma fails (a wrong rewrite).
pub struct Lemma {
    pub name: &'static str,
    pub statement: &'static str,
}

/// The lemmas this checker knows, by rule.
pub fn lemma_of(rule: &str) -> Option<Lemma> {
    let (name, statement) = match rule {
        "dead-node" => (
            "dead code",
            "a node none of whose outputs is read or is a graph output can go",
        ),
        "unused-initializer" => (
            "dead code",
            "an initializer nothing reads and that is not a graph output can go",
        ),
        "constant-to-initializer" => (
            "constant",
            "y = Constant(value = T) is the initializer y = T",
        ),
        "dedup-initializers" => (
            "equal constants",
            "two initializers with the same type, dims and bytes are one",
        ),
        "cse" => (
            "congruence",
            "a deterministic op applied to the same inputs with the same attributes \
             gives the same outputs",
        ),
        "identity" => ("identity", "Identity(x) = x"),
        "transpose-chain" => (
            "permutation composition",
            "Transpose(Transpose(x, p), q) = Transpose(x, r) with r[i] = p[q[i]]; \
             the identity r is x",
        ),
        _ => return None,
    };
    Some(Lemma { name, statement })
}

/// Values a rewrite forwards: readers of each old name now read the new one, and the
/// nodes named (by key) are gone for good.
#[derive(Debug, Default)]
pub struct Forwarding {
    pub map: Vec<(String, String)>,
    pub eliminated: Vec<String>,
}

/// Checks the side conditions of `rule`'s lemma that need the graph before the region
/// applies; returns the forwarding the region must show.
pub fn check_before(
    rule: &str,
    region: &Region,
    before: &GraphState,
) -> Result<Forwarding, String> {
    match rule {
        "constant-to-initializer" => constant(region).map(|()| Forwarding::default()),
        "dedup-initializers" => dedup(region, before),
        "cse" => cse(region, before),
        "identity" => identity(region),
        "transpose-chain" => transpose_chain(region),
        _ => Ok(Forwarding::default()),
    }
}

/// Checks what needs the graph after the region: dead code is unread; forwarded values
/// are read nowhere any more and the touched readers are the old ones with names swapped.
pub fn check_after(
    rule: &str,
    region: &Region,
    after: &GraphState,
    forward: &Forwarding,
) -> Result<(), String> {
    match rule {
        "dead-node" => {
            if !region.added.is_empty() || !region.inits_added.is_empty() {
                return Err("dead-code added nodes or initializers".into());
            }
            let gone: Vec<&String> = region.removed.iter().flat_map(|r| &r.outputs).collect();
            unread(after, gone)
        }
        "unused-initializer" => {
            if !region.added.is_empty() || !region.removed.is_empty() {
                return Err("an unused initializer's removal changed nodes".into());
            }
            unread(
                after,
                region.inits_removed.iter().map(|t| &t.name).collect(),
            )
        }
        "dedup-initializers" if forward.map.is_empty() => unread(
            after,
            region.inits_removed.iter().map(|t| &t.name).collect(),
        ),
        "dedup-initializers" | "cse" | "identity" => rewired(region, forward),
        "transpose-chain" if !forward.map.is_empty() => rewired(region, forward),
        _ => Ok(()),
    }
}

/// No node of `after` reads these names and none is a graph output.
fn unread(after: &GraphState, names: Vec<&String>) -> Result<(), String> {
    for name in names.into_iter().filter(|n| !n.is_empty()) {
        if let Some(r) = after.nodes.values().find(|r| r.inputs.contains(name)) {
            return Err(format!("'{name}' is still read by {} ({})", r.key(), r.op));
        }
        if after.outputs.contains(name) {
            return Err(format!("'{name}' is a graph output"));
        }
    }
    Ok(())
}

/// The region's readers: every removed node but the eliminated ones comes back with
/// the forwarding applied to its inputs (and, where a forwarded value was a graph output,
/// the new value taking the old name), and nothing else is added.
fn rewired(region: &Region, fwd: &Forwarding) -> Result<(), String> {
    let forward = &fwd.map;
    let map: HashMap<&str, &str> = forward
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let mut expect: Vec<NodeRec> = Vec::new();
    for r in region
        .removed
        .iter()
        .filter(|r| !fwd.eliminated.contains(&r.key()))
    {
        let mut e = r.clone();
        for i in &mut e.inputs {
            if let Some(to) = map.get(i.as_str()) {
                *i = to.to_string();
            }
        }
        expect.push(e);
    }
    // A forwarded graph output keeps its name: the new value took the old one (an added
    // node defines the old name). Read back, the old name is the new value.
    let mut added: Vec<NodeRec> = region.added.clone();
    for (old, new) in forward {
        if added.iter().any(|a| a.outputs.contains(old)) {
            for name in added
                .iter_mut()
                .flat_map(|a| a.inputs.iter_mut().chain(a.outputs.iter_mut()))
                .filter(|n| *n == old)
            {
                *name = new.clone();
            }
        }
    }
    let key = |r: &NodeRec| format!("{r:?}");
    let mut want: Vec<String> = expect.iter().map(key).collect();
    let mut got: Vec<String> = added.iter().map(key).collect();
    want.sort();
    got.sort();
    if want != got {
        return Err(format!(
            "the rewired nodes are not the readers with {} swapped in",
            forward
                .iter()
                .map(|(a, b)| format!("'{b}' for '{a}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// Constant(value = T) → initializer T: one node out, one initializer in, same content.
fn constant(region: &Region) -> Result<(), String> {
    let [c] = region.removed.as_slice() else {
        return Err("more than the Constant node changed".into());
    };
    let [t] = region.inits_added.as_slice() else {
        return Err("not exactly one initializer added".into());
    };
    if c.op != "|Constant" || !region.added.is_empty() || c.outputs != [t.name.clone()] {
        return Err("not a Constant replaced by its initializer".into());
    }
    match constant_content(c) {
        Some(content) if content == t.content() => Ok(()),
        Some(_) => Err(format!(
            "initializer '{}' does not hold the Constant's value",
            t.name
        )),
        None => Err("the Constant's form is not one the checker reads".into()),
    }
}

/// The content record (`TensorRec::content`) a Constant node defines, computed here.
fn constant_content(c: &NodeRec) -> Option<String> {
    if let Some(v) = c.attr("value") {
        return v.strip_prefix("t:").map(str::to_string);
    }
    let digest = |bytes: Vec<u8>| -> String {
        Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let rec = |dtype: i32, dims: Vec<i64>, bytes: Vec<u8>| TensorRec {
        name: String::new(),
        dtype,
        dims,
        sha256: digest(bytes),
    };
    if let Some(f) = c.attr("value_float").and_then(|v| v.strip_prefix("f:")) {
        let bits = u32::from_str_radix(f, 16).ok()?;
        return Some(rec(1, vec![], bits.to_le_bytes().to_vec()).content());
    }
    if let Some(i) = c.attr("value_int").and_then(|v| v.strip_prefix("i:")) {
        let i: i64 = i.parse().ok()?;
        return Some(rec(7, vec![], i.to_le_bytes().to_vec()).content());
    }
    None
}

fn dedup(region: &Region, before: &GraphState) -> Result<Forwarding, String> {
    let [gone] = region.inits_removed.as_slice() else {
        return Err("not exactly one initializer merged".into());
    };
    // What the readers read in its place.
    let mut kept: Option<&String> = None;
    for r in &region.removed {
        let a = region.added.iter().find(|a| a.key() == r.key());
        let Some(a) = a.filter(|a| a.inputs.len() == r.inputs.len()) else {
            return Err(format!("reader {} was not rewired in place", r.key()));
        };
        for (x, y) in r.inputs.iter().zip(&a.inputs) {
            if x == &gone.name && kept.is_some_and(|k| k != y) {
                return Err(format!("'{}' was replaced by two names", gone.name));
            }
            if x == &gone.name {
                kept = Some(y);
            }
        }
    }
    // Read by nothing: its removal is dead code (checked after the region applies).
    let Some(kept) = kept else {
        return Ok(Forwarding::default());
    };
    match before.inits.get(kept) {
        Some(t) if t.content() == gone.content() && t.name != gone.name => Ok(Forwarding {
            map: vec![(gone.name.clone(), kept.clone())],
            eliminated: Vec::new(),
        }),
        Some(_) => Err(format!(
            "'{kept}' does not hold the same type, dims and bytes as '{}'",
            gone.name
        )),
        None => Err(format!("'{kept}' is not an initializer")),
    }
}

fn cse(region: &Region, before: &GraphState) -> Result<Forwarding, String> {
    // The duplicate: the removed node no added node stands in for.
    let dup = region
        .removed
        .iter()
        .find(|r| !region.added.iter().any(|a| a.key() == r.key()))
        .ok_or("no node was merged away")?;
    if RANDOM.contains(&dup.op.as_str()) {
        return Err(format!("{} is random: two of them differ", dup.op));
    }
    // Its twin: whatever its readers read now in its first output's place.
    let first = dup
        .outputs
        .first()
        .ok_or("the merged node has no outputs")?;
    let mut now: Option<&String> = None;
    for r in region.removed.iter().filter(|r| r.key() != dup.key()) {
        let Some(a) = region.added.iter().find(|a| a.key() == r.key()) else {
            return Err(format!("reader {} was not rewired in place", r.key()));
        };
        for (x, y) in r.inputs.iter().zip(&a.inputs) {
            if x == first {
                now = Some(y);
            }
        }
    }
    let twin = match now {
        Some(n) => before
            .nodes
            .values()
            .find(|k| k.outputs.first() == Some(n))
            .ok_or_else(|| format!("'{n}' is not a node's first output"))?,
        // Read by nothing (a graph output would have kept it): dead after the merge.
        None => {
            return Ok(Forwarding {
                map: Vec::new(),
                eliminated: vec![dup.key()],
            });
        }
    };
    if twin.key() == dup.key() || !congruent(twin, dup) {
        return Err(format!(
            "{} and {} do not apply the same op with the same attributes to the same inputs",
            dup.key(),
            twin.key()
        ));
    }
    Ok(Forwarding {
        map: dup
            .outputs
            .iter()
            .cloned()
            .zip(twin.outputs.iter().cloned())
            .collect(),
        eliminated: vec![dup.key()],
    })
}

/// Same op, attributes and inputs, as many outputs.
fn congruent(a: &NodeRec, b: &NodeRec) -> bool {
    a.op == b.op && a.attrs == b.attrs && a.inputs == b.inputs && a.outputs.len() == b.outputs.len()
}

fn identity(region: &Region) -> Result<Forwarding, String> {
    let id = region
        .removed
        .iter()
        .find(|r| r.op == "|Identity")
        .ok_or("no Identity node removed")?;
    match (id.inputs.as_slice(), id.outputs.as_slice()) {
        ([x], [y]) if !x.is_empty() => Ok(Forwarding {
            map: vec![(y.clone(), x.clone())],
            eliminated: vec![id.key()],
        }),
        _ => Err("the Identity does not have one input and one output".into()),
    }
}

/// The one permutation `r` with Transpose(Transpose(x, p), q) = Transpose(x, r):
/// output axis i of the pair is axis q[i] of the inner result, which is axis p[q[i]] of
/// x. None when p and q are not permutations of one rank.
pub fn compose(p: &[i64], q: &[i64]) -> Option<Vec<i64>> {
    let is_perm = |v: &[i64]| {
        let mut seen = vec![false; v.len()];
        v.iter().all(|&a| {
            usize::try_from(a)
                .ok()
                .and_then(|a| seen.get_mut(a))
                .is_some_and(|s| !std::mem::replace(s, true))
        })
    };
    if p.len() != q.len() || !is_perm(p) || !is_perm(q) {
        return None;
    }
    Some(q.iter().map(|&i| p[i as usize]).collect())
}

/// Parses `perm=ints:a,b,c`.
fn perm_of(r: &NodeRec) -> Option<Vec<i64>> {
    r.attr("perm")?
        .strip_prefix("ints:")?
        .split(',')
        .map(|x| x.parse().ok())
        .collect()
}

fn transpose_chain(region: &Region) -> Result<Forwarding, String> {
    let ts: Vec<&NodeRec> = region
        .removed
        .iter()
        .filter(|r| r.op == "|Transpose")
        .collect();
    let (inner, outer) = match ts.as_slice() {
        [a, b] if b.inputs.first() == a.outputs.first() => (*a, *b),
        [a, b] if a.inputs.first() == b.outputs.first() => (*b, *a),
        _ => return Err("not two chained Transposes".into()),
    };
    let (Some(p), Some(q)) = (perm_of(inner), perm_of(outer)) else {
        return Err("a default perm: the rank it reverses is not in the records".into());
    };
    let r = compose(&p, &q).ok_or("the perms do not compose")?;
    let x = inner.inputs.first().cloned().unwrap_or_default();
    let y = outer.outputs.first().cloned().unwrap_or_default();
    let eliminated = vec![inner.key(), outer.key()];
    if r.iter().enumerate().all(|(i, v)| *v == i as i64) {
        return Ok(Forwarding {
            map: vec![(y, x)],
            eliminated,
        });
    }
    let fused = region
        .added
        .iter()
        .find(|a| a.op == "|Transpose" && a.outputs.first() == Some(&y))
        .ok_or("no composed Transpose")?;
    if fused.inputs.first() != Some(&x)
        || perm_of(fused).as_ref() != Some(&r)
        || region.added.len() != 1
    {
        return Err(format!(
            "the composed Transpose is not Transpose({x}, perm={r:?})"
        ));
    }
    Ok(Forwarding::default())
}
