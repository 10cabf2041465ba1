//! Logging set-up shared by the daemons and the binaries that talk to STS (features `sts`
//! and `endpoint`).
//!
//! The AWS SDK's own INFO lines name the access key id of the node's credentials (which
//! the node's log has no business holding), so its crates log warnings and errors only.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Logs INFO and above to stderr, one plain line per event (slurmd, pbs_mom and journald
/// add their own context). `timestamps`: for a long-running daemon whose stderr is a file.
pub fn init(timestamps: bool) {
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(tracing::Level::INFO)
        .with_target("aws_config", tracing::Level::WARN)
        .with_target("aws_smithy_runtime", tracing::Level::WARN)
        .with_target("aws_sdk_sts", tracing::Level::WARN);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    if timestamps {
        registry.with(fmt).init();
    } else {
        registry.with(fmt.without_time()).init();
    }
}
