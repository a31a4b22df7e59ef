//! Real inputs: test data sets, .npy and .npz give the same tensors, and the model run on
//! them reproduces the outputs ONNX Runtime stored beside them.

use whittle_eval::{Tolerance, compare_output, read_input_sets, run_model};
use whittle_onnx::{read_model, read_tensor};
use whittle_testkit::{fixture, fixtures_dir};

#[test]
fn test_data_sets_npy_and_npz_agree_and_reproduce_stored_outputs() {
    for (model, npy) in [("cnn_bn.ts", true), ("bert_tiny.dyn", false)] {
        let m = read_model(&fixture(&format!("{model}.onnx"))).unwrap();
        let g = &m.graph;
        let names: Vec<String> = g
            .inputs()
            .iter()
            .map(|v| g.value(*v).name().to_string())
            .collect();
        let dir = fixtures_dir().join("../data").join(model);
        let from_pb = read_input_sets(&dir.join("test_data_set_0"), &names).unwrap();
        let from_parent = read_input_sets(&dir, &names).unwrap();
        let from_npz = read_input_sets(&dir.join("inputs.npz"), &names).unwrap();
        assert_eq!(from_pb.len(), 1);
        assert_eq!(
            from_pb, from_parent,
            "{model}: a folder of test_data_set folders"
        );
        let same = |a: &[whittle_ir::Tensor], b: &[whittle_ir::Tensor]| {
            a.iter().zip(b).all(|(x, y)| {
                x.dims == y.dims
                    && x.dtype() == y.dtype()
                    && x.le_bytes().unwrap() == y.le_bytes().unwrap()
            })
        };
        assert!(
            same(&from_pb[0], &from_npz[0]),
            "{model}: npz differs from the .pb inputs"
        );
        if npy {
            let from_npy = read_input_sets(&dir.join("inputs.npy"), &names).unwrap();
            assert!(same(&from_pb[0], &from_npy[0]), "{model}: npy differs");
        }
        let got = run_model(&m, model, &from_pb[0]).unwrap();
        let want = read_tensor(&dir.join("test_data_set_0/output_0.pb")).unwrap();
        let d = compare_output("output_0", &want, &got[0], &Tolerance::default());
        assert!(d.ok, "{model}: tract vs stored ORT output: {d:?}");
    }
}

#[test]
fn bad_input_files_are_clear_errors() {
    let names = vec!["a".to_string(), "b".to_string()];
    let dir = fixtures_dir().join("../data/cnn_bn.ts");
    let err = read_input_sets(&dir.join("inputs.npy"), &names).unwrap_err();
    assert!(
        err.contains("one array") && err.contains("2 inputs"),
        "{err}"
    );
    let err = read_input_sets(&dir.join("nope.npz"), &names).unwrap_err();
    assert!(err.contains("nope.npz"), "{err}");
    let err = read_input_sets(&fixtures_dir(), &names).unwrap_err();
    assert!(err.contains("test_data_set"), "{err}");
}
