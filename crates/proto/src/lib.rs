//! The funnel.v1 gRPC contract, generated from `proto/funnel/v1`.

/// Messages and services of package `funnel.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("funnel.v1");
}

/// Encoded `FileDescriptorSet` of the contract, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/funnel_descriptor.bin"));
