//! The ports `run` drives: found by name, one mbuf pool per NUMA socket,
//! configured with one RX queue per worker where the driver offers them
//! (symmetric RSS where it can) and one TX queue per worker, then started;
//! and which queues each worker polls.
use tracing::{info, warn};

use super::worker::Poll;
use super::RunError;
use crate::config::Config;
use crate::dataplane::counters::HwPortStats;
use crate::dpdk::{port, Mempool};

/// The driver's counters of every port, for the report.
pub fn hw_stats(ports: &[ActivePort]) -> Vec<HwPortStats> {
    ports.iter().map(|p| port::stats(p.id)).collect()
}

/// A started port.
pub struct ActivePort {
    pub id: u16,
    pub rx_queues: u16,
    /// Packets carry the NIC's symmetric, full-entropy flow hash: workers
    /// may index their flow tables with it (`port::FlowHash::Nic`).
    pub nic_flow_hash: bool,
}

pub fn setup(cfg: &Config, nb_workers: u16) -> Result<Vec<ActivePort>, RunError> {
    let mut infos = Vec::with_capacity(cfg.ports.len());
    for pc in &cfg.ports {
        let id = port::find_by_name(pc.dpdk_name()).map_err(|e| RunError::Port {
            port: pc.name.clone(),
            device: pc.device.clone(),
            reason: e.reason,
        })?;
        infos.push(port::info(id)?);
    }
    // One pool per NUMA socket that has a port.
    let mut pools: Vec<(i32, Mempool)> = Vec::new();
    for info in &infos {
        let socket = info.socket.max(0);
        if !pools.iter().any(|(s, _)| *s == socket) {
            let pool = Mempool::create(
                &format!("btb_pool_s{socket}"),
                cfg.pipeline.mbuf_pool_size,
                cfg.pipeline.mbuf_cache_size,
                socket,
            )?;
            pools.push((socket, pool));
        }
    }
    let mut active = Vec::with_capacity(infos.len());
    for (pc, info) in cfg.ports.iter().zip(&infos) {
        let err = |reason: String| RunError::Port {
            port: pc.name.clone(),
            device: pc.device.clone(),
            reason,
        };
        if info.max_tx_queues < nb_workers {
            return Err(err(format!(
                "driver {} offers {} TX queue(s) but each of the {nb_workers} workers needs its own",
                info.driver, info.max_tx_queues
            )));
        }
        let rx_queues = if info.max_rx_queues < nb_workers {
            warn!(
                "port {}: driver {} offers {} RX queue(s) for {nb_workers} workers: using 1 queue, polled by the first worker only",
                pc.name, info.driver, info.max_rx_queues
            );
            1
        } else {
            nb_workers
        };
        let pool = &pools
            .iter()
            .find(|(s, _)| *s == info.socket.max(0))
            .expect("a pool per socket")
            .1;
        let setup = port::configure_and_start(
            info,
            rx_queues,
            nb_workers,
            pc.rx_descriptors,
            pc.tx_descriptors,
            pool,
        )
        .map_err(|e| err(e.to_string()))?;
        if setup.rx_queues > 1 && !setup.rss {
            warn!(
                "port {}: driver {} offers no RSS: each RX queue gets what the device puts on it (e.g. the sender's queue on vhost), not a flow hash",
                pc.name, info.driver
            );
        }
        info!(
            "port {} ({}) = DPDK port {} driver {} socket {}: {} rx / {} tx queues, RSS {}",
            pc.name,
            pc.device,
            info.id,
            info.driver,
            info.socket,
            setup.rx_queues,
            setup.tx_queues,
            if setup.rss { "symmetric" } else { "off" }
        );
        info!(
            "port {}: workers index its flows with {}",
            pc.name, setup.flow_hash
        );
        active.push(ActivePort {
            id: info.id,
            rx_queues: setup.rx_queues,
            nic_flow_hash: setup.flow_hash.is_nic(),
        });
    }
    Ok(active)
}

/// The RX queues worker `worker` polls: its own queue index on every port
/// that has that many, each sent to the same queue index on the port's peer.
pub fn polls_for_worker(cfg: &Config, ports: &[ActivePort], worker: u16) -> Vec<Poll> {
    cfg.ports
        .iter()
        .enumerate()
        .filter(|(i, _)| worker < ports[*i].rx_queues)
        .map(|(i, pc)| Poll {
            port_index: i,
            port_id: ports[i].id,
            rx_queue: worker,
            tx_port_index: pc.peer,
            tx_port_id: ports[pc.peer].id,
            tx_queue: worker,
            nic_hash: ports[i].nic_flow_hash,
        })
        .collect()
}

/// Stops and closes every port, so PMDs flush what they buffer (net_pcap
/// writes its output file). A failure is logged: the others still close.
pub fn close_all(cfg: &Config, ports: &[ActivePort]) {
    for (p, pc) in ports.iter().zip(&cfg.ports) {
        if let Err(e) = port::stop_and_close(p.id) {
            warn!("port {}: {e}", pc.name);
        }
    }
}
