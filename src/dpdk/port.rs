//! Ethernet ports: lookup, configuration with symmetric RSS, start/stop, stats.
use std::ffi::{CStr, CString};

use super::mempool::Mempool;
use super::rss::{FLOW_HASH_KEY, SYMMETRIC_QUEUE_KEY};
use super::{ffi, DpdkError};
use crate::dataplane::counters::HwPortStats;

pub use super::rss::FlowHash;

/// What DPDK says about a port, read before configuring it.
pub struct PortInfo {
    pub id: u16,
    pub driver: String,
    pub socket: i32,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub rss_offloads: u64,
    pub rss_key_size: u8,
    /// RX offloads the PMD can do (`RTE_ETH_RX_OFFLOAD_*`).
    pub rx_offloads: u64,
}

/// How a port was set up.
pub struct PortSetup {
    pub rx_queues: u16,
    pub tx_queues: u16,
    /// RSS with the symmetric 0x6d5a key spreads flows over the RX queues,
    /// both directions of a flow to the same queue.
    pub rss: bool,
    /// The hash the workers index this port's flows with.
    pub flow_hash: FlowHash,
}

/// Finds a probed port by its device name (PCI address or vdev name).
pub fn find_by_name(name: &str) -> Result<u16, DpdkError> {
    let cname = CString::new(name).map_err(|_| DpdkError {
        call: "rte_eth_dev_get_port_by_name".into(),
        reason: format!("{name:?} contains a NUL byte"),
    })?;
    let mut id: u16 = 0;
    // SAFETY: cname is a valid C string and `id` a valid out-pointer for the call.
    let rc = unsafe { ffi::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
    if rc != 0 {
        return Err(DpdkError {
            call: format!("rte_eth_dev_get_port_by_name({name})"),
            reason: format!(
                "DPDK has no port named {name:?} (probed ports: {})",
                probed_names().join(", ")
            ),
        });
    }
    Ok(id)
}

/// Names of every port DPDK probed, for error messages.
fn probed_names() -> Vec<String> {
    let mut names = Vec::new();
    for id in 0..ffi::RTE_MAX_ETHPORTS as u16 {
        // SAFETY: a bounds-checked lookup that accepts any id.
        if unsafe { ffi::rte_eth_dev_is_valid_port(id) } == 0 {
            continue;
        }
        let mut buf = [0 as std::ffi::c_char; 64];
        // SAFETY: buf is 64 bytes (RTE_ETH_NAME_MAX_LEN); DPDK writes a
        // NUL-terminated name for valid ids and returns an error otherwise.
        let rc = unsafe { ffi::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) };
        if rc == 0 {
            // SAFETY: on success buf holds a NUL-terminated string.
            names.push(
                unsafe { CStr::from_ptr(buf.as_ptr()) }
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    if names.is_empty() {
        names.push("none".into());
    }
    names
}

pub fn info(id: u16) -> Result<PortInfo, DpdkError> {
    let mut di = ffi::rte_eth_dev_info::default();
    // SAFETY: di is a valid, zeroed out-struct for the call.
    let rc = unsafe { ffi::rte_eth_dev_info_get(id, &mut di) };
    if rc != 0 {
        return Err(DpdkError::from_code(
            format!("rte_eth_dev_info_get(port {id})"),
            rc,
        ));
    }
    let driver = if di.driver_name.is_null() {
        "unknown".to_string()
    } else {
        // SAFETY: driver_name points to the driver's static NUL-terminated name.
        unsafe { CStr::from_ptr(di.driver_name) }
            .to_string_lossy()
            .into_owned()
    };
    // SAFETY: a plain lookup; returns SOCKET_ID_ANY (-1) when unknown.
    let socket = unsafe { ffi::rte_eth_dev_socket_id(id) };
    Ok(PortInfo {
        id,
        driver,
        socket,
        max_rx_queues: di.max_rx_queues,
        max_tx_queues: di.max_tx_queues,
        rss_offloads: di.flow_type_rss_offloads,
        rss_key_size: di.hash_key_size,
        rx_offloads: di.rx_offload_capa,
    })
}

/// Configures `queues` RX and TX queue pairs on a port and starts it. RSS with
/// the symmetric key is enabled wherever the PMD offers it, even on one queue;
/// then the symmetric-Toeplitz flow rule is asked for, whose hash (delivered
/// in each mbuf) saves the worker hashing the flow key (see [`FlowHash`]).
pub fn configure_and_start(
    info: &PortInfo,
    rx_queues: u16,
    tx_queues: u16,
    rx_desc: u16,
    tx_desc: u16,
    pool: &Mempool,
) -> Result<PortSetup, DpdkError> {
    let id = info.id;
    // SAFETY: returns a constant computed from DPDK's RTE_ETH_RSS_* macros.
    let wanted_hf = unsafe { ffi::btb_rss_hf_ip_tcp_udp() };
    let hf = wanted_hf & info.rss_offloads;
    let rss = hf != 0;
    let mut key = SYMMETRIC_QUEUE_KEY;
    let mut conf = ffi::rte_eth_conf::default();
    if rss {
        conf.rxmode.mq_mode = ffi::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
        // PMDs take 40 (most Intel) or 52 bytes; 0 means "keep the default".
        let len = match info.rss_key_size {
            0 => 40,
            n => n.min(52),
        };
        conf.rx_adv_conf.rss_conf.rss_key_len = len;
        conf.rx_adv_conf.rss_conf.rss_hf = hf;
        // SAFETY: returns a constant (an RTE_BIT64 macro bindgen drops).
        let rss_hash = unsafe { ffi::btb_rx_offload_rss_hash() };
        // Most PMDs deliver the hash whenever RSS is on; those that list the
        // offload want it asked for.
        conf.rxmode.offloads |= rss_hash & info.rx_offloads;
    }
    // SAFETY: conf (and the key it points to) is valid for the call; DPDK copies it.
    let rc = unsafe { ffi::rte_eth_dev_configure(id, rx_queues, tx_queues, &conf) };
    if rc != 0 {
        return Err(DpdkError::from_code(
            format!("rte_eth_dev_configure(port {id}, {rx_queues} rx, {tx_queues} tx)"),
            rc,
        ));
    }
    let (mut nb_rxd, mut nb_txd) = (rx_desc, tx_desc);
    // SAFETY: valid out-pointers; DPDK clamps them to the device's limits.
    let rc = unsafe { ffi::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nb_rxd, &mut nb_txd) };
    if rc != 0 {
        return Err(DpdkError::from_code(
            format!("rte_eth_dev_adjust_nb_rx_tx_desc(port {id})"),
            rc,
        ));
    }
    let socket = if info.socket < 0 {
        0
    } else {
        info.socket as u32
    };
    for q in 0..rx_queues {
        // SAFETY: the port is configured with rx_queues queues; a null rx_conf
        // means the driver's defaults; pool is a live pktmbuf pool.
        let rc = unsafe {
            ffi::rte_eth_rx_queue_setup(id, q, nb_rxd, socket, std::ptr::null(), pool.raw)
        };
        if rc != 0 {
            return Err(DpdkError::from_code(
                format!("rte_eth_rx_queue_setup(port {id}, queue {q})"),
                rc,
            ));
        }
    }
    for q in 0..tx_queues {
        // SAFETY: as above, with the driver's default tx_conf.
        let rc = unsafe { ffi::rte_eth_tx_queue_setup(id, q, nb_txd, socket, std::ptr::null()) };
        if rc != 0 {
            return Err(DpdkError::from_code(
                format!("rte_eth_tx_queue_setup(port {id}, queue {q})"),
                rc,
            ));
        }
    }
    // SAFETY: every queue is set up.
    let rc = unsafe { ffi::rte_eth_dev_start(id) };
    if rc != 0 {
        return Err(DpdkError::from_code(
            format!("rte_eth_dev_start(port {id})"),
            rc,
        ));
    }
    let flow_hash = FlowHash::decide(if rss { hf } else { 0 }, || {
        symmetric_rss_rule(id, hf, info.rss_key_size, rx_queues)
    });
    // A bump in the wire must see every frame, not only those for its own MAC.
    // Virtual devices may not support it; that is not an error.
    // SAFETY: the port is started.
    unsafe {
        ffi::rte_eth_promiscuous_enable(id);
    }
    Ok(PortSetup {
        rx_queues,
        tx_queues,
        rss,
        flow_hash,
    })
}

/// Asks the PMD for RSS with the symmetric Toeplitz hash function on every
/// packet of started port `id`, over its `rx_queues` queues, keyed with
/// [`FLOW_HASH_KEY`] (its first `key_size` bytes; 40 when the PMD does not
/// say). Err: the PMD's reason.
fn symmetric_rss_rule(id: u16, types: u64, key_size: u8, rx_queues: u16) -> Result<(), String> {
    let key_len = match key_size {
        0 => 40,
        n => usize::from(n).min(FLOW_HASH_KEY.len()),
    };
    let mut msg = [0 as std::ffi::c_char; 160];
    // SAFETY: key points to key_len readable bytes and msg to msg.len()
    // writable ones, both valid for the call (DPDK copies the rule); the
    // port is started.
    let rc = unsafe {
        ffi::btb_symmetric_rss_rule(
            id,
            types,
            FLOW_HASH_KEY.as_ptr(),
            key_len as u32,
            rx_queues,
            msg.as_mut_ptr(),
            msg.len(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    // SAFETY: the shim NUL-terminates msg (snprintf) whenever rc != 0; msg is
    // zeroed besides, so it holds a NUL even if it wrote nothing.
    let why = unsafe { CStr::from_ptr(msg.as_ptr()) };
    Err(why.to_string_lossy().into_owned())
}

/// The driver's counters for port `id` (all 0 if it cannot say).
pub fn stats(id: u16) -> HwPortStats {
    let mut s = ffi::rte_eth_stats::default();
    // SAFETY: s is a valid out-struct.
    let rc = unsafe { ffi::rte_eth_stats_get(id, &mut s) };
    if rc != 0 {
        return HwPortStats::default();
    }
    HwPortStats {
        ipackets: s.ipackets,
        opackets: s.opackets,
        imissed: s.imissed,
        ierrors: s.ierrors,
        oerrors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    }
}

/// Whether a started port reports its link up (net_vhost: once the virtio
/// side has set up its rings).
pub fn link_up(id: u16) -> bool {
    let mut link = ffi::rte_eth_link::default();
    // SAFETY: link is a valid out-struct; the port is started.
    let rc = unsafe { ffi::rte_eth_link_get_nowait(id, &mut link) };
    rc == 0 && link.link_status() != 0
}

/// Stops and closes a port (flushes what a PMD buffers, e.g. net_pcap's output file).
pub fn stop_and_close(id: u16) -> Result<(), DpdkError> {
    // SAFETY: called on the control lcore after every worker has returned, so no
    // queue of this port is in use.
    let rc = unsafe { ffi::rte_eth_dev_stop(id) };
    if rc != 0 {
        return Err(DpdkError::from_code(
            format!("rte_eth_dev_stop(port {id})"),
            rc,
        ));
    }
    // SAFETY: the port is stopped and no longer used by anyone.
    let rc = unsafe { ffi::rte_eth_dev_close(id) };
    if rc != 0 {
        return Err(DpdkError::from_code(
            format!("rte_eth_dev_close(port {id})"),
            rc,
        ));
    }
    Ok(())
}
