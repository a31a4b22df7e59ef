//! The text form of the IR: what `whittle dump` prints and what pass tests are written
//! in. It parses back ([`parse_model`]) to the same graph: names, ops, attributes,
//! constants (when printed in full) and types; doc strings and metadata are not shown.
//!
//! ```text
//! ir_version 8
//! opset ai.onnx 18
//! graph main {
//!   input x: f32[batch,3,8,8]
//!   output y: f32[batch,4,6,6]
//!   init w: f32[4,3,3,3] = random
//!   init b: f32[4] = [0.0, 0.5, -1.0, 2.0]
//!   c: f32[batch,4,6,6] = Conv(x, w, b) {kernel_shape=[3,3]} @conv1
//!   y = Relu(c)
//! }
//! ```
//!
//! - Names are bare words (`x`, `/conv1/Conv_output_0`, `input.1`) or quoted strings
//!   (`"onnx::Conv_3"`); `""` is an omitted input or output.
//! - Types: `f32[batch,3,?,8]`, `f32` (rank unknown), `?` (nothing known), `f32[]`
//!   (scalar), `seq(...)`, `opt(...)`, `sparse(...)`, `map(k, ...)`. Symbolic dims that are
//!   not plain identifiers are quoted (`"batch*seq"`).
//! - Constants: all elements in row-major order; `[1.0, 2.0, ...]` is elided (dump
//!   prints a few) and `random` gives none — the missing elements are filled with
//!   deterministic pseudo-random values seeded by the tensor's name.
//! - Ops of other domains are written `domain.Op` (`com.microsoft.FusedMatMul`).
//! - Attributes: `3`, `1.0`, `"s"`, `[1, 2]`, `[1.0]`, `["a"]`, `ints[]` (empty),
//!   `tensor f32[2] [1.0, 2.0]`, `graph name { ... }`, `type f32[3]`, `@ref`.
//! - A node's name follows `@`. `#` starts a comment.

mod lex;
mod parse;
mod print;
mod values;

pub use parse::{parse_graph, parse_model};
pub use print::{PrintOptions, dim_text, name, print_graph, print_model, type_text};
pub use values::format_values;
