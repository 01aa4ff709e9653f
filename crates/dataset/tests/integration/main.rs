//! One test binary for the crate (one link step on a small machine).

mod crm;
mod csv_files;
mod jsonl;
mod simulate;
