//! Generates the Rust types for proto/onnx.proto with prost, compiling the schema with
//! protox so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time: a build script binary reused from another checkout sharing the
    // target dir must not point at that checkout's schema.
    let manifest = std::env::var("CARGO_MANIFEST_DIR")?;
    let proto_dir = std::path::Path::new(&manifest).join("../../proto");
    let files = [
        proto_dir.join("onnx.proto"),
        proto_dir.join("attribute_parts.proto"),
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let fds = protox::compile(&files, [&proto_dir])?;
    prost_build::Config::new()
        // Tensor payloads stay zero-copy views of the file buffer.
        .bytes([
            ".onnx.TensorProto.raw_data",
            ".onnx.TensorProto.string_data",
            ".onnx.AttributeProtoHead",
        ])
        // Attributes are encoded by hand around their lists (attribute_parts.proto).
        .extern_path(
            ".onnx.AttributeProto",
            "crate::attribute_wire::AttributeProto",
        )
        .compile_fds(fds)?;
    Ok(())
}
