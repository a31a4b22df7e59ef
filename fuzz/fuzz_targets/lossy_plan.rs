#![no_main]
//! See whittle_fuzz_targets::lossy_plan.

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // tract panics that whittle catches (and reports as errors) are not crashes:
        // keep the default hook so libFuzzer aborts only on panics that escape.
        let _ = std::panic::take_hook();
    },
    |data: &[u8]| whittle_fuzz_targets::lossy_plan(data)
);
