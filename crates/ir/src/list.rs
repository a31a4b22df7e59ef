//! A repeated attribute field (`floats`, `ints`, `strings`) that may still be the file's
//! encoding. Tree-ensemble exports keep hundreds of MB of splits in such lists; decoding
//! them into `Vec<i64>` would cost three to four times their size in the file (a varint of
//! one or two bytes becomes eight), and no pass ever reads them. A list read from a file
//! therefore keeps a [`ListSource`] (a view of the mapped file, implemented by the ONNX
//! reader) and is decoded only when something reads its values; hashing, counting and
//! writing it back go through the source without decoding.

use std::any::Any;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, OnceLock};

/// The still-encoded values of a list, as the reader left them. Implementations have
/// checked the encoding when they were made, so reading cannot fail.
pub trait ListSource<T>: Send + Sync {
    /// How many values there are.
    fn len(&self) -> usize;
    /// True when there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Calls `f` with each value in order.
    fn for_each(&self, f: &mut dyn FnMut(T));
    /// For a writer that knows its own sources (to reuse an encoding it made).
    fn as_any(&self) -> &dyn Any;
}

/// A list of attribute values: owned, or a source decoded on first read. Reads go through
/// `Deref`; a write (`DerefMut`) decodes first and drops the source.
pub struct List<T> {
    source: Option<Arc<dyn ListSource<T>>>,
    values: OnceLock<Vec<T>>,
}

impl<T: Clone> List<T> {
    /// A list over a source, decoded when first read.
    pub fn from_source(source: Arc<dyn ListSource<T>>) -> List<T> {
        List {
            source: Some(source),
            values: OnceLock::new(),
        }
    }

    /// The source, while the list has not been written since it was read.
    pub fn source(&self) -> Option<&Arc<dyn ListSource<T>>> {
        self.source.as_ref()
    }

    /// True when the values have been decoded (or never were encoded).
    pub fn is_decoded(&self) -> bool {
        self.values.get().is_some()
    }

    /// How many values, without decoding.
    pub fn len(&self) -> usize {
        match (self.values.get(), &self.source) {
            (Some(v), _) => v.len(),
            (None, Some(s)) => s.len(),
            (None, None) => 0,
        }
    }

    /// True when there are no values, without decoding.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with each value, without keeping a decoded copy.
    pub fn for_each(&self, mut f: impl FnMut(T)) {
        match (self.values.get(), &self.source) {
            (Some(v), _) => v.iter().cloned().for_each(f),
            (None, Some(s)) => s.for_each(&mut f),
            (None, None) => {}
        }
    }

    fn decoded(&self) -> &Vec<T> {
        self.values.get_or_init(|| match &self.source {
            Some(s) => {
                let mut v = Vec::with_capacity(s.len());
                s.for_each(&mut |x| v.push(x));
                v
            }
            None => Vec::new(),
        })
    }
}

impl<T: Clone> Deref for List<T> {
    type Target = Vec<T>;

    fn deref(&self) -> &Vec<T> {
        self.decoded()
    }
}

impl<T: Clone> DerefMut for List<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        self.decoded();
        self.source = None;
        self.values.get_mut().expect("decoded just above")
    }
}

impl<T> Default for List<T> {
    fn default() -> List<T> {
        List {
            source: None,
            values: OnceLock::new(),
        }
    }
}

impl<T: Clone> Clone for List<T> {
    fn clone(&self) -> List<T> {
        List {
            source: self.source.clone(),
            values: self.values.clone(),
        }
    }
}

impl<T> From<Vec<T>> for List<T> {
    fn from(v: Vec<T>) -> List<T> {
        List {
            source: None,
            values: OnceLock::from(v),
        }
    }
}

impl<T: Clone> FromIterator<T> for List<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> List<T> {
        List::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl<T: Clone + PartialEq> PartialEq for List<T> {
    fn eq(&self, other: &List<T>) -> bool {
        let same_source = match (&self.source, &other.source) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        same_source || (self.len() == other.len() && self[..] == other[..])
    }
}

impl<T: Clone + fmt::Debug> fmt::Debug for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self[..].fmt(f)
    }
}

impl<'a, T: Clone> IntoIterator for &'a List<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A source that counts how often it is decoded.
    struct Counting(Vec<i64>, AtomicUsize);

    impl ListSource<i64> for Counting {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn for_each(&self, f: &mut dyn FnMut(i64)) {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.iter().copied().for_each(f);
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    #[test]
    fn a_source_is_decoded_once_on_read_and_dropped_on_write() {
        let src = Arc::new(Counting(vec![3, 1, 2], AtomicUsize::new(0)));
        let mut list = List::from_source(src.clone());
        assert_eq!((list.len(), list.is_decoded()), (3, false));
        assert_eq!(src.1.load(Ordering::Relaxed), 0, "len does not decode");
        assert_eq!(list[..], [3, 1, 2]);
        assert_eq!(list.iter().sum::<i64>(), 6);
        assert_eq!(src.1.load(Ordering::Relaxed), 1, "decoded once, then kept");
        assert!(list.source().is_some(), "reading keeps the source");
        list.push(4);
        assert!(list.source().is_none(), "writing drops it");
        assert_eq!(list[..], [3, 1, 2, 4]);
    }

    #[test]
    fn equality_and_streaming_do_not_depend_on_how_a_list_is_held() {
        let src = Arc::new(Counting(vec![5, 6], AtomicUsize::new(0)));
        let viewed = List::from_source(src.clone());
        let owned = List::from(vec![5, 6]);
        let mut seen = Vec::new();
        viewed.for_each(|v| seen.push(v));
        assert_eq!(seen, [5, 6]);
        assert!(!viewed.is_decoded(), "for_each keeps no copy");
        assert_eq!(viewed, owned);
        assert_ne!(viewed, List::from(vec![5]));
        assert_eq!(List::<i64>::default(), List::from(vec![]));
    }
}
