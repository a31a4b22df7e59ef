//! The held-out split of calibration data: every sample lands on exactly one side, the
//! held-out ones spread evenly through the file, and a share of 0 holds nothing out.

use whittle_eval::{calibration_sets, calibration_split};
use whittle_ir::Tensor;
use whittle_onnx::read_model;
use whittle_testkit::{fixture, fixtures_dir};

/// The samples of `sets` (one input each) in order, as raw bytes per sample.
fn samples(sets: &[Vec<Tensor>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for set in sets {
        let t = &set[0];
        let bytes = t.le_bytes().unwrap();
        let n = t.dims[0] as usize;
        out.extend(bytes.chunks(bytes.len() / n).map(<[u8]>::to_vec));
    }
    out
}

#[test]
fn the_held_out_samples_are_spread_through_the_file() {
    let m = read_model(&fixture("vgg_digits.ts.onnx")).unwrap();
    let path = fixtures_dir().join("../data/vgg_digits/calib.npy");
    let all = samples(&calibration_sets(&path, &m.graph).unwrap());
    assert_eq!(all.len(), 100);
    for (share, every) in [(0.5, 2), (0.25, 4)] {
        let split = calibration_split(&path, &m.graph, share).unwrap();
        let (fit, held) = (samples(&split.fit), samples(&split.held));
        assert_eq!((fit.len() + held.len()) as i64, 100);
        assert_eq!(
            (split.fit_samples, split.held_samples),
            (fit.len() as i64, held.len() as i64)
        );
        // Sample i is held out when ⌊(i+1)·share⌋ > ⌊i·share⌋: every `every`-th, last of each.
        let want_held: Vec<&Vec<u8>> = all.iter().skip(every - 1).step_by(every).collect();
        let want_fit: Vec<&Vec<u8>> = (0..100)
            .filter(|i| (i + 1) % every != 0)
            .map(|i| &all[i])
            .collect();
        assert_eq!(held.iter().collect::<Vec<_>>(), want_held, "share {share}");
        assert_eq!(fit.iter().collect::<Vec<_>>(), want_fit, "share {share}");
    }
    let none = calibration_split(&path, &m.graph, 0.0).unwrap();
    assert!(none.held.is_empty());
    assert_eq!(samples(&none.fit), all);
}
