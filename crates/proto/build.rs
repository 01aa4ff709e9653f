//! Generates the funnel.v1 code from `proto/` with protox, so no system
//! `protoc` is needed, and writes the descriptor set for server reflection.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    // Read at run time: `env!` would bake in the checkout the build script
    // was compiled in, which a target directory shared by two checkouts reuses.
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = ["funnel/v1/analytics.proto", "funnel/v1/pipeline.proto", "funnel/v1/scoring.proto"];
    // Nothing else tells cargo about the proto folder: without this every
    // build would regenerate, or none would notice a change.
    println!("cargo:rerun-if-changed={}", proto_root.display());
    for file in files {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }

    let descriptor_set = protox::compile(files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("funnel_descriptor.bin"), prost::Message::encode_to_vec(&descriptor_set))?;
    // BTreeMap for map fields: the domain keeps attributes sorted, so the
    // conversion moves them instead of hashing each key again (issue 7, B3),
    // and messages encode in one order.
    tonic_prost_build::configure().build_server(true).build_client(true).btree_map(".").compile_fds(descriptor_set)?;
    Ok(())
}
