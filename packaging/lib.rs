//! Nothing to compile: this crate only carries the `[package.metadata.deb]` and
//! `[package.metadata.generate-rpm]` tables of the aws-role packages (see `Cargo.toml`
//! and `README.md` beside this file; `build.sh` builds them).
