//! The `btblocker` command line.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for a configuration that does not validate (nothing was started).
const EXIT_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(
    name = "btblocker",
    version,
    about = "Recognise BitTorrent by DPI on a DPDK dataplane and ban the hosts that run it",
    long_about = "btblocker sits in an ISP's path (inline or on a mirror port), polls DPDK \
ports in bursts on dedicated lcores, parses every packet, recognises BitTorrent by deep \
packet inspection and bans the hosts that run it.\n\n\
Quick start: `make run` replays a bundled capture through DPDK's net_pcap driver \
(no hugepages, no NIC) with dpdk-config/demo.yaml and prints what it saw."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the DPDK dataplane described by a YAML config.
    Run {
        /// The YAML config (see dpdk-config/ for examples).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Also write the final counters as JSON to this file.
        #[arg(long, value_name = "FILE")]
        summary_json: Option<PathBuf>,
    },
    /// Run the DPI pipeline over capture files (pcap/pcapng) without DPDK and
    /// print per-flow verdicts and the hosts a ban would hit.
    ///
    /// A damaged file (cut off mid-record, a record longer than the snaplen,
    /// a bad timestamp...) is read up to the damage, as tcpdump reads it: the
    /// packets before it are analysed and the damage is reported (text, JSON
    /// `damage`, and a warning on stderr).
    ///
    /// Exit status: 0 every file was analysed, damaged or not; 1 a file could
    /// not be opened or read, or is not a pcap/pcapng file (no valid file
    /// header); the other files are still analysed; 2 an invalid CONFIG.
    Analyze {
        /// One JSON object per file, one per line (file, packets, flows, banned_hosts, damage, ...).
        #[arg(long)]
        json: bool,
        /// Take the `flows` and `dpi` sections from this YAML config.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Benchmark: read each capture into memory once and run the pipeline
        /// over it N times (the same flows come back each pass); prints the
        /// packet rate to stderr. Counts in the report cover every pass.
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(u64).range(1..))]
        loops: u64,
        /// Capture files: pcap or pcapng; Ethernet, raw IP, Linux SLL/SLL2, NULL/loopback.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// Traffic generator for the virtio testbed: owns two net_vhost ports
    /// (vhost-user servers) that btblocker's virtio_user ports connect to,
    /// replays captures through btblocker and records what comes back.
    Replay(ReplayArgs),
    /// Show, add and lift bans in the running daemon, over its control socket.
    #[command(
        long_about = "Show, add and lift bans in the running daemon. The commands talk to \
the daemon over its Unix control socket (YAML `control.socket`, default \
/run/btblocker/control.sock, mode 0600: run them as the daemon's user). The socket is \
--socket PATH, else the control.socket of -c CONFIG, else the default.\n\n\
Every change is journaled to ban.state_file and reaches the workers at their next \
burst.\n\n\
Exit status: 0 done; 1 the daemon is not running or refused (the reason is printed); \
2 bad arguments (e.g. not an IP address) or an invalid CONFIG."
    )]
    Bans {
        #[command(flatten)]
        socket: SocketArgs,
        #[command(subcommand)]
        command: BansCommand,
    },
    /// Validate a YAML config without starting DPDK. Exit status 2 when invalid.
    CheckConfig {
        /// The YAML config to validate.
        #[arg(value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Capture to send (pcap or pcapng, Ethernet); repeat for several, sent in order.
    #[arg(long = "pcap", value_name = "FILE", required = true)]
    pcaps: Vec<PathBuf>,
    /// vhost-user socket btblocker's inside virtio_user port connects to.
    #[arg(long, value_name = "PATH")]
    inside_sock: PathBuf,
    /// vhost-user socket btblocker's outside virtio_user port connects to.
    #[arg(long, value_name = "PATH")]
    outside_sock: PathBuf,
    /// Addresses that are inside (subscribers): a packet from one goes into
    /// the inside port, any other into the outside port. Repeatable.
    /// [default: 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7]
    #[arg(long, value_name = "CIDR")]
    inside: Vec<String>,
    /// vhost queues per port (= btblocker workers); a symmetric flow hash picks the queue.
    #[arg(long, default_value_t = 1)]
    queues: u16,
    /// Packets per second over both ports [default: flat out].
    #[arg(long, value_name = "PPS")]
    rate: Option<u64>,
    /// Replay the whole capture this many times.
    #[arg(long, default_value_t = 1)]
    passes: u32,
    /// Pause between passes, receiving (lets bans publish).
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pause_ms: u64,
    /// How long to wait for btblocker to connect (and to take packets).
    #[arg(long, value_name = "S", default_value_t = 30)]
    connect_timeout_s: u64,
    /// After the last pass, stop receiving after this long with nothing.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    idle_ms: u64,
    /// Most packets in flight through btblocker (sent, not yet back); 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 128)]
    window: u64,
    /// Do not hold a flow's reply until what it answers went through btblocker
    /// (faster; btblocker may then see a flow's two directions out of order).
    #[arg(long)]
    unordered: bool,
    /// Write what came back: DIR/inside-rx.pcap, DIR/outside-rx.pcap.
    #[arg(long, value_name = "DIR")]
    received_dir: Option<PathBuf>,
    /// Write sent/received packets and bytes per port and per pass as JSON.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// EAL file prefix (each DPDK process needs its own).
    #[arg(long, value_name = "P", default_value = "btblocker-replay")]
    file_prefix: String,
}

impl ReplayArgs {
    fn settings(
        self,
    ) -> Result<btblocker::tools::replay::ReplaySettings, btblocker::tools::replay::SettingsError>
    {
        let mut s = btblocker::tools::replay::ReplaySettings::new(
            self.pcaps,
            self.inside_sock,
            self.outside_sock,
        );
        s.sides = btblocker::tools::replay::parse_inside(&self.inside)?;
        s.queues = self.queues;
        s.rate_pps = self.rate;
        s.passes = self.passes;
        s.pause_ms = self.pause_ms;
        s.connect_timeout_s = self.connect_timeout_s;
        s.idle_ms = self.idle_ms;
        s.window = self.window;
        s.ordered = !self.unordered;
        s.received_dir = self.received_dir;
        s.summary_json = self.summary_json;
        s.file_prefix = self.file_prefix;
        s.validate()?;
        Ok(s)
    }
}

/// Where the daemon's control socket is.
#[derive(clap::Args)]
struct SocketArgs {
    /// The control socket [default: /run/btblocker/control.sock].
    #[arg(long, value_name = "PATH", global = true, conflicts_with = "config")]
    socket: Option<PathBuf>,
    /// Take the socket from this YAML config's `control.socket`.
    #[arg(short, long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum BansCommand {
    /// Every ban in force: IP, reason (detector, manual, denylist, or
    /// bgp:<box id> when imported; ", announced" when BGP announces it),
    /// hits, first seen (UTC), time left.
    /// Sorted by address; fetched from the daemon 10,000 at a time, so even a
    /// million bans never hold up its ban updates for long.
    List {
        /// One JSON object: {"ok":true,"bans":[{"ip","reason","first_seen_ms",
        /// "last_seen_ms","hits","expires_ms","remaining_ms"}],"total":N} (times
        /// in unix ms; expires_ms and remaining_ms null for a static ban; total:
        /// bans in force, listed or not). With `bgp:` on, each ban also has
        /// "announced" (true/false) and, if imported, "imported_from" (box id).
        #[arg(long)]
        json: bool,
        /// Only the first N bans (after --after, if given).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        /// Only bans whose address sorts after IP: the next page after a
        /// --limit listing ends at IP.
        #[arg(long, value_name = "IP")]
        after: Option<std::net::IpAddr>,
    },
    /// Ban a host by hand (reason "manual"). Refused for an allowlisted
    /// address and for multicast, broadcast, unspecified or loopback ones. An
    /// existing ban is extended (never shortened) and keeps its reason.
    Add {
        /// IPv4 or IPv6 address.
        ip: std::net::IpAddr,
        /// How long: 90s, 30m, 5h, 2d, 1h30m ... [default: the daemon's ban.ttl_s]
        #[arg(long, value_name = "DURATION", value_parser = btblocker::control::operator::client::parse_ttl)]
        ttl: Option<std::time::Duration>,
    },
    /// Lift the ban on a host; its traffic flows again from the workers' next
    /// burst. A denylisted host is banned again at the next start.
    Del {
        /// IPv4 or IPv6 address.
        ip: std::net::IpAddr,
    },
    /// Lift every ban, denylisted ones included (until the next start).
    Flush,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Bans { socket, command } => bans(&socket, command),
        Command::CheckConfig { config } => match btblocker::config::load_file(&config) {
            Ok(cfg) => {
                println!(
                    "{}: ok ({} ports, {} workers, mode {:?})",
                    config.display(),
                    cfg.ports.len(),
                    cfg.pipeline.worker_lcores.len(),
                    cfg.pipeline.mode
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Run {
            config,
            summary_json,
        } => run(&config, summary_json),
        Command::Analyze {
            json,
            config,
            loops,
            files,
        } => analyze(&files, config.as_deref(), json, loops),
        Command::Replay(args) => match args.settings() {
            Ok(settings) => replay(&settings),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
    }
}

fn analyze(
    files: &[PathBuf],
    config: Option<&std::path::Path>,
    json: bool,
    loops: u64,
) -> ExitCode {
    use btblocker::tools::analyze;
    let (flows, dpi) = match config.map(btblocker::config::load_file) {
        None => Default::default(),
        Some(Ok(cfg)) => (cfg.flows, cfg.dpi),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut failed = false;
    let started = std::time::Instant::now();
    let results = analyze::analyze_files(files, &flows, &dpi, loops);
    let elapsed = started.elapsed().as_secs_f64();
    if loops > 1 {
        let packets: u64 = results.iter().flatten().map(|r| r.packets).sum();
        eprintln!(
            "analyzed {packets} packets ({loops} passes) in {elapsed:.3} s: {:.0} packets/s",
            packets as f64 / elapsed
        );
    }
    for result in results {
        match result {
            Ok(report) => {
                for d in &report.damage {
                    eprintln!("warning: {}: {}", report.file, analyze::describe_damage(d));
                    failed |= d.kind.needs_operator();
                }
                if json {
                    println!("{}", serde_json::to_string(&report).expect("plain data"));
                } else {
                    print!("{}", analyze::render_text(&report));
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn bans(socket: &SocketArgs, command: BansCommand) -> ExitCode {
    use btblocker::control::operator::{client, Reply, Request};
    let path = match (&socket.socket, &socket.config) {
        (Some(path), _) => path.clone(),
        (None, Some(config)) => match btblocker::config::load_file(config) {
            Ok(cfg) => match cfg.operator.socket {
                Some(path) => path,
                None => {
                    eprintln!(
                        "error: {} switches the control socket off (control.socket)",
                        config.display()
                    );
                    return ExitCode::from(EXIT_CONFIG);
                }
            },
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        (None, None) => PathBuf::from(btblocker::config::DEFAULT_SOCKET),
    };
    let (request, json) = match command {
        BansCommand::List { json, limit, after } => {
            return list_bans(&path, json, limit.map(|l| l as usize), after)
        }
        BansCommand::Add { ip, ttl } => (
            Request::Add {
                ip,
                ttl_s: ttl.map(|d| d.as_secs()),
            },
            false,
        ),
        BansCommand::Del { ip } => (Request::Del { ip }, false),
        BansCommand::Flush => (Request::Flush, false),
    };
    match client::send(&path, &request) {
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Ok(Reply::Error { error, .. }) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
        Ok(reply) if json => {
            println!("{}", serde_json::to_string(&reply).expect("plain data"));
            ExitCode::SUCCESS
        }
        Ok(reply) => {
            print!("{}", client::render_change(&reply));
            ExitCode::SUCCESS
        }
    }
}

fn list_bans(
    path: &std::path::Path,
    json: bool,
    limit: Option<usize>,
    after: Option<std::net::IpAddr>,
) -> ExitCode {
    use btblocker::control::operator::{client, Reply};
    match client::list(path, after, limit) {
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Ok((bans, total)) => {
            let shown = bans.len();
            let last = bans.last().map(|b| b.ip);
            let reply = Reply::Bans {
                ok: true,
                bans,
                total,
            };
            if json {
                println!("{}", serde_json::to_string(&reply).expect("plain data"));
            } else {
                print!("{}", client::render_change(&reply));
                if let (Some(last), true) = (last, limit == Some(shown) && shown < total) {
                    eprintln!(
                        "{shown} bans shown ({total} in force); the next ones: bans list --limit N --after {last}"
                    );
                }
            }
            ExitCode::SUCCESS
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BTBLOCKER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

#[cfg(feature = "dpdk")]
fn run(path: &std::path::Path, summary_json: Option<PathBuf>) -> ExitCode {
    // The whole config is validated before EAL sees a single argument: a
    // mistake never leaves the dataplane half started.
    let cfg = match btblocker::config::load_file(path) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let opts = btblocker::app::RunOptions {
        summary_json,
        config_path: Some(path.to_path_buf()),
    };
    match btblocker::app::run(&cfg, &opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "dpdk"))]
fn run(_path: &std::path::Path, _summary_json: Option<PathBuf>) -> ExitCode {
    eprintln!("error: this btblocker was built without the `dpdk` feature; rebuild with default features to run the dataplane");
    ExitCode::FAILURE
}

#[cfg(feature = "dpdk")]
fn replay(settings: &btblocker::tools::replay::ReplaySettings) -> ExitCode {
    match btblocker::tools::replay::player::run(settings) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "dpdk"))]
fn replay(_settings: &btblocker::tools::replay::ReplaySettings) -> ExitCode {
    eprintln!("error: this btblocker was built without the `dpdk` feature; rebuild with default features to replay");
    ExitCode::FAILURE
}
