//! An attribute's repeated scalars (`floats`, `ints`, `strings`) as read from a file and
//! written back: values, or views of the file's own encoding that are never decoded unless
//! a pass reads them.
//!
//! prost decodes a field one element at a time from the buffer it was given. When that
//! buffer is the mapped file ([`decode_viewing`] names it), a run of elements lying next to
//! each other in the file (an unpacked list is `value key value key value …`) is kept as one
//! slice of it; a packed list is one slice already. Every element is still decoded once
//! while reading, so a malformed list fails there, with prost's error, and reading a view
//! later cannot fail.

use bytes::{Buf, Bytes};
use prost::DecodeError;
use prost::encoding::{DecodeContext, WireType, key_len};
use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;
use whittle_ir::list::{List, ListSource};

thread_local! {
    /// The buffer being decoded by [`decode_viewing`] on this thread.
    static SOURCE: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Decodes `M` from `bytes`, letting the attribute lists inside keep views of `bytes`.
pub fn decode_viewing<M: prost::Message + Default>(bytes: Bytes) -> Result<M, DecodeError> {
    /// Puts back the previous source however decoding ends.
    struct Restore(Option<Bytes>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SOURCE.with(|s| *s.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(SOURCE.with(|s| s.borrow_mut().replace(bytes.clone())));
    M::decode(bytes)
}

/// The source from `ptr` to its end, when `ptr` lies inside the buffer being decoded.
fn source_from(ptr: *const u8) -> Option<Bytes> {
    SOURCE.with(|s| {
        let s = s.borrow();
        let src = s.as_ref()?;
        let (base, p) = (src.as_ptr() as usize, ptr as usize);
        (p >= base && p < base + src.len()).then(|| src.slice(p - base..))
    })
}

/// One element type of a repeated scalar field.
pub trait Elem: Clone + Send + Sync + 'static {
    /// How one element is written on its own (an unpacked list).
    const WIRE: WireType;
    /// Whether a list of these may also come packed (one length-delimited run).
    const PACKABLE: bool;
    /// Decodes one element from the front of `buf`, with prost's own decoder.
    fn read(buf: &mut impl Buf) -> Result<Self, DecodeError>;
    /// The bytes one element takes after its key.
    fn value_len(&self) -> usize;
    /// Writes one element with its key, as prost writes an unpacked list.
    fn write(&self, tag: u32, buf: &mut impl bytes::BufMut);
}

impl Elem for i64 {
    const WIRE: WireType = WireType::Varint;
    const PACKABLE: bool = true;
    fn read(buf: &mut impl Buf) -> Result<i64, DecodeError> {
        let mut v = 0;
        prost::encoding::int64::merge(Self::WIRE, &mut v, buf, DecodeContext::default())?;
        Ok(v)
    }
    fn value_len(&self) -> usize {
        prost::encoding::encoded_len_varint(*self as u64)
    }
    fn write(&self, tag: u32, buf: &mut impl bytes::BufMut) {
        prost::encoding::int64::encode(tag, self, buf);
    }
}

impl Elem for f32 {
    const WIRE: WireType = WireType::ThirtyTwoBit;
    const PACKABLE: bool = true;
    fn read(buf: &mut impl Buf) -> Result<f32, DecodeError> {
        let mut v = 0.0;
        prost::encoding::float::merge(Self::WIRE, &mut v, buf, DecodeContext::default())?;
        Ok(v)
    }
    fn value_len(&self) -> usize {
        4
    }
    fn write(&self, tag: u32, buf: &mut impl bytes::BufMut) {
        prost::encoding::float::encode(tag, self, buf);
    }
}

impl Elem for Bytes {
    const WIRE: WireType = WireType::LengthDelimited;
    const PACKABLE: bool = false;
    fn read(buf: &mut impl Buf) -> Result<Bytes, DecodeError> {
        let mut v = Bytes::new();
        prost::encoding::bytes::merge(Self::WIRE, &mut v, buf, DecodeContext::default())?;
        Ok(v)
    }
    fn value_len(&self) -> usize {
        prost::encoding::encoded_len_varint(self.len() as u64) + self.len()
    }
    fn write(&self, tag: u32, buf: &mut impl bytes::BufMut) {
        prost::encoding::bytes::encode(tag, self, buf);
    }
}

/// A slice of the file holding some of a list's elements: unpacked (`value`, then
/// `key value` for each further one, every key one byte) or a packed run.
#[derive(Clone, Debug)]
struct Segment {
    /// Starts at the first element; may run on past `len` (to the end of the file).
    bytes: Bytes,
    len: usize,
    packed: bool,
}

impl Segment {
    fn elements<T: Elem>(&self, f: &mut dyn FnMut(T)) {
        let mut b = self.bytes.slice(..self.len);
        let mut first = true;
        while b.has_remaining() {
            if !first && !self.packed {
                b.advance(1);
            }
            first = false;
            // Every element was decoded when the segment was made.
            let Ok(v) = T::read(&mut b) else { return };
            f(v);
        }
    }
}

/// A list's elements as slices of the file, checked when read.
#[derive(Clone, Debug)]
pub struct Views<T> {
    segments: Vec<Segment>,
    count: usize,
    /// The elements' encoded bytes after their keys, as an unpacked list writes them.
    value_bytes: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T: Elem> ListSource<T> for Views<T> {
    fn len(&self) -> usize {
        self.count
    }
    fn for_each(&self, f: &mut dyn FnMut(T)) {
        self.segments.iter().for_each(|s| s.elements(f));
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A repeated scalar field of an attribute in the protobuf types.
#[derive(Clone, Debug)]
pub enum WireList<T> {
    /// Decoded values (a list made by a pass, or read from a buffer that is not kept).
    Values(Vec<T>),
    /// Views of the file it was read from.
    Views(Views<T>),
}

impl<T> Default for WireList<T> {
    fn default() -> WireList<T> {
        WireList::Values(Vec::new())
    }
}

impl<T: Elem + PartialEq> PartialEq for WireList<T> {
    fn eq(&self, other: &WireList<T>) -> bool {
        self.to_vec() == other.to_vec()
    }
}

impl<T: Elem> WireList<T> {
    /// The values, decoded.
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            WireList::Values(v) => v.clone(),
            WireList::Views(v) => {
                let mut out = Vec::with_capacity(v.count);
                v.for_each(&mut |x| out.push(x));
                out
            }
        }
    }

    /// The IR's list: views stay views.
    pub fn into_list(self) -> List<T> {
        match self {
            WireList::Values(v) => List::from(v),
            WireList::Views(v) => List::from_source(Arc::new(v)),
        }
    }

    /// The list to write for `list`: its views when it still has the ones it was read with.
    pub fn from_list(list: &List<T>) -> WireList<T> {
        let views = list
            .source()
            .and_then(|s| s.as_any().downcast_ref::<Views<T>>());
        match views {
            Some(v) => WireList::Views(v.clone()),
            None => WireList::Values(list.to_vec()),
        }
    }

    /// Encoded length of the field with `tag`, unpacked (as prost writes proto2 lists).
    pub fn encoded_len(&self, tag: u32) -> usize {
        match self {
            WireList::Values(v) => {
                key_len(tag) * v.len() + v.iter().map(Elem::value_len).sum::<usize>()
            }
            WireList::Views(v) => key_len(tag) * v.count + v.value_bytes,
        }
    }

    /// Writes the field with `tag`, unpacked.
    pub fn encode(&self, tag: u32, buf: &mut impl bytes::BufMut) {
        match self {
            WireList::Values(v) => v.iter().for_each(|x| x.write(tag, buf)),
            WireList::Views(v) => v.for_each(&mut |x: T| x.write(tag, buf)),
        }
    }

    /// Merges one occurrence of the field from `buf` (one element, or a packed run).
    pub fn merge(&mut self, wire_type: WireType, buf: &mut impl Buf) -> Result<(), DecodeError> {
        if T::PACKABLE && wire_type == WireType::LengthDelimited {
            let payload = <Bytes as Elem>::read(buf)?;
            return self.merge_packed(payload);
        }
        prost::encoding::check_wire_type(T::WIRE, wire_type)?;
        let ptr = buf.chunk().as_ptr();
        let (before, whole) = (buf.remaining(), buf.chunk().len());
        let v = T::read(buf)?;
        let n = before - buf.remaining();
        // Only an element lying whole in the buffer being viewed can be a view.
        let viewed = match self {
            WireList::Views(views) => n <= whole && views.extend(ptr, n, &v),
            WireList::Values(values) if values.is_empty() && n <= whole => {
                match source_from(ptr).filter(|b| n <= b.len()) {
                    Some(bytes) => {
                        *self = WireList::Views(Views::first(bytes, n, &v));
                        true
                    }
                    None => false,
                }
            }
            WireList::Values(_) => false,
        };
        if !viewed {
            self.values_mut().push(v);
        }
        Ok(())
    }

    /// A packed run: each element is checked now; the payload is kept as it is (a slice
    /// of the file when the buffer was the file).
    fn merge_packed(&mut self, payload: Bytes) -> Result<(), DecodeError> {
        let (mut b, mut count, mut value_bytes) = (payload.clone(), 0, 0);
        let mut decoded = Vec::new();
        let keep = matches!(self, WireList::Values(_));
        while b.has_remaining() {
            let v = T::read(&mut b)?;
            (count, value_bytes) = (count + 1, value_bytes + v.value_len());
            if keep {
                decoded.push(v);
            }
        }
        match self {
            WireList::Values(values) => values.extend(decoded),
            WireList::Views(views) => {
                let len = payload.len();
                views.segments.push(Segment {
                    bytes: payload,
                    len,
                    packed: true,
                });
                views.count += count;
                views.value_bytes += value_bytes;
            }
        }
        Ok(())
    }

    /// Turns views into values (an element that could not be viewed arrived).
    fn values_mut(&mut self) -> &mut Vec<T> {
        if let WireList::Views(_) = self {
            *self = WireList::Values(self.to_vec());
        }
        match self {
            WireList::Values(v) => v,
            WireList::Views(_) => unreachable!("turned into values just above"),
        }
    }
}

impl<T: Elem> Views<T> {
    /// Views starting with one element of `n` bytes at the start of `bytes`.
    fn first(bytes: Bytes, n: usize, v: &T) -> Views<T> {
        Views {
            segments: vec![Segment {
                bytes,
                len: n,
                packed: false,
            }],
            count: 1,
            value_bytes: v.value_len(),
            _t: PhantomData,
        }
    }

    /// Adds the element of `n` bytes at `ptr`: to the last segment when it follows it after
    /// one key byte, else as a new segment when it lies in the buffer being viewed.
    fn extend(&mut self, ptr: *const u8, n: usize, v: &T) -> bool {
        let p = ptr as usize;
        let last = self.segments.last_mut().filter(|s| !s.packed);
        if let Some(s) = last {
            let start = s.bytes.as_ptr() as usize;
            if p == start + s.len + 1 && p + n <= start + s.bytes.len() {
                s.len = p + n - start;
                self.count += 1;
                self.value_bytes += v.value_len();
                return true;
            }
        }
        let Some(bytes) = source_from(ptr) else {
            return false;
        };
        self.segments.push(Segment {
            bytes,
            len: n,
            packed: false,
        });
        self.count += 1;
        self.value_bytes += v.value_len();
        true
    }
}
