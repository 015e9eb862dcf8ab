//! The options of `btblocker replay`, checked before EAL starts, and the EAL
//! command line they give.
use std::path::{Path, PathBuf};

use crate::ban::Cidr;

use super::plan::{Side, Sides};

/// Queue pairs per vhost port; btblocker runs one worker per queue.
pub const MAX_QUEUES: u16 = 8;
/// `sun_path` holds 108 bytes, the terminating NUL included.
const MAX_SOCKET_PATH: usize = 107;

#[derive(Clone, Debug)]
pub struct ReplaySettings {
    pub pcaps: Vec<PathBuf>,
    pub inside_sock: PathBuf,
    pub outside_sock: PathBuf,
    pub sides: Sides,
    pub queues: u16,
    /// Packets per second; `None`: flat out.
    pub rate_pps: Option<u64>,
    pub passes: u32,
    pub pause_ms: u64,
    pub connect_timeout_s: u64,
    pub idle_ms: u64,
    /// Packets in flight through the device under test at most; 0: no limit.
    pub window: u64,
    /// Each flow's packets reach btblocker in capture order, both directions
    /// (a reply waits for what it replies to); off: flat out, any order
    /// across ports.
    pub ordered: bool,
    pub received_dir: Option<PathBuf>,
    pub summary_json: Option<PathBuf>,
    pub file_prefix: String,
    pub memory_mb: u32,
}

impl ReplaySettings {
    /// The defaults of the CLI, for `pcaps` and the two sockets.
    pub fn new(pcaps: Vec<PathBuf>, inside_sock: PathBuf, outside_sock: PathBuf) -> Self {
        ReplaySettings {
            pcaps,
            inside_sock,
            outside_sock,
            sides: Sides::default_inside(),
            queues: 1,
            rate_pps: None,
            passes: 1,
            pause_ms: 200,
            connect_timeout_s: 30,
            idle_ms: 500,
            window: 128,
            ordered: true,
            received_dir: None,
            summary_json: None,
            file_prefix: "btblocker-replay".to_owned(),
            memory_mb: 256,
        }
    }

    pub fn socket(&self, side: Side) -> &Path {
        match side {
            Side::Inside => &self.inside_sock,
            Side::Outside => &self.outside_sock,
        }
    }

    /// The net_vhost vdev name of a side's port.
    pub fn vdev_name(side: Side) -> &'static str {
        match side {
            Side::Inside => "net_vhost0",
            Side::Outside => "net_vhost1",
        }
    }

    /// Everything that can be checked without DPDK: a mistake here never
    /// leaves a half-started EAL or a stray socket behind.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.pcaps.is_empty() {
            return Err(SettingsError::Invalid(
                "at least one --pcap is needed".into(),
            ));
        }
        if self.queues == 0 || self.queues > MAX_QUEUES {
            return Err(SettingsError::Invalid(format!(
                "--queues must be 1..={MAX_QUEUES}, not {}",
                self.queues
            )));
        }
        if self.passes == 0 {
            return Err(SettingsError::Invalid("--passes must be at least 1".into()));
        }
        if self.rate_pps == Some(0) {
            return Err(SettingsError::Invalid(
                "--rate must be at least 1 packet per second (leave it out for flat out)".into(),
            ));
        }
        if self.connect_timeout_s == 0 {
            return Err(SettingsError::Invalid(
                "--connect-timeout-s must be at least 1".into(),
            ));
        }
        if !crate::config::is_file_prefix(&self.file_prefix) {
            return Err(SettingsError::Invalid(format!(
                "--file-prefix {:?} must match [A-Za-z0-9_-]+",
                self.file_prefix
            )));
        }
        if self.inside_sock == self.outside_sock {
            return Err(SettingsError::Invalid(
                "--inside-sock and --outside-sock must differ".into(),
            ));
        }
        for side in Side::BOTH {
            check_socket_path(side, self.socket(side))?;
        }
        if let Some(dir) = &self.received_dir {
            if !dir.is_dir() {
                return Err(SettingsError::Invalid(format!(
                    "--received-dir {}: no such directory",
                    dir.display()
                )));
            }
        }
        Ok(())
    }

    /// EAL argv (without `argv[0]`): one lcore, no hugepages, no PCI, and the
    /// two vhost-user server ports.
    pub fn eal_args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "-l",
            "0",
            "--no-huge",
            "--no-pci",
            "-m",
            &self.memory_mb.to_string(),
            "--file-prefix",
            &self.file_prefix,
            // vhost logs every protocol message at INFO: keep warnings only.
            "--log-level",
            "lib.vhost.config:warning",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for side in Side::BOTH {
            args.push("--vdev".to_owned());
            args.push(format!(
                "{},iface={},queues={}",
                Self::vdev_name(side),
                self.socket(side).display(),
                self.queues
            ));
        }
        args
    }
}

/// Parses `--inside` values; none given: the default subscriber space.
pub fn parse_inside(values: &[String]) -> Result<Sides, SettingsError> {
    if values.is_empty() {
        return Ok(Sides::default_inside());
    }
    let mut cidrs = Vec::with_capacity(values.len());
    for v in values {
        let text = v.trim();
        let cidr = match text.parse::<std::net::IpAddr>() {
            Ok(ip) => Cidr::new(ip, if ip.is_ipv4() { 32 } else { 128 }),
            Err(_) => text.parse::<Cidr>(),
        }
        .map_err(|e| SettingsError::Invalid(format!("--inside {v:?}: {e}")))?;
        cidrs.push(cidr);
    }
    Ok(Sides::new(cidrs))
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}")]
    Invalid(String),
    #[error("--{side}-sock {path}: the directory {dir} does not exist (create it, or choose a path under /tmp or /run)")]
    NoSocketDir {
        side: &'static str,
        path: String,
        dir: String,
    },
    #[error("--{side}-sock {path}: {problem}")]
    SocketPath {
        side: &'static str,
        path: String,
        problem: String,
    },
}

/// The socket's directory must exist; the path must fit `sun_path`; a file
/// already there must be a (stale) socket, which the vhost server replaces.
fn check_socket_path(side: Side, path: &Path) -> Result<(), SettingsError> {
    let shown = path.display().to_string();
    let problem = |problem: String| SettingsError::SocketPath {
        side: side.name(),
        path: shown.clone(),
        problem,
    };
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(problem(format!(
            "longer than the {MAX_SOCKET_PATH} bytes a unix socket path may have"
        )));
    }
    if path.file_name().is_none() {
        return Err(problem("names no file".into()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(SettingsError::NoSocketDir {
            side: side.name(),
            path: shown,
            dir: dir.display().to_string(),
        });
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !is_socket(&meta) {
            return Err(problem(
                "exists and is not a socket (refusing to replace it)".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn is_socket(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_socket()
}

#[cfg(not(unix))]
fn is_socket(_meta: &std::fs::Metadata) -> bool {
    false
}

/// Removes a stale socket left by an earlier run (the vhost server cannot
/// bind over it). `validate` has already refused anything but a socket.
pub fn remove_stale_socket(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> ReplaySettings {
        ReplaySettings::new(
            vec![PathBuf::from("x.pcap")],
            dir.join("in.sock"),
            dir.join("out.sock"),
        )
    }

    #[test]
    fn eal_line_has_both_vhost_ports_with_their_queues() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        s.queues = 2;
        s.file_prefix = "gen1".into();
        let args = s.eal_args();
        let line = args.join(" ");
        assert!(
            line.starts_with(
                "-l 0 --no-huge --no-pci -m 256 --file-prefix gen1 --log-level lib.vhost.config:warning "
            ),
            "{line}"
        );
        let inside = format!("net_vhost0,iface={}/in.sock,queues=2", dir.path().display());
        let outside = format!(
            "net_vhost1,iface={}/out.sock,queues=2",
            dir.path().display()
        );
        assert_eq!(
            &args[args.len() - 4..],
            &["--vdev".to_string(), inside, "--vdev".to_string(), outside]
        );
        s.validate().unwrap();
    }

    #[test]
    fn bad_options_are_refused_with_the_option_named() {
        let dir = tempfile::tempdir().unwrap();
        let check = |f: &dyn Fn(&mut ReplaySettings), want: &str| {
            let mut s = settings(dir.path());
            f(&mut s);
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        };
        check(&|s| s.queues = 0, "--queues");
        check(&|s| s.queues = 9, "--queues");
        check(&|s| s.passes = 0, "--passes");
        check(&|s| s.rate_pps = Some(0), "--rate");
        check(&|s| s.pcaps.clear(), "--pcap");
        check(&|s| s.file_prefix = "a/b".into(), "--file-prefix");
        check(&|s| s.outside_sock = s.inside_sock.clone(), "must differ");
        check(
            &|s| s.inside_sock = PathBuf::from("/nonexistent-dir/x.sock"),
            "the directory /nonexistent-dir does not exist",
        );
        check(
            &|s| s.outside_sock = PathBuf::from(format!("/tmp/{}", "a".repeat(120))),
            "longer than",
        );
        check(
            &|s| s.received_dir = Some(PathBuf::from("/nonexistent-dir")),
            "--received-dir",
        );
        let file = dir.path().join("in.sock");
        std::fs::write(&file, "not a socket").unwrap();
        check(&|_| {}, "is not a socket");
    }

    #[test]
    fn inside_networks_parse_or_fail_clearly() {
        let sides = parse_inside(&["8.8.8.0/24".into(), "2001:db8::1".into()]).unwrap();
        assert!(sides.is_inside("8.8.8.8".parse().unwrap()));
        assert!(sides.is_inside("2001:db8::1".parse().unwrap()));
        assert!(!sides.is_inside("192.168.1.1".parse().unwrap()));
        let default = parse_inside(&[]).unwrap();
        assert!(default.is_inside("192.168.1.1".parse().unwrap()));
        assert!(default.is_inside("fd00::1".parse().unwrap()));
        assert!(!default.is_inside("8.8.8.8".parse().unwrap()));
        let err = parse_inside(&["10.0.0.1/8".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--inside \"10.0.0.1/8\""), "{err}");
    }
}
