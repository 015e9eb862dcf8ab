//! The `ports` section: the NICs or vdevs the dataplane polls, their queues,
//! and which port forwards to which.
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::field::{int_in, invalid, line, missing};
use super::names::{check_vdev, dpdk_name, PciAddress};
use super::{ConfigError, EalConfig, Mode, PipelineConfig, PortConfig, PortRole};
use crate::dataplane::counters::MAX_PORTS;

const DEFAULT_DESCRIPTORS: u16 = 1024;
const MIN_DESCRIPTORS: i64 = 64;
const MAX_DESCRIPTORS: i64 = 16384;

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawRole {
    Inside,
    Outside,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPort {
    name: Option<Spanned<String>>,
    device: Option<Spanned<String>>,
    role: Option<Spanned<RawRole>>,
    rx_queues: Option<Spanned<i64>>,
    tx_queues: Option<Spanned<i64>>,
    rx_descriptors: Option<Spanned<i64>>,
    tx_descriptors: Option<Spanned<i64>>,
    peer: Option<Spanned<String>>,
}

/// A port's device as DPDK will see it, for the uniqueness check.
#[derive(PartialEq, Eq)]
enum DeviceId<'a> {
    Pci(PciAddress),
    Vdev(&'a str),
}

/// `root_line` places a missing `ports`; `eal` and `pipeline` are valid.
pub(super) fn validate(
    raw: Option<Spanned<Vec<Spanned<RawPort>>>>,
    root_line: Option<u64>,
    eal: &EalConfig,
    pipeline: &PipelineConfig,
) -> Result<Vec<PortConfig>, ConfigError> {
    let Some(raw) = raw else {
        return Err(missing("ports", root_line));
    };
    if raw.value.is_empty() || raw.value.len() > MAX_PORTS {
        let problem = format!(
            "must list 1 to {MAX_PORTS} ports, found {}",
            raw.value.len()
        );
        return Err(invalid("ports", &raw, problem));
    }

    let mut ports = Vec::with_capacity(raw.value.len());
    let mut devices: Vec<DeviceId> = Vec::with_capacity(raw.value.len());
    for (i, port) in raw.value.iter().enumerate() {
        let checked = validate_port(i, port, eal, pipeline)?;
        let (config, name, device) = (checked.config, checked.name, checked.device);
        if let Some(other) = ports
            .iter()
            .position(|p: &PortConfig| p.name == config.name)
        {
            let problem = format!("{:?} is already the name of ports[{other}]", config.name);
            return Err(invalid(&format!("ports[{i}].name"), name, problem));
        }
        let id = match PciAddress::parse(&device.value) {
            Some(addr) => DeviceId::Pci(addr),
            None => DeviceId::Vdev(dpdk_name(&device.value)),
        };
        if let Some(other) = devices.iter().position(|d| *d == id) {
            let problem = format!(
                "{:?} is already the device of ports[{other}]",
                dpdk_name(&device.value)
            );
            return Err(invalid(&format!("ports[{i}].device"), device, problem));
        }
        devices.push(id);
        ports.push(config);
    }

    resolve_peers(&raw.value, &mut ports, pipeline.mode)?;
    Ok(ports)
}

/// A port that is valid on its own, with the raw values the cross-port
/// checks (unique names and devices) point at.
struct CheckedPort<'a> {
    config: PortConfig,
    name: &'a Spanned<String>,
    device: &'a Spanned<String>,
}

/// One port on its own; its peer is resolved later, with all ports known.
fn validate_port<'a>(
    i: usize,
    port: &'a Spanned<RawPort>,
    eal: &EalConfig,
    pipeline: &PipelineConfig,
) -> Result<CheckedPort<'a>, ConfigError> {
    let key = |field: &str| format!("ports[{i}].{field}");
    let raw = &port.value;

    let name = raw
        .name
        .as_ref()
        .ok_or_else(|| missing(&key("name"), line(port)))?;
    if name.value.is_empty() {
        return Err(invalid(&key("name"), name, "must not be empty"));
    }

    let device = raw
        .device
        .as_ref()
        .ok_or_else(|| missing(&key("device"), line(port)))?;
    if PciAddress::parse(&device.value).is_none() {
        check_vdev(&device.value).map_err(|p| invalid(&key("device"), device, p))?;
        let name = dpdk_name(&device.value);
        if eal.vdevs.iter().any(|v| dpdk_name(v) == name) {
            let problem = format!(
                "{name:?} is also in eal.vdevs; a port's device is passed to EAL already, \
                 remove it from eal.vdevs"
            );
            return Err(invalid(&key("device"), device, problem));
        }
    }

    let role = match raw.role.as_ref().map(|r| r.value) {
        None => return Err(missing(&key("role"), line(port))),
        Some(RawRole::Inside) => PortRole::Inside,
        Some(RawRole::Outside) => PortRole::Outside,
    };

    // Each worker polls its own RX queue and owns its own TX queue on every
    // port, so nothing is shared between workers on the hot path.
    let workers = pipeline.worker_lcores.len();
    let rx_queues = queues(
        &key("rx_queues"),
        raw.rx_queues.as_ref(),
        workers,
        "polls one RX",
    )?;
    let tx_queues = queues(
        &key("tx_queues"),
        raw.tx_queues.as_ref(),
        workers,
        "owns one TX",
    )?;

    let rx_descriptors = descriptors(&key("rx_descriptors"), raw.rx_descriptors.as_ref())?;
    let tx_descriptors = descriptors(&key("tx_descriptors"), raw.tx_descriptors.as_ref())?;

    let config = PortConfig {
        name: name.value.clone(),
        device: device.value.clone(),
        role,
        rx_queues,
        tx_queues,
        rx_descriptors,
        tx_descriptors,
        peer: i,
    };
    Ok(CheckedPort {
        config,
        name,
        device,
    })
}

/// The queue count: the number of workers, which is also the only value
/// accepted when it is given.
fn queues(
    key: &str,
    value: Option<&Spanned<i64>>,
    workers: usize,
    what_each_worker_does: &str,
) -> Result<u16, ConfigError> {
    // At most MAX_LCORE workers, so this always fits.
    let workers = u16::try_from(workers).unwrap_or(u16::MAX);
    let Some(value) = value else {
        return Ok(workers);
    };
    let given: u16 = int_in(key, value, 1, i64::from(u16::MAX))?;
    if given != workers {
        let problem = format!(
            "must equal the number of worker lcores ({workers}): each worker \
             {what_each_worker_does} queue per port"
        );
        return Err(invalid(key, value, problem));
    }
    Ok(given)
}

fn descriptors(key: &str, value: Option<&Spanned<i64>>) -> Result<u16, ConfigError> {
    let Some(value) = value else {
        return Ok(DEFAULT_DESCRIPTORS);
    };
    match u16::try_from(value.value) {
        Ok(n)
            if (MIN_DESCRIPTORS..=MAX_DESCRIPTORS).contains(&i64::from(n))
                && n.is_power_of_two() =>
        {
            Ok(n)
        }
        _ => Err(invalid(
            key,
            value,
            format!("must be a power of two in {MIN_DESCRIPTORS}..={MAX_DESCRIPTORS}"),
        )),
    }
}

/// Fills `PortConfig::peer`. Explicit peers must name a port; the defaults
/// are the port itself (one port, or any number in monitor mode where nothing
/// is forwarded) and the other port (two ports). With more than two ports in
/// inline mode the pairing is not guessable, so every port must name it.
/// Peers must be mutual: the workers forward a's packets out of b and b's out
/// of a, one pair of queues per direction.
fn resolve_peers(
    raw: &[Spanned<RawPort>],
    ports: &mut [PortConfig],
    mode: Mode,
) -> Result<(), ConfigError> {
    let count = ports.len();
    for (i, port) in raw.iter().enumerate() {
        let key = format!("ports[{i}].peer");
        let peer = match &port.value.peer {
            Some(name) => ports
                .iter()
                .position(|p| p.name == name.value)
                .ok_or_else(|| invalid(&key, name, format!("no port is named {:?}", name.value)))?,
            None if count == 1 || mode == Mode::Monitor => i,
            None if count == 2 => 1 - i,
            None => {
                let problem = format!(
                    "required in inline mode when there are more than 2 ports ({count} here)"
                );
                return Err(invalid(&key, port, problem));
            }
        };
        if let Some(p) = ports.get_mut(i) {
            p.peer = peer;
        }
    }

    for (i, port) in raw.iter().enumerate() {
        let peer = ports.get(i).map_or(i, |p| p.peer);
        let back = ports.get(peer).map_or(peer, |p| p.peer);
        if back == i {
            continue;
        }
        let name = |n: usize| ports.get(n).map_or("?", |p| p.name.as_str());
        let problem = format!(
            "peers must be mutual: {:?} forwards to {:?}, which forwards to {:?}",
            name(i),
            name(peer),
            name(back)
        );
        // Blame the peer that was written down; a default cannot be wrong
        // on its own.
        return Err(
            match (
                &port.value.peer,
                raw.get(peer).and_then(|p| p.value.peer.as_ref()),
            ) {
                (Some(own), _) => invalid(&format!("ports[{i}].peer"), own, problem),
                (None, Some(theirs)) => invalid(&format!("ports[{peer}].peer"), theirs, problem),
                (None, None) => invalid(&format!("ports[{i}].peer"), port, problem),
            },
        );
    }
    Ok(())
}
