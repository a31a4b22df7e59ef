//! Generates the Rust types for proto/onnx.proto with prost, compiling the schema with
//! protox so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let file = proto_dir.join("onnx.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let fds = protox::compile([&file], [&proto_dir])?;
    prost_build::Config::new()
        // Tensor payloads stay zero-copy views of the file buffer.
        .bytes([
            ".onnx.TensorProto.raw_data",
            ".onnx.TensorProto.string_data",
            ".onnx.AttributeProto",
        ])
        .compile_fds(fds)?;
    Ok(())
}
