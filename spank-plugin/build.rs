//! Build script of the SPANK plugin.
//!
//! 1. Reads `SLURM_VERSION_NUMBER` from the Slurm headers we build against and writes it
//!    to `$OUT_DIR/slurm_version.rs`: Slurm refuses a plugin whose `plugin_version` has
//!    another major.minor, and slurm-spank's own constant (with `SKIP_SLURM_BINDINGS`)
//!    is 23.11's.
//! 2. Compiles the small C shim (`src/shim.c`) that calls `slurm_load_job()`; its Slurm
//!    symbols are left undefined and resolve from the host's libslurmfull at dlopen.
//!
//! `SLURM_INCLUDE_DIR` (default `/usr/include`) names the directory holding `slurm/`.

use std::env;
use std::fs;
use std::path::PathBuf;
use std::process::exit;

fn fail(msg: &str) -> ! {
    eprintln!("error: aws-role-spank build: {msg}");
    exit(1)
}

/// The value of `#define SLURM_VERSION_NUMBER 0x......` in `slurm_version.h`.
fn version_number(header: &str) -> Option<u32> {
    header.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next()? != "#define" || words.next()? != "SLURM_VERSION_NUMBER" {
            return None;
        }
        let value = words.next()?;
        let hex = value
            .strip_prefix("0x")
            .or_else(|| value.strip_prefix("0X"))?;
        u32::from_str_radix(hex, 16).ok()
    })
}

fn main() {
    println!("cargo:rerun-if-env-changed=SLURM_INCLUDE_DIR");
    println!("cargo:rerun-if-changed=src/shim.c");
    let include =
        PathBuf::from(env::var_os("SLURM_INCLUDE_DIR").unwrap_or_else(|| "/usr/include".into()));
    let version_h = include.join("slurm").join("slurm_version.h");
    println!("cargo:rerun-if-changed={}", version_h.display());
    let text = fs::read_to_string(&version_h).unwrap_or_else(|e| {
        fail(&format!(
            "cannot read {}: {e} (install libslurm-dev, or set SLURM_INCLUDE_DIR to the directory holding slurm/)",
            version_h.display()
        ))
    });
    let Some(version) = version_number(&text) else {
        fail(&format!(
            "no '#define SLURM_VERSION_NUMBER 0x...' in {}",
            version_h.display()
        ))
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_else(|| fail("OUT_DIR is not set")));
    let generated = format!(
        "/// `SLURM_VERSION_NUMBER` of the Slurm headers this plugin was built against\n\
         /// ({}.{}.{}); Slurm only loads a plugin of its own major.minor.\n\
         pub const SLURM_VERSION_NUMBER: u32 = {version:#08x};\n",
        version >> 16,
        (version >> 8) & 0xff,
        version & 0xff
    );
    if let Err(e) = fs::write(out.join("slurm_version.rs"), generated) {
        fail(&format!("cannot write slurm_version.rs: {e}"));
    }

    cc::Build::new()
        .file("src/shim.c")
        .include(&include)
        .flag_if_supported("-Wall")
        .flag_if_supported("-Wextra")
        .warnings_into_errors(true)
        .compile("aws_role_shim");
}
