//! `onnx.AttributeProto`, encoded and decoded by hand around its repeated scalars so that
//! they can stay views of the file (see `wire_list.rs` and `proto/attribute_parts.proto`).
//! Fields are written in field-number order, as prost writes a generated message, so a
//! model reads and writes back exactly as it did when prost generated this type.

use crate::proto::{AttributeProtoHead, AttributeProtoTail};
use crate::wire_list::WireList;
use bytes::{Buf, BufMut, Bytes};
use prost::DecodeError;
use prost::encoding::{DecodeContext, WireType};

const FLOATS: u32 = 7;
const INTS: u32 = 8;
const STRINGS: u32 = 9;

/// One attribute: fields 1-6, the three lists (7-9), then fields 10-23.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttributeProto {
    pub head: AttributeProtoHead,
    pub floats: WireList<f32>,
    pub ints: WireList<i64>,
    pub strings: WireList<Bytes>,
    pub tail: AttributeProtoTail,
}

impl prost::Message for AttributeProto {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        self.head.encode_raw(buf);
        self.floats.encode(FLOATS, buf);
        self.ints.encode(INTS, buf);
        self.strings.encode(STRINGS, buf);
        self.tail.encode_raw(buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            FLOATS => self.floats.merge(wire_type, buf),
            INTS => self.ints.merge(wire_type, buf),
            STRINGS => self.strings.merge(wire_type, buf),
            1..=6 => self.head.merge_field(tag, wire_type, buf, ctx),
            // The tail skips fields it does not know, as a generated message does.
            _ => self.tail.merge_field(tag, wire_type, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        self.head.encoded_len()
            + self.floats.encoded_len(FLOATS)
            + self.ints.encoded_len(INTS)
            + self.strings.encoded_len(STRINGS)
            + self.tail.encoded_len()
    }

    fn clear(&mut self) {
        *self = AttributeProto::default();
    }
}
