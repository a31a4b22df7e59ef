//! The phases of a whittle run, as rustc's `MirPhase`: a pass declares the phase it
//! belongs to, a model records how far it has come, and the pipeline runs a pass only
//! over a model that has not gone past the pass's phase.

/// A phase of a run, in the order they come. Clean-up passes run in every phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Exact conversions a plan needs first (an opset upgrade). A model as read.
    #[default]
    Prepare,
    /// Rewrites that keep every output (folding, fusion, clean-up).
    Lossless,
    /// Rewrites that change numerics within a budget. A model a lossy pass changed holds
    /// encodings (int8 weights behind Cast or DequantizeLinear, …) that a lossless pass
    /// would fold back or rewrite: from here on only lossy and clean-up passes run.
    Lossy,
    /// Only dead code and duplicates go: safe over any encoding.
    Cleanup,
}

impl Phase {
    /// Whether a pass of phase `pass` may run over a model that has reached `self`.
    pub fn admits(self, pass: Phase) -> bool {
        pass == Phase::Cleanup || pass >= self
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Prepare => "prepare",
            Phase::Lossless => "lossless",
            Phase::Lossy => "lossy",
            Phase::Cleanup => "clean-up",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Phase::*;

    #[test]
    fn a_model_admits_only_passes_of_its_phase_or_later_and_clean_up_always() {
        assert!(Prepare.admits(Lossless) && Lossless.admits(Lossy));
        assert!(!Lossy.admits(Lossless), "lossless over a lossy encoding");
        assert!(!Cleanup.admits(Lossy) && !Cleanup.admits(Lossless));
        assert!(Lossy.admits(Lossy) && Lossy.admits(Cleanup) && Cleanup.admits(Cleanup));
    }
}
