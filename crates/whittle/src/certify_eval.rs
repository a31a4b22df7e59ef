//! The certificate checker's evaluator: a component's region before (its nodes in the
//! original) and after (its nodes in the optimized model), each run as a model of its
//! own in a runtime, fed the values the original computes on one input set.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use whittle_certify::components::Component;
use whittle_certify::record::NodeRec;
use whittle_certify::{ATOL, Compared, Evaluator, RTOL};
use whittle_eval::{Runner, Runtime};
use whittle_ir::{Graph, Model, NodeId, Tensor, ValueId};

/// Where the values a region reads come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// One run of the whole original on the input set: the values it really sees.
    Original,
    /// Random values of the types and dims inference gives for the input set (shape
    /// values where inference knows them): no run of the whole model, for models larger
    /// than memory.
    Random,
}

/// Runs regions in `runtime`, fed from one run of the original on `inputs` (or, with
/// [`Feed::Random`], from random values shaped by it).
pub struct RegionEvaluator<'a> {
    original: &'a Model,
    optimized: &'a Model,
    runtime: Runtime,
    inputs: Vec<Tensor>,
    feed: Feed,
    /// The original's values by name, computed once for every name a region reads.
    values: RefCell<Option<Result<HashMap<String, Tensor>, String>>>,
    /// Every name some component's region reads (set by `prepare`).
    wanted: RefCell<BTreeSet<String>>,
}

impl<'a> RegionEvaluator<'a> {
    /// An evaluator over the two models, fed from `inputs` (one per original input).
    pub fn new(
        original: &'a Model,
        optimized: &'a Model,
        runtime: Runtime,
        inputs: Vec<Tensor>,
        feed: Feed,
    ) -> RegionEvaluator<'a> {
        RegionEvaluator {
            original,
            optimized,
            runtime,
            inputs,
            feed,
            values: RefCell::new(None),
            wanted: RefCell::new(BTreeSet::new()),
        }
    }

    /// The original's values for every name `wanted` holds (one run, extra outputs).
    fn values(&self) -> Result<HashMap<String, Tensor>, String> {
        if let Some(v) = self.values.borrow().as_ref() {
            return v.clone();
        }
        let computed = match self.feed {
            Feed::Original => self.compute_values(),
            Feed::Random => self.random_values(),
        };
        *self.values.borrow_mut() = Some(computed.clone());
        computed
    }

    /// Random values for every wanted name, typed and shaped by inference on the
    /// original with the input set's dims; integer values inference knows (shapes) are
    /// those values.
    fn random_values(&self) -> Result<HashMap<String, Tensor>, String> {
        let mut m = self.original.clone();
        let g = &m.graph;
        let input_shapes = g
            .inputs()
            .iter()
            .filter(|v| g.value(**v).initializer().is_none())
            .zip(&self.inputs)
            .map(|(v, t)| {
                let dims = t.dims.iter().map(|d| whittle_ir::Dim::Known(*d)).collect();
                (g.value(*v).name().to_string(), dims)
            })
            .collect();
        let opts = whittle_ir::infer::InferOptions { input_shapes };
        let facts = whittle_ir::infer::infer(&mut m, &opts).map_err(|e| e.to_string())?;
        let g = &m.graph;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut values = HashMap::new();
        for name in self.wanted.borrow().iter() {
            let Some(fact) = g.find(name).and_then(|v| facts.fact(v)) else {
                continue;
            };
            if let Some(t) = random_tensor(fact, &mut seed) {
                values.insert(name.clone(), t);
            }
        }
        Ok(values)
    }

    fn compute_values(&self) -> Result<HashMap<String, Tensor>, String> {
        let g = &self.original.graph;
        let bytes: u64 = g
            .initializers()
            .iter()
            .filter_map(|v| g.value(*v).initializer())
            .map(Tensor::stored_bytes)
            .sum();
        if bytes > MAX_WHOLE_RUN {
            return Err(format!(
                "the original holds {:.1} GiB of constants, too many to run it whole here \
                 (more than 4 GiB): --region-inputs random feeds regions without that run",
                bytes as f64 / (1u64 << 30) as f64
            ));
        }
        let mut m = self.original.clone();
        let g = &mut m.graph;
        let wanted: Vec<ValueId> = self
            .wanted
            .borrow()
            .iter()
            .filter_map(|n| g.find(n))
            .filter(|v| g.value(*v).producer().is_some() && !g.is_output(*v))
            .collect();
        let first_extra = g.outputs().len();
        for v in &wanted {
            g.push_output(*v);
        }
        whittle_ir::infer::infer(&mut m, &Default::default()).map_err(|e| e.to_string())?;
        let runner = Runner::exact(&self.runtime, &m, "original model", &self.inputs)
            .map_err(|e| e.to_string())?;
        let outs = runner.run(&self.inputs).map_err(|e| e.to_string())?;
        let g = &m.graph;
        let mut values: HashMap<String, Tensor> = HashMap::new();
        for (v, t) in g.inputs().iter().zip(&self.inputs) {
            values.insert(g.value(*v).name().to_string(), t.clone());
        }
        for (k, t) in outs.into_iter().enumerate() {
            let v = g.outputs()[k];
            if k >= first_extra || g.is_output(v) {
                values.insert(g.value(v).name().to_string(), t);
            }
        }
        Ok(values)
    }
}

/// A random tensor of `fact`'s type and (known) dims: floats in [-1, 1), integers in
/// [0, 4), or the integers inference knows. None for other types or unknown dims.
fn random_tensor(fact: &whittle_ir::infer::Fact, seed: &mut u64) -> Option<Tensor> {
    let dims: Vec<i64> = fact
        .dims
        .as_ref()?
        .iter()
        .map(|d| match d {
            whittle_ir::Dim::Known(k) => Some(*k),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let n = dims.iter().product::<i64>().max(0) as usize;
    let mut next = || {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 33) as u32
    };
    match fact.elem? {
        whittle_ir::DataType::Float => {
            let v: Vec<f32> = (0..n)
                .map(|_| next() as f32 / 2f32.powi(30) - 1.0)
                .collect();
            Some(Tensor::from_f32(dims, &v))
        }
        whittle_ir::DataType::Int64 => {
            let v: Vec<i64> = match fact.ints().filter(|v| v.len() == n) {
                Some(known) => known,
                None => (0..n).map(|_| i64::from(next() % 4)).collect(),
            };
            Some(Tensor::from_i64(dims, &v))
        }
        _ => None,
    }
}

/// The main-graph nodes of `g` whose records have these keys.
fn nodes_by_key(g: &Graph, keys: &BTreeSet<String>) -> Vec<NodeId> {
    g.node_ids()
        .filter(|n| keys.contains(&NodeRec::of(g, *n).key()))
        .collect()
}

/// Names the nodes read that none of them defines, and names they define.
fn boundary(g: &Graph, nodes: &[NodeId]) -> (BTreeSet<String>, BTreeSet<String>) {
    let name = |v: ValueId| g.value(v).name().to_string();
    let defined: BTreeSet<String> = nodes
        .iter()
        .flat_map(|n| g.node(*n).outputs().iter().flatten().map(|v| name(*v)))
        .collect();
    let read: BTreeSet<String> = nodes
        .iter()
        .flat_map(|n| {
            let node = g.node(*n);
            let caps = node.captures().iter().copied();
            node.inputs().iter().flatten().copied().chain(caps)
        })
        .map(name)
        .filter(|n| !defined.contains(n))
        .collect();
    (read, defined)
}

/// The names of `defs` (defined by `nodes`) that the rest of `g` reads or that are
/// graph outputs: what the region hands on, and so what must agree before and after.
fn seen_outside(g: &Graph, nodes: &[NodeId], defs: &BTreeSet<String>) -> BTreeSet<String> {
    defs.iter()
        .filter(|name| {
            let Some(v) = g.find(name) else { return false };
            g.is_output(v) || g.value(v).uses().iter().any(|u| !nodes.contains(&u.node))
        })
        .cloned()
        .collect()
}

/// A model of `nodes` of `src`, reading `reads` (initializers of `src`, and the values
/// the original computed for the rest, all as initializers) and giving `outputs`.
fn region_model(
    src: &Model,
    nodes: &[NodeId],
    reads: &BTreeSet<String>,
    outputs: &[String],
    values: &HashMap<String, Tensor>,
) -> Result<Model, String> {
    let g = &src.graph;
    let mut r = Graph::new();
    for name in reads {
        let v = r.intern(name);
        match g.find(name).and_then(|s| g.value(s).initializer()) {
            Some(t) => r.set_initializer(v, t.clone()),
            // The original's value on the input set, as a constant: shape inputs stay
            // static (tract needs them so), and both sides read the same numbers.
            None => {
                let t = values
                    .get(name)
                    .ok_or_else(|| format!("no value for '{name}' from the original"))?;
                r.set_initializer(v, t.clone());
            }
        }
    }
    let order = g.nodes_in_order().map_err(|e| e.to_string())?;
    for n in order.into_iter().filter(|n| nodes.contains(n)) {
        let node = g.node(n);
        let ins = node
            .inputs()
            .iter()
            .map(|v| v.map(|v| r.intern(g.value(v).name())))
            .collect();
        let outs = node
            .outputs()
            .iter()
            .map(|v| v.map(|v| r.intern(g.value(v).name())))
            .collect();
        r.add_node(node.clone(), ins, outs)
            .map_err(|e| e.to_string())?;
    }
    for name in outputs {
        let v = r.intern(name);
        r.push_output(v);
    }
    let mut m = Model {
        graph: r,
        opset_imports: src.opset_imports.clone(),
        ir_version: src.ir_version,
        has_graph: true,
        ..Model::default()
    };
    whittle_ir::infer::infer(&mut m, &Default::default()).map_err(|e| e.to_string())?;
    Ok(m)
}

/// The original is run whole (to feed the regions) only below this many bytes of
/// constants: the runtime takes the model, weights and all, as one message.
const MAX_WHOLE_RUN: u64 = 4 << 30;

/// A region model holds the constants it reads, and a runtime takes it as one protobuf
/// message: past this many bytes of them it is not built.
const MAX_REGION_CONSTANTS: u64 = 1 << 30;

/// Err when the initializers of `m` that `reads` names are too large to copy into a
/// region model.
fn constants_fit(m: &Model, reads: &BTreeSet<String>) -> Result<(), String> {
    let g = &m.graph;
    let bytes: u64 = reads
        .iter()
        .filter_map(|n| g.value(g.find(n)?).initializer())
        .map(Tensor::stored_bytes)
        .sum();
    if bytes > MAX_REGION_CONSTANTS {
        return Err(format!(
            "the region reads {:.1} GiB of constants, more than a region model holds \
             (1 GiB): not evaluated",
            bytes as f64 / (1u64 << 30) as f64
        ));
    }
    Ok(())
}

/// Largest difference, and whether every element is within tolerance.
fn compare(a: &[Tensor], b: &[Tensor]) -> Result<Compared, String> {
    let mut out = Compared {
        max_abs: 0.0,
        within: true,
    };
    for (x, y) in a.iter().zip(b) {
        if x.dims != y.dims || x.dtype() != y.dtype() {
            return Ok(Compared {
                max_abs: f64::INFINITY,
                within: false,
            });
        }
        let (Ok(p), Ok(q)) = (x.to_f32_vec(), y.to_f32_vec()) else {
            let same = x.le_bytes().ok() == y.le_bytes().ok();
            out.within &= same;
            continue;
        };
        // A rewrite that reassociates a sum (a folded BatchNorm, a fused bias) rounds
        // differently by an amount bounded relative to the sum's terms, not its result:
        // the tolerance is relative to the output's largest magnitude.
        let scale = p.iter().fold(0f64, |m, v| m.max((*v as f64).abs()));
        for (p, q) in p.iter().zip(&q) {
            let (p, q) = (*p as f64, *q as f64);
            if p.is_nan() && q.is_nan() || p == q {
                continue;
            }
            let d = (p - q).abs();
            out.max_abs = out.max_abs.max(d);
            out.within &= d <= ATOL + RTOL * scale;
        }
    }
    Ok(out)
}

impl Evaluator for RegionEvaluator<'_> {
    fn name(&self) -> String {
        self.runtime.name().to_string()
    }

    fn prepare(&self, components: &[Component]) {
        let g = &self.original.graph;
        let mut wanted = self.wanted.borrow_mut();
        for c in components.iter().filter(|c| c.scope.is_empty()) {
            let (reads, _) = boundary(g, &nodes_by_key(g, &c.before));
            wanted.extend(reads);
            let o = &self.optimized.graph;
            let (reads, _) = boundary(o, &nodes_by_key(o, &c.after));
            wanted.extend(reads);
        }
    }

    fn compare(&self, c: &Component) -> Result<Compared, String> {
        let (g, o) = (&self.original.graph, &self.optimized.graph);
        let before = nodes_by_key(g, &c.before);
        let after = nodes_by_key(o, &c.after);
        if before.len() != c.before.len() || after.len() != c.after.len() {
            return Err("the region's nodes are not all in the two files".into());
        }
        let (reads_b, defs_b) = boundary(g, &before);
        let (reads_a, defs_a) = boundary(o, &after);
        // What the optimized model reads of the region must be what the original's
        // region computed under those names; names the original read but the optimized
        // model no longer does were taken over by other rewrites, checked on their own.
        let outputs: Vec<String> = seen_outside(o, &after, &defs_a).into_iter().collect();
        if let Some(x) = outputs.iter().find(|n| !defs_b.contains(*n)) {
            return Err(format!(
                "the region after gives '{x}', which it did not give before"
            ));
        }
        if outputs.is_empty() {
            // Nothing the region computes is read any more: nothing to compare.
            return Ok(Compared {
                max_abs: 0.0,
                within: true,
            });
        }
        for (m, reads) in [(self.original, &reads_b), (self.optimized, &reads_a)] {
            constants_fit(m, reads)?;
        }
        let values = self.values()?;
        let mb = region_model(self.original, &before, &reads_b, &outputs, &values)?;
        let ma = region_model(self.optimized, &after, &reads_a, &outputs, &values)?;
        let run = |m: &Model, label: &str| -> Result<Vec<Tensor>, String> {
            Runner::exact(&self.runtime, m, label, &[])
                .and_then(|r| r.run(&[]))
                .map_err(|e| e.to_string())
        };
        let x = run(&mb, "region before")?;
        let y = run(&ma, "region after")?;
        compare(&x, &y)
    }
}
