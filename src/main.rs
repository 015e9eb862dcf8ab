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
    Analyze {
        /// One JSON object per file, one per line (file, packets, flows, banned_hosts).
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
    /// Validate a YAML config without starting DPDK. Exit status 2 when invalid.
    CheckConfig {
        /// The YAML config to validate.
        #[arg(value_name = "FILE")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
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
    }
}

fn analyze(
    files: &[PathBuf],
    config: Option<&std::path::Path>,
    json: bool,
    loops: u64,
) -> ExitCode {
    use btblocker::analyze;
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
            Ok(report) if json => {
                println!("{}", serde_json::to_string(&report).expect("plain data"))
            }
            Ok(report) => print!("{}", analyze::render_text(&report)),
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
    let opts = btblocker::dpdk::runtime::RunOptions { summary_json };
    match btblocker::dpdk::runtime::run(&cfg, &opts) {
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
