//! Embeds the model its build script optimized and prints node counts before and after.

static ORIGINAL: &[u8] = include_bytes!(env!("WHITTLE_ORIGINAL"));
static OPTIMIZED: &[u8] = include_bytes!(env!("WHITTLE_OPTIMIZED"));

fn nodes(bytes: &'static [u8]) -> usize {
    let path = std::path::Path::new("<embedded>");
    match whittle_onnx::read_model_bytes(bytes::Bytes::from_static(bytes), path, None) {
        Ok(m) => m.graph.node_count(),
        Err(e) => {
            eprintln!("embedded model does not decode: {e}");
            std::process::exit(1);
        }
    }
}

fn main() {
    println!(
        "bert_tiny: {} nodes as exported, {} embedded after whittle ({} bytes)",
        nodes(ORIGINAL),
        nodes(OPTIMIZED),
        OPTIMIZED.len()
    );
}
