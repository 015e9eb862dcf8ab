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
    let drivers: Vec<&str> = infos.iter().map(|i| i.driver.as_str()).collect();
    if let Some(why) = one_driver_for_nic_hash(&mut active, &drivers) {
        warn!("workers index every flow with the software hash: {why}");
    }
    Ok(active)
}

/// Turns the NIC hash off on every port unless all ports that deliver it run
/// the same driver: a driver makes the Toeplitz input symmetric its own way
/// (XORs the two endpoints, or puts them in order) over its own fields, so in
/// inline mode the two directions of a flow, hashed by two drivers, could get
/// two hashes.
/// Returns why it turned it off.
fn one_driver_for_nic_hash(active: &mut [ActivePort], drivers: &[&str]) -> Option<String> {
    let mut with_hash = active
        .iter()
        .zip(drivers)
        .filter(|(p, _)| p.nic_flow_hash)
        .map(|(_, d)| *d);
    let first = with_hash.next()?;
    let other = with_hash.find(|d| *d != first)?;
    for p in active.iter_mut() {
        p.nic_flow_hash = false;
    }
    Some(format!(
        "drivers {first} and {other} both deliver a symmetric hash, but not necessarily the same one"
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(nic: &[bool]) -> Vec<ActivePort> {
        nic.iter()
            .enumerate()
            .map(|(i, &nic_flow_hash)| ActivePort {
                id: i as u16,
                rx_queues: 1,
                nic_flow_hash,
            })
            .collect()
    }

    fn nic(active: &[ActivePort]) -> Vec<bool> {
        active.iter().map(|p| p.nic_flow_hash).collect()
    }

    #[test]
    fn the_nic_hash_stays_on_only_where_one_driver_computes_it() {
        let mut same = ports(&[true, true]);
        assert_eq!(
            one_driver_for_nic_hash(&mut same, &["net_ice", "net_ice"]),
            None
        );
        assert_eq!(nic(&same), [true, true]);

        let mut mixed = ports(&[true, true]);
        let why = one_driver_for_nic_hash(&mut mixed, &["net_i40e", "net_ice"]);
        assert!(why.is_some_and(|w| w.contains("net_i40e") && w.contains("net_ice")));
        assert_eq!(nic(&mixed), [false, false]);

        // A port without the NIC hash does not count: its workers already
        // fall back (Poll::nic_hash), the others keep it.
        let mut partial = ports(&[true, false]);
        assert_eq!(
            one_driver_for_nic_hash(&mut partial, &["net_ice", "net_pcap"]),
            None
        );
        assert_eq!(nic(&partial), [true, false]);
    }
}
