//! `aws-role-endpoint`: the node daemon that serves each running job its current AWS
//! credentials in the container credentials provider format (ECS tasks, EKS Pod Identity),
//! for the tools that cannot run a `credential_process` and for containers.
//!
//! A daemon of its own rather than a mode of the refresher: it answers requests from every
//! user of the node, so it is kept apart from what calls STS (a flood or a bug here never
//! delays a renewal) and runs with less: it only reads the job directories, never writes,
//! never connects anywhere. What it answers is `aws_role::endpoint::answer`; this shell
//! holds the HTTP server (hyper), the limits and the time-outs.

// Every line goes through aws_role::output or tracing, which never panic on a closed stdout.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_role::endpoint::peer;
use aws_role::map::{self, RoleMap, DEFAULT_PATH};
use aws_role::store::Store;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Semaphore;

/// Serve each running job on this node its current AWS credentials over loopback HTTP.
///
/// Jobs get `AWS_CONTAINER_CREDENTIALS_FULL_URI` (their own URL) and a per-job token
/// (`AWS_CONTAINER_AUTHORIZATION_TOKEN` and `..._TOKEN_FILE`); SDKs and tools that cannot
/// run the job's credential_process, and containers, fetch their credentials here, and
/// fetch again before they expire. A request is answered only when its token is the job's
/// and its socket belongs to the job's user (the kernel says whose it is).
///
/// Runs as root, one per node where jobs run, as the systemd service
/// aws-role-endpoint.service. It reads the job directories and never writes them; it can
/// be restarted at any time. It logs every answer (never a token or a secret) to stderr.
#[derive(Parser, Debug)]
#[command(version, about, long_about, after_long_help = AFTER_HELP)]
struct Args {
    /// Role map to use: its [endpoint] table and [node] base_dir.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_PATH)]
    config: PathBuf,
    /// Override the map's [node] base_dir.
    #[arg(long, value_name = "DIR")]
    base_dir: Option<PathBuf>,
}

const AFTER_HELP: &str = "\
Files:
  /etc/aws-role/role-map.toml
          The role map (--config): [endpoint] enabled, listen, max_connections, max_connections_per_user; [node] base_dir.
  /run/aws-role/JOBID/
          The job directories: state.json (whose job it is), endpoint-token, credentials.json.

Exit status:
  0       Stopped by SIGTERM or SIGINT, or the map turns the endpoint off.
  1       The role map cannot be read, or the address cannot be listened on.
  2       The command line is not valid.

Examples:
  systemctl status aws-role-endpoint
          Is it running on this node? (journalctl -u aws-role-endpoint for what it answered.)
  curl -s -H \"Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN\" \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\"
          Inside a job: what the job's tools get (the output holds its secret key).

See also:
  aws-role-map(5), aws-role-refresher(8), /usr/share/doc/aws-role/admin-guide.md";

fn main() -> ExitCode {
    let args = Args::parse();
    aws_role::logging::init(true);
    let map = match RoleMap::load(&args.config) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if !map.endpoint.enabled {
        tracing::info!(
            "the endpoint is turned off in {} ([endpoint] enabled = false)",
            args.config.display()
        );
        return ExitCode::SUCCESS;
    }
    let store = Store::new(map::base_dir(args.base_dir.as_deref(), Some(&map)));
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(map, store))
}

/// Open connections per uid, for `max_connections_per_user`.
#[derive(Default)]
struct PerUser(Mutex<HashMap<u32, u32>>);

/// One open connection of `uid`, counted until dropped.
struct Counted(Arc<PerUser>, u32);

impl PerUser {
    /// Counts a connection of `uid`, or `None` when it has `max` open already.
    fn take(self: &Arc<Self>, uid: u32, max: u32) -> Option<Counted> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(uid).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Counted(self.clone(), uid))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = self.0 .0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.1) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.1);
            }
        }
    }
}

async fn run(map: RoleMap, store: Store) -> ExitCode {
    let listen = map.endpoint.listen;
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return ExitCode::FAILURE;
    };
    tracing::info!(
        "listening on http://{listen}; job directories in {}",
        store.base().display()
    );
    let all = Arc::new(Semaphore::new(map.endpoint.max_connections as usize));
    let per_user = Arc::new(PerUser::default());
    let per_user_max = map.endpoint.max_connections_per_user;
    let store = Arc::new(store);
    loop {
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let Ok(permit) = all.clone().try_acquire_owned() else {
            // Full: closed at once, so a flood costs a socket, not a task.
            tracing::warn!(
                "refused a connection from {remote}: {} open already",
                map.endpoint.max_connections
            );
            continue;
        };
        let local = stream.local_addr().unwrap_or(listen);
        // Who it is, asked while the connection is certainly open.
        let caller = peer::uid_of(local, remote).map_err(|e| e.to_string());
        let counted = match &caller {
            Ok(uid) => match per_user.take(*uid, per_user_max) {
                Some(c) => Some(c),
                None => {
                    tracing::warn!(
                        "refused a connection of uid {uid}: it has {per_user_max} open already"
                    );
                    continue;
                }
            },
            Err(_) => None,
        };
        let store = store.clone();
        tokio::spawn(async move {
            let _held = (permit, counted);
            aws_role_endpoint::serve_connection(stream, store, caller, remote).await;
        });
    }
    tracing::info!("stopping");
    ExitCode::SUCCESS
}
