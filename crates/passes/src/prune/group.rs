//! Prunable groups: a layer's output channels (Conv filters, dense output neurons)
//! together with everything that carries them to the one layer that reads them — the
//! per-channel [`region`](super::region) and the consumer's matching input channels.

use super::Kind;
use super::region::{self, Layout, Region};
use crate::decompose::layer::{Layer, Shape};
use crate::guard::dims;
use crate::pass::PassCx;
use std::collections::HashMap;
use whittle_ir::{Graph, NodeId, ValueId};

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
}

impl Group {
    /// The producer and its partners.
    pub fn producers(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.producer).chain(self.partners.iter().copied())
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
/// known output rank, a single output read only through a region ending in one Conv
/// (group 1) or dense layer.
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
            Ok(gr) => groups.push(gr),
            Err(why) => alone.push(LeftAlone {
                site: l.site.clone(),
                why,
            }),
        }
    }
    (groups, alone)
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
) -> Result<Group, String> {
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
    let consumer_node = g
        .value(region.end)
        .uses()
        .first()
        .map(|u| u.node)
        .ok_or_else(|| "no consumer".to_string())?;
    let consumer = *by_node
        .get(&consumer_node)
        .ok_or_else(|| "the consumer is not a layer".to_string())?;
    let span = span(&layers[consumer], &region, layout)?;
    Ok(Group {
        kind,
        producer: i,
        consumer,
        region,
        channels: layout.channels,
        span,
        layout,
        partners: Vec::new(),
        unit: 1,
    })
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
