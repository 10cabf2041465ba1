//! Slurm's side: `PrologFlags` and the plugin stack (plugstack.conf and its includes).

use super::*;

pub(super) const SLURM: &str = "Slurm";
pub(super) const PROLOG_FLAGS: &str = "Slurm PrologFlags";
pub(super) const PLUGIN: &str = "Slurm plugin";

/// The flags of `PrologFlags` in `scontrol show config` output (`(null)`: none); `None`
/// when the output has no such line.
pub fn prolog_flags(output: &str) -> Option<Vec<String>> {
    let v = show_config_value(output, "PrologFlags")?;
    if v == "(null)" {
        return Some(Vec::new());
    }
    Some(
        v.split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(String::from)
            .collect(),
    )
}

/// OK when the prolog runs at allocation: `Alloc`, or a flag that implies it (`Contain`;
/// `X11` and `RunInJob` imply `Contain`). WARN otherwise, or when the flags are unknown.
pub fn prolog_flags_finding(show_config: &Result<String, ScontrolError>) -> Finding {
    let output = match show_config {
        Ok(o) => o,
        Err(e) => {
            return finding(
                Level::Warn,
                PROLOG_FLAGS,
                format!("cannot read PrologFlags: {e}"),
            )
        }
    };
    let Some(flags) = prolog_flags(output) else {
        return finding(
            Level::Warn,
            PROLOG_FLAGS,
            "cannot read PrologFlags: `scontrol show config` printed no PrologFlags line",
        );
    };
    let shown = if flags.is_empty() {
        "(null)".to_string()
    } else {
        flags.join(",")
    };
    let at_alloc = flags.iter().any(|f| {
        ["Alloc", "Contain", "X11", "RunInJob"]
            .iter()
            .any(|a| f.eq_ignore_ascii_case(a))
    });
    if at_alloc {
        finding(Level::Ok, PROLOG_FLAGS, format!("PrologFlags={shown}"))
    } else {
        finding(
            Level::Warn,
            PROLOG_FLAGS,
            format!(
                "PrologFlags={shown}: without Alloc (or Contain) the prolog runs on a node only when the job's first step starts there, so the other nodes of a multi-node batch job get credentials only once srun starts a step on them, and processes started there otherwise get none; set PrologFlags=Alloc in slurm.conf"
            ),
        )
    }
}

/// The values of `key` (case-insensitive) in slurm.conf-style text: `Key=value` tokens,
/// comments (`#` to the end of the line) ignored. Included files are not followed.
pub fn conf_values(text: &str, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        for token in line.split_whitespace() {
            if let Some((k, v)) = token.split_once('=') {
                if k.eq_ignore_ascii_case(key) && !v.is_empty() {
                    out.push(v.to_string());
                }
            }
        }
    }
    out
}

/// The plugstack file slurm.conf names (`PlugStackConfig=`), else `plugstack.conf` next to it.
pub fn plugstack_path(slurm_conf: &Path, text: Option<&str>) -> PathBuf {
    text.and_then(|t| conf_values(t, "PlugStackConfig").pop())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            slurm_conf
                .parent()
                .unwrap_or(Path::new("/"))
                .join("plugstack.conf")
        })
}

/// The `include PATTERN` lines of a plugstack file.
pub fn plugstack_includes(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let first = words.next()?;
            if first.eq_ignore_ascii_case("include") {
                words.next().map(String::from)
            } else {
                None
            }
        })
        .collect()
}

/// Shell-style matching of one file name: `*` any run of characters, `?` any one.
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// A plugstack file and its text.
#[derive(Debug)]
pub struct ConfFile {
    pub path: PathBuf,
    pub text: Result<String, std::io::Error>,
}

/// The aws-role line of a plugin stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLine {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// `required` (else `optional`).
    pub required: bool,
    pub so: String,
    pub config: Option<PathBuf>,
    pub prolog: Option<PathBuf>,
    pub epilog: Option<PathBuf>,
    /// `timeout=` in seconds, when given as a number.
    pub timeout: Option<u64>,
}

/// The first `required|optional .../aws_role.so [args]` line in `files`.
pub fn find_plugin(files: &[ConfFile]) -> Option<PluginLine> {
    for f in files {
        let Ok(text) = &f.text else { continue };
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(kind), Some(so)) = (words.next(), words.next()) else {
                continue;
            };
            let required = kind.eq_ignore_ascii_case("required");
            if !(required || kind.eq_ignore_ascii_case("optional")) {
                continue;
            }
            if Path::new(so).file_name() != Some(PLUGIN_SO.as_ref()) {
                continue;
            }
            let mut p = PluginLine {
                file: f.path.clone(),
                line: n + 1,
                required,
                so: so.to_string(),
                config: None,
                prolog: None,
                epilog: None,
                timeout: None,
            };
            for arg in words {
                match arg.split_once('=') {
                    Some(("config", v)) => p.config = Some(v.into()),
                    Some(("prolog", v)) => p.prolog = Some(v.into()),
                    Some(("epilog", v)) => p.epilog = Some(v.into()),
                    Some(("timeout", v)) => p.timeout = v.parse().ok(),
                    _ => {}
                }
            }
            return Some(p);
        }
    }
    None
}

/// What the node's Slurm configuration looks like.
#[derive(Debug)]
pub struct SlurmView {
    /// The map's `[slurm] scontrol`.
    pub scontrol: PathBuf,
    /// `scontrol show config`; `None` when `scontrol` is not there.
    pub show_config: Option<Result<String, ScontrolError>>,
    /// `$SLURM_CONF`, else `/etc/slurm/slurm.conf`.
    pub slurm_conf: PathBuf,
    pub slurm_conf_text: Result<String, std::io::Error>,
    /// The plugstack file and every file it includes, in order.
    pub plugstack: Vec<ConfFile>,
}

impl SlurmView {
    /// Whether Slurm is installed here at all.
    pub fn present(&self) -> bool {
        self.show_config.is_some()
            || !matches!(&self.slurm_conf_text, Err(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// PrologFlags, and whether Slurm runs aws-role: the plugin in the plugstack (OK; WARN if
/// `optional`), else `Prolog=` naming aws-role-prolog (Prolog-only mode: OK with
/// `TaskProlog=` too, which gives jobs their environment, else WARN), else WARN.
pub fn slurm_findings(
    view: &SlurmView,
    plugin: Option<&PluginLine>,
    map_path: &Path,
) -> Vec<Finding> {
    if !view.present() {
        return vec![finding(
            Level::Info,
            SLURM,
            format!(
                "neither {} nor {} exists: not a Slurm node, Slurm checks skipped",
                view.scontrol.display(),
                view.slurm_conf.display()
            ),
        )];
    }
    let mut out = Vec::new();
    out.push(match &view.show_config {
        Some(r) => prolog_flags_finding(r),
        None => finding(
            Level::Warn,
            PROLOG_FLAGS,
            format!(
                "cannot read PrologFlags: {} does not exist (the map's [slurm] scontrol names it)",
                view.scontrol.display()
            ),
        ),
    });
    let conf = view.slurm_conf_text.as_deref().ok();
    let names_prolog = |key: &str| {
        conf.map(|c| conf_values(c, key))
            .unwrap_or_default()
            .into_iter()
            .find(|v| v.contains("aws-role-prolog"))
    };
    let stack = view.plugstack.first().map_or_else(
        || "the plugstack".to_string(),
        |f| f.path.display().to_string(),
    );
    for (i, f) in view.plugstack.iter().enumerate() {
        if let Err(e) = &f.text {
            // No plugstack file at all is common (no plugins) and is said below.
            if i > 0 || e.kind() != std::io::ErrorKind::NotFound {
                out.push(finding(
                    Level::Warn,
                    PLUGIN,
                    format!("cannot read {}: {e}", f.path.display()),
                ));
            }
        }
    }
    match plugin {
        Some(p) => {
            let at = format!("{}:{}", p.file.display(), p.line);
            out.push(if p.required {
                finding(Level::Ok, PLUGIN, format!("{at}: required {}", p.so))
            } else {
                finding(
                    Level::Warn,
                    PLUGIN,
                    format!(
                        "{at}: optional {}: a job whose --aws-role is refused at submit is queued anyway and fails at its first task; use `required`",
                        p.so
                    ),
                )
            });
            let config = p.config.as_deref().unwrap_or(Path::new(crate::map::DEFAULT_PATH));
            if config != map_path {
                out.push(finding(
                    Level::Info,
                    PLUGIN,
                    format!(
                        "the plugin reads the role map {}; this check read {}",
                        config.display(),
                        map_path.display()
                    ),
                ));
            }
        }
        None => match (names_prolog("Prolog"), &view.slurm_conf_text) {
            (Some(prolog), _) => out.push(match names_prolog("TaskProlog") {
                Some(_) => finding(
                    Level::Ok,
                    PLUGIN,
                    format!("no {PLUGIN_SO} in {stack}; Prolog-only mode (Prolog={prolog}, TaskProlog= too)"),
                ),
                None => finding(
                    Level::Warn,
                    PLUGIN,
                    format!(
                        "no {PLUGIN_SO} in {stack} and Prolog={prolog}, but TaskProlog= does not run aws-role-prolog: jobs get credentials but not the environment that points at them"
                    ),
                ),
            }),
            (None, Err(e)) => out.push(finding(
                Level::Warn,
                PLUGIN,
                format!(
                    "no {PLUGIN_SO} in {stack}, and {} cannot be read ({e}) to look for Prolog=",
                    view.slurm_conf.display()
                ),
            )),
            (None, Ok(_)) => out.push(finding(
                Level::Warn,
                PLUGIN,
                format!(
                    "Slurm does not run aws-role here: no {PLUGIN_SO} line in {stack} (or the files it includes), and Prolog= in {} does not name aws-role-prolog",
                    view.slurm_conf.display()
                ),
            )),
        },
    }
    out
}

/// Reads the plugstack file and what it includes (`include DIR/*.conf`: wildcards in the
/// last component only; relative paths from the including file's directory), at most
/// four levels deep.
pub fn read_plugstack(path: &Path) -> Vec<ConfFile> {
    let mut out = Vec::new();
    read_conf(path, 0, &mut out);
    out
}

pub(super) fn read_conf(path: &Path, depth: usize, out: &mut Vec<ConfFile>) {
    if depth > 4 || out.iter().any(|f| f.path == path) {
        return;
    }
    let text = std::fs::read_to_string(path);
    let includes = text.as_deref().map(plugstack_includes).unwrap_or_default();
    out.push(ConfFile {
        path: path.to_path_buf(),
        text,
    });
    let here = path.parent().unwrap_or(Path::new("/"));
    for pattern in includes {
        let pattern = here.join(pattern);
        let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
            continue;
        };
        let name = name.to_string_lossy();
        if !name.contains(['*', '?']) {
            read_conf(&pattern, depth + 1, out);
            continue;
        }
        let mut matches: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| wildcard(&name, &e.file_name().to_string_lossy()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        matches.sort();
        for m in matches {
            read_conf(&m, depth + 1, out);
        }
    }
}
