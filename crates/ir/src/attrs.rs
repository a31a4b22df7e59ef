//! A node's attributes as a shared list: copies of a graph (a pass's snapshot, a
//! verification's original) share it until one of them changes it, so a copy costs nothing
//! however large the attributes are (tree-ensemble exports keep hundreds of MB of trees
//! in them). A content fingerprint is computed once per list and kept until it changes,
//! for passes that group nodes by their attributes (CSE).

use crate::attr::Attribute;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, OnceLock};

/// The attributes of one node. Reads go through `Deref` to the `Vec`; a write
/// (`DerefMut`) copies the list first if another graph shares it, and forgets the
/// fingerprint.
#[derive(Clone, Default)]
pub struct Attributes(Arc<Shared>);

#[derive(Clone, Default)]
struct Shared {
    list: Vec<Attribute>,
    fingerprint: OnceLock<u64>,
}

impl Attributes {
    /// A 64-bit hash of the attributes' content, computed on first use. Equal lists have
    /// equal fingerprints; unequal ones almost always differ (compare to be sure).
    pub fn fingerprint(&self) -> u64 {
        *self.0.fingerprint.get_or_init(|| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            self.0.list.len().hash(&mut h);
            for a in &self.0.list {
                hash_attribute(a, &mut h);
            }
            h.finish()
        })
    }

    /// True when both are the same shared list (so certainly equal).
    pub fn shares(&self, other: &Attributes) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Hashes every field; the bulk lists (floats, ints, strings) element by element and
/// without decoding a list still held as the file's encoding, the rest (tensors, graphs,
/// types: small in practice) through their `Debug` text.
fn hash_attribute(a: &Attribute, h: &mut impl Hasher) {
    (&a.name, &a.ref_attr_name, &a.doc_string, a.kind, a.i).hash(h);
    a.f.map(f32::to_bits).hash(h);
    a.s.as_deref().hash(h);
    a.floats.len().hash(h);
    a.floats.for_each(|x| h.write_u32(x.to_bits()));
    a.ints.len().hash(h);
    a.ints.for_each(|x| h.write_i64(x));
    a.strings.len().hash(h);
    a.strings.for_each(|s| s.as_ref().hash(h));
    let rest = (
        &a.t,
        &a.g,
        &a.sparse_tensor,
        &a.tp,
        &a.tensors,
        &a.graphs,
        &a.sparse_tensors,
        &a.type_protos,
    );
    let mut w = HashWriter(h);
    let _ = std::fmt::Write::write_fmt(&mut w, format_args!("{rest:?}"));
}

/// Feeds formatted text to a hasher without building the string.
struct HashWriter<'a, H: Hasher>(&'a mut H);

impl<H: Hasher> std::fmt::Write for HashWriter<'_, H> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

impl Deref for Attributes {
    type Target = Vec<Attribute>;

    fn deref(&self) -> &Vec<Attribute> {
        &self.0.list
    }
}

impl DerefMut for Attributes {
    fn deref_mut(&mut self) -> &mut Vec<Attribute> {
        let shared = Arc::make_mut(&mut self.0);
        shared.fingerprint = OnceLock::new();
        &mut shared.list
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Attributes) -> bool {
        self.shares(other) || self.0.list == other.0.list
    }
}

impl std::fmt::Debug for Attributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.list.fmt(f)
    }
}

impl From<Vec<Attribute>> for Attributes {
    fn from(list: Vec<Attribute>) -> Attributes {
        Attributes(Arc::new(Shared {
            list,
            fingerprint: OnceLock::new(),
        }))
    }
}

impl FromIterator<Attribute> for Attributes {
    fn from_iter<I: IntoIterator<Item = Attribute>>(iter: I) -> Attributes {
        Attributes::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = &'a Attribute;
    type IntoIter = std::slice::Iter<'a, Attribute>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.list.iter()
    }
}

impl<'a> IntoIterator for &'a mut Attributes {
    type Item = &'a mut Attribute;
    type IntoIter = std::slice::IterMut<'a, Attribute>;

    fn into_iter(self) -> Self::IntoIter {
        self.deref_mut().iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_share_until_written_and_the_fingerprint_follows_the_content() {
        let a: Attributes = vec![Attribute::ints("axes", vec![0, 1])].into();
        let mut b = a.clone();
        assert!(a.shares(&b) && a == b);
        let fp = a.fingerprint();
        assert_eq!(fp, b.fingerprint());
        b.push(Attribute::int("keepdims", 0));
        assert!(!a.shares(&b) && a != b);
        assert_eq!(a.len(), 1, "the original is untouched");
        assert_ne!(b.fingerprint(), fp);
        b.pop();
        assert_eq!(b.fingerprint(), fp, "same content, same fingerprint");
        let c: Attributes = vec![Attribute::ints("axes", vec![0, 2])].into();
        assert_ne!(c.fingerprint(), fp);
    }
}
