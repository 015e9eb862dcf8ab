//! Every input through every link type: the parsers must never panic, and
//! whatever they accept must describe bytes inside the input.
#![no_main]

use btblocker::wire::{parse_link, Fragment, LinkType, Parsed, L4};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for link in LinkType::ALL {
        let Ok(Parsed::Ip(packet)) = parse_link(link, data) else {
            continue;
        };
        assert!(packet.vlan_tags <= 2);
        assert!(usize::from(packet.ip_payload_len) <= data.len());
        if packet.fragment == Fragment::NonFirst {
            assert!(matches!(packet.l4, L4::Other { .. }));
        }
        if let L4::Tcp { payload, .. } | L4::Udp { payload, .. } = packet.l4 {
            let bounds = data.as_ptr_range();
            let at = payload.as_ptr_range();
            assert!(bounds.start <= at.start && at.end <= bounds.end);
            assert!(payload.len() <= usize::from(packet.ip_payload_len));
        }
    }
});
