//! Tensor data computed when it is read instead of held: how a lossy step rewrites a
//! model bigger than memory: big models stream, lossy ones too.
//!
//! A step that encodes a weight (int4, say) stores a [`Deferred`]: the encoded length and
//! a function from the (memory-mapped) source to the bytes. Export calls it when it writes
//! the tensor, one tensor at a time, and drops the bytes once written; anything else that
//! reads the tensor (`--verify`, folding, the text printer) calls the same function, so
//! what is checked is what is written.

use crate::error::IrError;
use bytes::Bytes;
use std::sync::Arc;

/// The function that computes a deferred tensor's little-endian bytes.
pub type Encode = dyn Fn() -> Result<Bytes, IrError> + Send + Sync;

/// A tensor's element bytes, computed on every read (callers that need them twice keep
/// them): `len` bytes, known before they are computed, so export can lay the file out
/// without computing anything.
#[derive(Clone)]
pub struct Deferred {
    len: u64,
    encode: Arc<Encode>,
}

impl Deferred {
    /// Data of `len` bytes that `encode` computes.
    pub fn new(
        len: u64,
        encode: impl Fn() -> Result<Bytes, IrError> + Send + Sync + 'static,
    ) -> Self {
        Deferred {
            len,
            encode: Arc::new(encode),
        }
    }

    /// The length in bytes the encoding will have.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty tensor.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Computes the bytes; an encoding of another length than announced is an error
    /// naming `tensor`.
    pub fn bytes(&self, tensor: &str) -> Result<Bytes, IrError> {
        let b = (self.encode)()?;
        if b.len() as u64 != self.len {
            return Err(IrError::BadTensor {
                tensor: tensor.to_string(),
                reason: format!(
                    "its deferred encoding gave {} bytes, {} announced",
                    b.len(),
                    self.len
                ),
            });
        }
        Ok(b)
    }
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Deferred({} bytes)", self.len)
    }
}

/// Two deferred tensors are the same data only when they share the function.
impl PartialEq for Deferred {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && Arc::ptr_eq(&self.encode, &other.encode)
    }
}

/// Several tensors computed together (int4 codes and their scales come out of one pass over
/// the weight): the first read of any part computes all and keeps the parts not yet read,
/// so each part is computed once when they are read in turn, and never more than one
/// computation's parts are held.
pub struct Shared<const N: usize> {
    compute: Box<dyn Fn() -> Result<[Bytes; N], IrError> + Send + Sync>,
    kept: std::sync::Mutex<[Option<Bytes>; N]>,
}

impl<const N: usize> Shared<N> {
    /// Parts that `compute` produces together; `lens` are their lengths.
    pub fn split(
        lens: [u64; N],
        compute: impl Fn() -> Result<[Bytes; N], IrError> + Send + Sync + 'static,
    ) -> [Deferred; N] {
        let shared = Arc::new(Shared {
            compute: Box::new(compute),
            kept: std::sync::Mutex::new(std::array::from_fn(|_| None)),
        });
        std::array::from_fn(|i| {
            let s = shared.clone();
            Deferred::new(lens[i], move || s.part(i))
        })
    }

    fn part(&self, i: usize) -> Result<Bytes, IrError> {
        let mut kept = self
            .kept
            .lock()
            .map_err(|_| IrError::Invariant("a deferred computation panicked".into()))?;
        if let Some(b) = kept[i].take() {
            return Ok(b);
        }
        let mut parts = (self.compute)()?;
        for (j, p) in parts.iter_mut().enumerate() {
            if j != i {
                kept[j] = Some(std::mem::take(p));
            }
        }
        Ok(std::mem::take(&mut parts[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn parts_read_in_turn_are_computed_once() {
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let [a, b] = Shared::split([2, 1], move || {
            r.fetch_add(1, Ordering::SeqCst);
            Ok([Bytes::from_static(&[1, 2]), Bytes::from_static(&[3])])
        });
        assert_eq!(a.bytes("a").unwrap(), Bytes::from_static(&[1, 2]));
        assert_eq!(b.bytes("b").unwrap(), Bytes::from_static(&[3]));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // A second read computes again (nothing is held after both were read).
        assert_eq!(b.bytes("b").unwrap(), Bytes::from_static(&[3]));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_wrong_length_is_an_error_naming_the_tensor() {
        let d = Deferred::new(4, || Ok(Bytes::from_static(&[0; 3])));
        let e = d.bytes("w_q4").unwrap_err().to_string();
        assert!(
            e.contains("w_q4") && e.contains("3 bytes, 4 announced"),
            "{e}"
        );
    }
}
