//! Syntax of the names handed to EAL: PCI addresses, vdev strings, the
//! file prefix. Checked here so that EAL never sees a malformed argument.

/// A PCI address `DDDD:BB:DD.F` (or `BB:DD.F`, domain 0), as EAL's `-a`
/// takes it. Compared by value, so `03:00.0` equals `0000:03:00.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PciAddress {
    domain: u16,
    bus: u8,
    device: u8,
    function: u8,
}

impl PciAddress {
    pub(super) fn parse(text: &str) -> Option<PciAddress> {
        let (rest, function) = text.split_once('.')?;
        let mut fields = rest.split(':');
        let (domain, bus, device) = match (fields.next(), fields.next(), fields.next()) {
            (Some(bus), Some(device), None) => ("0000", bus, device),
            (Some(domain), Some(bus), Some(device)) => (domain, bus, device),
            _ => return None,
        };
        if fields.next().is_some() {
            return None;
        }
        let domain = u16::try_from(hex_exact(domain, 4)?).ok()?;
        let bus = u8::try_from(hex_exact(bus, 2)?).ok()?;
        let device = u8::try_from(hex_exact(device, 2)?).ok()?;
        let function = u8::try_from(hex_exact(function, 1)?).ok()?;
        // 5 bits of device and 3 of function in the PCI routing ID.
        (device <= 0x1f && function <= 7).then_some(PciAddress {
            domain,
            bus,
            device,
            function,
        })
    }
}

/// `text` as a hex number of exactly `digits` digits.
fn hex_exact(text: &str, digits: usize) -> Option<u32> {
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// What a PCI address looks like, for error messages.
pub(super) const PCI_FORM: &str = "DDDD:BB:DD.F or BB:DD.F";

/// The device name DPDK uses: a PCI address as written, or a vdev's driver
/// instance (the part before the first comma).
pub(super) fn dpdk_name(device: &str) -> &str {
    device.split(',').next().unwrap_or(device)
}

/// Checks a vdev string `<driver><N>[,key=value…]`. The driver must be one
/// DPDK registers as a virtual net device: `net_*`, the legacy `eth_*`
/// aliases, or `virtio_user<N>`. Returns the problem, worded for a message.
pub(super) fn check_vdev(vdev: &str) -> Result<(), String> {
    let mut parts = vdev.split(',');
    let name = parts.next().unwrap_or_default();
    if !is_vdev_name(name) {
        return Err(format!(
            "`{}` is neither a PCI address ({PCI_FORM}) nor a vdev named net_*, eth_* or \
             virtio_user<N> with optional ,key=value arguments",
            vdev.escape_debug()
        ));
    }
    for arg in parts {
        let well_formed = arg
            .split_once('=')
            .is_some_and(|(key, value)| is_word(key) && !value.is_empty());
        if !well_formed {
            return Err(format!(
                "vdev argument `{}` is not key=value",
                arg.escape_debug()
            ));
        }
    }
    Ok(())
}

fn is_vdev_name(name: &str) -> bool {
    if !is_word(name) {
        return false;
    }
    if let Some(instance) = name.strip_prefix("virtio_user") {
        return !instance.is_empty() && instance.bytes().all(|b| b.is_ascii_digit());
    }
    ["net_", "eth_"].iter().any(|prefix| {
        name.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty())
    })
}

/// `[A-Za-z0-9_]+`
fn is_word(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `[A-Za-z0-9_-]+`: EAL builds runtime file paths from the prefix.
pub(crate) fn is_file_prefix(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pci(domain: u16, bus: u8, device: u8, function: u8) -> Option<PciAddress> {
        Some(PciAddress {
            domain,
            bus,
            device,
            function,
        })
    }

    #[test]
    fn pci_addresses_parse_in_both_forms() {
        assert_eq!(PciAddress::parse("0000:03:00.0"), pci(0, 3, 0, 0));
        assert_eq!(PciAddress::parse("03:00.0"), pci(0, 3, 0, 0));
        assert_eq!(
            PciAddress::parse("abcd:Ff:1f.7"),
            pci(0xabcd, 0xff, 0x1f, 7)
        );
        assert_eq!(
            PciAddress::parse("03:00.1"),
            PciAddress::parse("0000:03:00.1")
        );
    }

    #[test]
    fn malformed_pci_addresses_are_rejected() {
        for bad in [
            "",
            "03:00",
            "3:00.0",
            "003:00.0",
            "0000:03:20.0",
            "0000:03:00.8",
            "0000:03:00.10",
            "00000:03:00.0",
            "0:0000:03:00.0",
            "0000:03:00.0.0",
            "0000:0g:00.0",
            "+0:00.0",
            "net_pcap0",
            "ée:00.0",
        ] {
            assert_eq!(PciAddress::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn vdev_names_follow_dpdk_drivers() {
        for good in [
            "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap",
            "net_ring0",
            "eth_pcap1,iface=eth0",
            "virtio_user0,path=/dev/vhost-net,queues=2",
        ] {
            assert_eq!(check_vdev(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "pcap0",
            "net_",
            "virtio_user",
            "virtio_userx",
            "net-pcap0",
            "net_pcap0 ",
        ] {
            assert!(
                check_vdev(bad).unwrap_err().contains("neither a PCI"),
                "{bad}"
            );
        }
        assert_eq!(
            check_vdev("net_pcap0,rx_pcap"),
            Err("vdev argument `rx_pcap` is not key=value".to_owned())
        );
        assert_eq!(
            check_vdev("net_pcap0,rx_pcap="),
            Err("vdev argument `rx_pcap=` is not key=value".to_owned())
        );
        assert_eq!(
            check_vdev("net_pcap0,,a=b"),
            Err("vdev argument `` is not key=value".to_owned())
        );
    }

    #[test]
    fn dpdk_name_is_the_part_before_the_first_comma() {
        assert_eq!(dpdk_name("net_pcap0,rx_pcap=a,tx_pcap=b"), "net_pcap0");
        assert_eq!(dpdk_name("0000:03:00.0"), "0000:03:00.0");
    }

    #[test]
    fn file_prefixes_are_path_safe() {
        assert!(is_file_prefix("btblocker-2_a"));
        assert!(!is_file_prefix(""));
        assert!(!is_file_prefix("../x"));
        assert!(!is_file_prefix("a b"));
    }
}
