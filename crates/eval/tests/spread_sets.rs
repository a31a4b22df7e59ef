//! Random sets for steps without data: free dims 1 on an input's first axis (the
//! batch), the given width elsewhere, named or not; a symbol seen on a first axis
//! anywhere stays 1.

use whittle_eval::spread_sets;
use whittle_ir::text::parse_model;

#[test]
fn free_dims_beyond_the_batch_are_spread() {
    let src = "ir_version 8
opset ai.onnx 17
graph {
  input x: f32[?,3,?,?]
  input ids: i64[batch,seq]
  input m: f32[2,batch]
  output y: f32[?,3,?,?]
  output z: i64[batch,seq]
  output w: f32[2,batch]
  y = Identity(x)
  z = Identity(ids)
  w = Identity(m)
}
";
    let model = parse_model(src).unwrap();
    let sets = spread_sets(&model.graph, 3, 16).unwrap();
    assert_eq!(sets.len(), 3);
    for set in &sets {
        assert_eq!(set[0].dims, vec![1, 3, 16, 16]);
        assert_eq!(set[1].dims, vec![1, 16]);
        // `batch` is a first axis elsewhere, so it is 1 here too.
        assert_eq!(set[2].dims, vec![2, 1]);
    }
    assert_ne!(sets[0][0], sets[1][0], "each set has its own seed");
}
