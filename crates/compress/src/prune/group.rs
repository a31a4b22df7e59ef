//! Prunable groups: a layer's output channels (Conv filters, dense output neurons)
//! together with everything that carries them to the layers that read them — the
//! per-channel [`region`](super::region) and the readers' matching input channels. When
//! the channels fan out to several layers, each loses the same input channels and is
//! refit on its own; the channels are ranked by their share of every reader's output.
//!
//! Layers whose channels meet in a Concat along the channel axis (SqueezeNet's expand
//! convolutions) are one group with a part per layer: the consumer sees one channel axis
//! and is refit over all of it, and each part keeps the chosen channels that fall in its
//! range (a part left with none is dropped from the Concat).

use super::Kind;
use super::region::{self, Layout, Region};
use crate::decompose::layer::{Layer, Shape};
use std::collections::HashMap;
use whittle_ir::{Graph, NodeId, ValueId};
use whittle_passes::guard::dims;
use whittle_passes::pass::PassCx;

/// One prunable group.
#[derive(Clone, Debug)]
pub struct Group {
    pub kind: Kind,
    /// Index of the producing layer in the layer list.
    pub producer: usize,
    /// Index of the consuming layer.
    pub consumer: usize,
    pub region: Region,
    /// Channels the producer makes.
    pub channels: usize,
    /// Consumer input features per channel: Conv taps, the spatial size behind a
    /// Flatten, or 1.
    pub span: usize,
    /// Where the channels live in the producer's output.
    pub layout: Layout,
    /// Layers whose output channels are cut with the producer's (the key and value
    /// projections of a head group).
    pub partners: Vec<usize>,
    /// Producer output entries per channel: 1, or a head's size.
    pub unit: usize,
    /// The layers whose channels a Concat joins (the first is `producer`), each with its
    /// range of the group's channels; empty for one producer.
    pub parts: Vec<Part>,
    /// Further layers reading the channels, with their spans, when the channels fan out
    /// (each loses the same input channels and is refit on its own).
    pub readers: Vec<(usize, usize)>,
}

/// One layer's channels inside a Concat along the channel axis.
#[derive(Clone, Debug)]
pub struct Part {
    pub producer: usize,
    /// The part's first channel among the Concat's.
    pub offset: usize,
    pub channels: usize,
    /// From the producer's output to its Concat input.
    pub region: Region,
    /// Where the channels are in the producer's output.
    pub layout: Layout,
}

impl Part {
    /// The channels of `kept` (the group's) that fall in this part, counted from its
    /// start.
    pub fn local(&self, kept: &[usize]) -> Vec<usize> {
        kept.iter()
            .filter(|c| self.holds(**c))
            .map(|c| c - self.offset)
            .collect()
    }

    /// Whether the group's channel `c` is one of this part's.
    pub fn holds(&self, c: usize) -> bool {
        (self.offset..self.offset + self.channels).contains(&c)
    }
}

impl Group {
    /// Every layer whose output channels are cut: the producer, its partners, the other
    /// parts of its Concat.
    pub fn producers(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.producer)
            .chain(self.partners.iter().copied())
            .chain(self.parts.iter().skip(1).map(|p| p.producer))
    }

    /// Every layer reading the channels, with its span: `consumer` first.
    pub fn consumers(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        std::iter::once((self.consumer, self.span)).chain(self.readers.iter().copied())
    }

    /// The channels to keep for a target of `k`, from `ranked` (best first). One
    /// producer: the best `k`. Parts of a Concat: each part keeps the count the best `k`
    /// give it, rounded to the part's [`alignment`](super::alignment) (a part of 64
    /// keeps a multiple of 8, so the Concat stays blocked in ORT), its best channels;
    /// at least one part keeps some.
    pub fn choose(&self, ranked: &[usize], k: usize) -> Vec<usize> {
        let mut kept: Vec<usize> = ranked.iter().take(k).copied().collect();
        if !self.parts.is_empty() {
            let mut out = Vec::new();
            for p in &self.parts {
                let align = super::alignment(p.channels, 1);
                let n = p.local(&kept).len();
                let n = ((n + align / 2) / align * align).min(p.channels);
                let mine = ranked.iter().filter(|c| p.holds(**c));
                out.extend(mine.take(n).copied());
            }
            if out.is_empty() {
                out.extend(ranked.first());
            }
            kept = out;
        }
        kept.sort_unstable();
        kept
    }

    /// Each producer with the share of its output channels `kept` leaves it.
    pub fn shares(&self, kept: &[usize]) -> Vec<(usize, f64)> {
        if self.parts.is_empty() {
            let f = kept.len() as f64 / self.channels as f64;
            return self.producers().map(|i| (i, f)).collect();
        }
        self.parts
            .iter()
            .map(|p| (p.producer, p.local(kept).len() as f64 / p.channels as f64))
            .collect()
    }
}

/// A layer the search found nothing to do with, and why.
#[derive(Clone, Debug)]
pub struct LeftAlone {
    pub site: String,
    pub why: String,
}

/// The groups of `layers` (from [`crate::decompose::layer::find`]) whose kind is wanted,
/// and the producers left alone with the reason. A producer needs: group 1 (Conv), a
/// known output rank, a single output read only through a region ending in Convs
/// (group 1) or dense layers, or in a Concat whose every input is such a producer's.
pub fn find(
    g: &Graph,
    layers: &[Layer],
    kinds: &[Kind],
    cx: &PassCx,
) -> (Vec<Group>, Vec<LeftAlone>) {
    let by_node: HashMap<NodeId, usize> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| (l.node, i))
        .collect();
    let mut groups = Vec::new();
    let mut alone = Vec::new();
    let mut parts = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let Some((kind, layout)) = producer(g, l) else {
            continue;
        };
        if !kinds.contains(&kind) {
            continue;
        }
        if cx.denies(kind.rule(), &l.site) {
            alone.push(LeftAlone {
                site: l.site.clone(),
                why: "excluded".into(),
            });
            continue;
        }
        match group(g, layers, &by_node, i, kind, layout) {
            Ok(Found::Group(gr)) => groups.push(gr),
            Ok(Found::Part(part)) => parts.push(part),
            Err(why) => alone.push(LeftAlone {
                site: l.site.clone(),
                why,
            }),
        }
    }
    join_parts(g, layers, &by_node, parts, (&mut groups, &mut alone));
    (groups, alone)
}

/// What the walk from one producer found.
enum Found {
    Group(Group),
    /// Channels that end in a Concat, to be joined with its other inputs.
    Part(Pending),
}

/// A part waiting for the other inputs of its Concat.
struct Pending {
    kind: Kind,
    part: Part,
    concat: NodeId,
    slot: usize,
}

/// Joins the parts of each Concat into one group (in the order the Concats were first
/// reached); when a Concat's inputs are not all parts, each part's layer is left alone
/// with the reason.
fn join_parts(
    g: &Graph,
    layers: &[Layer],
    by_node: &HashMap<NodeId, usize>,
    mut parts: Vec<Pending>,
    (groups, alone): (&mut Vec<Group>, &mut Vec<LeftAlone>),
) {
    while let Some(first) = parts.first().map(|p| p.concat) {
        let (mine, rest): (Vec<_>, Vec<_>) = parts.into_iter().partition(|p| p.concat == first);
        parts = rest;
        let sites: Vec<String> = mine
            .iter()
            .map(|p| layers[p.part.producer].site.clone())
            .collect();
        match concat_group(g, layers, by_node, first, mine) {
            Ok(gr) => groups.push(gr),
            Err(why) => alone.extend(sites.into_iter().map(|site| LeftAlone {
                site,
                why: why.clone(),
            })),
        }
    }
}

/// The group of Concat `concat` whose inputs are `parts`: every input must be one, of
/// one kind, and the Concat's output must reach its readers through a region.
fn concat_group(
    g: &Graph,
    layers: &[Layer],
    by_node: &HashMap<NodeId, usize>,
    concat: NodeId,
    mut parts: Vec<Pending>,
) -> Result<Group, String> {
    let node = g.node(concat);
    parts.sort_by_key(|p| p.slot);
    for (slot, x) in node.inputs().iter().enumerate() {
        if parts.iter().all(|p| p.slot != slot) {
            let name = x.map_or("", |v| g.value(v).name());
            return Err(format!(
                "Concat '{}' also joins '{name}', which is not a prunable layer's channels",
                node.label()
            ));
        }
    }
    let kind = parts[0].kind;
    if parts.iter().any(|p| p.kind != kind) {
        return Err(format!(
            "Concat '{}' joins layers of two kinds",
            node.label()
        ));
    }
    let mut offset = 0;
    let mut joined = Vec::new();
    for mut p in parts {
        p.part.offset = offset;
        offset += p.part.channels;
        joined.push(p.part);
    }
    let layout = Layout {
        channels: offset,
        ..joined[0].layout
    };
    let producers: Vec<usize> = joined.iter().map(|p| p.producer).collect();
    let is_consumer = |n: NodeId, v: ValueId| -> bool {
        by_node
            .get(&n)
            .is_some_and(|j| layers[*j].x == v && !producers.contains(j))
    };
    let y = match node.outputs() {
        [Some(y)] => *y,
        _ => return Err(format!("Concat '{}' has no single output", node.label())),
    };
    let region = region::walk(g, y, layout, &is_consumer)?;
    if region.concat.is_some() {
        return Err(format!(
            "the channels of Concat '{}' meet another Concat",
            node.label()
        ));
    }
    let readers = consumers_of(layers, by_node, &region, layout)?;
    Ok(channel_group(kind, region, layout, readers, joined))
}

/// The consumer and the further readers of a region, each with its span.
type Readers = ((usize, usize), Vec<(usize, usize)>);

/// A group of whole channels (no partners, one entry each) whose readers take
/// `region`'s channels; the producer is the first part's (callers without parts set it).
fn channel_group(
    kind: Kind,
    region: Region,
    layout: Layout,
    ((consumer, span), readers): Readers,
    parts: Vec<Part>,
) -> Group {
    Group {
        kind,
        producer: parts.first().map_or(0, |p| p.producer),
        consumer,
        region,
        channels: layout.channels,
        span,
        layout,
        partners: Vec::new(),
        unit: 1,
        parts,
        readers,
    }
}

/// The layers reading the region's channels, each with its input features per channel
/// (the first is the group's consumer).
fn consumers_of(
    layers: &[Layer],
    by_node: &HashMap<NodeId, usize>,
    region: &Region,
    layout: Layout,
) -> Result<Readers, String> {
    let mut all = region.readers.iter().map(|(_, n)| {
        let c = *by_node
            .get(n)
            .ok_or_else(|| "the consumer is not a layer".to_string())?;
        Ok((c, span(&layers[c], region, layout)?))
    });
    let first = all.next().ok_or_else(|| "no consumer".to_string())??;
    Ok((first, all.collect::<Result<_, String>>()?))
}

/// The kind and channel layout of `l` as a producer, if it can be one.
fn producer(g: &Graph, l: &Layer) -> Option<(Kind, Layout)> {
    let y = g.node(l.node).output(0)?;
    match &l.shape {
        Shape::Conv(c) if c.group == 1 => Some((
            Kind::Conv,
            Layout {
                rank: 4,
                axis: 1,
                channels: c.cout,
            },
        )),
        Shape::Dense(d) => {
            let rank = dims(g, y).map(|d| d.len()).filter(|r| *r >= 2)?;
            let kind = if rank == 2 { Kind::Dense } else { Kind::Ffn };
            Some((
                kind,
                Layout {
                    rank,
                    axis: rank - 1,
                    channels: d.n,
                },
            ))
        }
        _ => None,
    }
}

fn group(
    g: &Graph,
    layers: &[Layer],
    by_node: &HashMap<NodeId, usize>,
    i: usize,
    kind: Kind,
    layout: Layout,
) -> Result<Found, String> {
    let l = &layers[i];
    let node = g.node(l.node);
    let y = node
        .output(0)
        .ok_or_else(|| "the layer has no output".to_string())?;
    if node.outputs().len() != 1 {
        return Err("the layer has more than one output".into());
    }
    if layout.channels < 2 {
        return Err("one channel".into());
    }
    let is_consumer = |n: NodeId, v: ValueId| -> bool {
        by_node
            .get(&n)
            .is_some_and(|j| layers[*j].x == v && *j != i)
    };
    let region = region::walk(g, y, layout, &is_consumer)?;
    if let Some((concat, slot)) = region.concat {
        let part = Part {
            producer: i,
            offset: 0,
            channels: layout.channels,
            region,
            layout,
        };
        return Ok(Found::Part(Pending {
            kind,
            part,
            concat,
            slot,
        }));
    }
    let readers = consumers_of(layers, by_node, &region, layout)?;
    let mut gr = channel_group(kind, region, layout, readers, Vec::new());
    gr.producer = i;
    Ok(Found::Group(gr))
}

/// Consumer input features per producer channel, checking that the consumer reads the
/// channels along the right axis.
fn span(c: &Layer, region: &Region, layout: Layout) -> Result<usize, String> {
    let channels = layout.channels;
    match (&c.shape, region.flatten) {
        (Shape::Conv(s), None) if layout.rank == 4 && layout.axis == 1 => {
            if s.group != 1 {
                return Err(format!("consumer '{}' is a grouped Conv", c.site));
            }
            if s.cin != channels {
                return Err(format!("consumer '{}' reads {} channels", c.site, s.cin));
            }
            Ok(s.taps())
        }
        (Shape::Dense(d), None) if layout.axis + 1 == layout.rank => {
            if d.k != channels {
                return Err(format!("consumer '{}' reads {} features", c.site, d.k));
            }
            Ok(1)
        }
        (Shape::Dense(d), Some(_)) => {
            if d.k % channels != 0 {
                return Err(format!(
                    "consumer '{}' reads {} features, not a multiple of {channels}",
                    c.site, d.k
                ));
            }
            Ok(d.k / channels)
        }
        _ => Err(format!(
            "consumer '{}' does not read the channel axis",
            c.site
        )),
    }
}
