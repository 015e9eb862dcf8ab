//! Bans beyond the box, on real daemons (issue 14's "Done when"): three
//! network namespaces made by `scripts/bgp-lab.sh` (BIRD 2 as the router and
//! iBGP route reflector, a gobgpd per box), two `btblocker run` daemons A and
//! B each talking to its own gobgpd over the gRPC Unix socket.
//!
//! - `lab_plumbing_with_the_gobgp_cli`: the lab alone, driven with the gobgp
//!   CLI: what the router must accept, reject, install in its kernel and
//!   reflect; what a session flap and a speaker restart do to the routes.
//! - the others start the real binary with a `bgp:` section (the agreed
//!   schema): A's bans reach the router and B, withdrawals, expiry,
//!   FlowSpec, and the faults (flap, gobgpd restart, kill -9, 10,000 bans).
//!
//! Needs root and bird2 + gobgpd (scripts/install-deps.sh): otherwise each
//! test prints why and passes without asserting. The binary tests also skip
//! (saying so) while the binary does not know the `bgp:` section yet.
#![cfg(feature = "dpdk")]

mod common;
#[path = "common/bgp_lab.rs"]
mod lab;

use std::time::Duration;

use lab::*;

/// The communities the lab's router requires (RFC 7999 BLACKHOLE) plus no-export,
/// as BIRD prints them.
const BIRD_COMMUNITIES: &str = "(65535,666) (65535,65281)";

macro_rules! skip_without_lab {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
}

#[test]
fn lab_plumbing_with_the_gobgp_cli() {
    skip_without_lab!();
    let lab = Lab::up();
    let a = BoxId::A;
    let b = BoxId::B;
    // What a box announces: a host route per address family with the
    // communities and the large communities (expiry, box id), plus what the
    // router's import filter must refuse: a /24, and a /32 without the community.
    lab.gobgp(a, &["global", "rib", "add", "203.0.113.7/32", "nexthop", "192.0.2.1",
        "community", "65535:666,no-export", "large-community", "65001:1:1999999999,65001:2:1"]);
    lab.gobgp(a, &["global", "rib", "-a", "ipv6", "add", "2001:db8::7/128", "nexthop", "100::1",
        "community", "65535:666,no-export", "large-community", "65001:1:1999999999,65001:2:1"]);
    lab.gobgp(a, &["global", "rib", "add", "198.51.100.0/24", "nexthop", "192.0.2.1",
        "community", "65535:666"]);
    lab.gobgp(a, &["global", "rib", "add", "198.51.100.9/32", "nexthop", "192.0.2.1"]);
    lab.gobgp(a, &["global", "rib", "-a", "ipv4-flowspec", "add", "match", "source",
        "203.0.113.8/32", "then", "discard"]);
    lab.gobgp(a, &["global", "rib", "-a", "ipv6-flowspec", "add", "match", "source",
        "2001:db8::8/128", "then", "discard"]);

    let took = poll_eq("the router's RIB", LAB_GUARD, &set(&["203.0.113.7/32"]), || {
        nets(&lab.bird_routes("master4"))
    });
    eprintln!("203.0.113.7/32 in the router's RIB after {took:?}");
    let r4 = &lab.bird_routes("master4")["203.0.113.7/32"];
    assert_eq!(r4.from, "box_a");
    assert_eq!(r4.kind, "blackhole", "resolved through the static discard route");
    assert_eq!(r4.next_hop, "192.0.2.1");
    assert_eq!(r4.communities, BIRD_COMMUNITIES);
    assert_eq!(r4.large_communities, "(65001, 1, 1999999999) (65001, 2, 1)");
    poll_eq("the router's IPv6 RIB", LAB_GUARD, &set(&["2001:db8::7/128"]), || {
        nets(&lab.bird_routes("master6"))
    });
    let r6 = &lab.bird_routes("master6")["2001:db8::7/128"];
    assert_eq!(
        (r6.kind.as_str(), r6.next_hop.as_str(), r6.communities.as_str()),
        ("blackhole", "100::1", BIRD_COMMUNITIES)
    );
    poll_eq("flowtab4", LAB_GUARD, &set(&["flow4 { src 203.0.113.8/32; }"]), || {
        nets(&lab.bird_routes("flowtab4"))
    });
    poll_eq("flowtab6", LAB_GUARD, &set(&["flow6 { src 2001:db8::8/128; }"]), || {
        nets(&lab.bird_routes("flowtab6"))
    });
    // Traffic action 0x8006, rate 0: discard (RFC 8955).
    assert_eq!(
        lab.bird_routes("flowtab4")["flow4 { src 203.0.113.8/32; }"].ext_communities,
        "(generic, 0x80060000, 0x0)"
    );
    // The router's forwarding plane: exactly the two tagged host routes.
    let both = set(&["203.0.113.7", "2001:db8::7"]);
    poll_eq("the router's kernel blackholes", LAB_GUARD, &both, || lab.kernel_blackholes());
    // Reflected to box B, communities and all.
    poll_eq("B's RIB", LAB_GUARD, &set(&["203.0.113.7/32"]), || nets(&lab.gobgp_rib(b, "ipv4")));
    poll_eq("B's IPv6 RIB", LAB_GUARD, &set(&["2001:db8::7/128"]), || {
        nets(&lab.gobgp_rib(b, "ipv6"))
    });
    poll_eq("B's FlowSpec RIB", LAB_GUARD, &set(&["[source: 203.0.113.8/32]"]), || {
        nets(&lab.gobgp_rib(b, "ipv4-flowspec"))
    });
    let seen_by_b = lab.gobgp(b, &["global", "rib", "203.0.113.7/32"]);
    assert!(
        seen_by_b.contains("{Communities: blackhole, no-export}")
            && seen_by_b.contains("{LargeCommunity: [ 65001:1:1999999999, 65001:2:1]}")
            && seen_by_b.contains("{Originator: 10.200.0.2}"),
        "{seen_by_b}"
    );

    // The router's session with A flaps: A's routes leave the router and B,
    // then GoBGP re-advertises its RIB by itself once the session is back.
    lab.birdc(&["disable", "box_a"]);
    poll_eq("the router's RIB after A's session went down", LAB_GUARD, &set(&[]), || {
        nets(&lab.bird_routes("master4"))
    });
    poll_eq("B's RIB after A's session went down", LAB_GUARD, &set(&[]), || {
        nets(&lab.gobgp_rib(b, "ipv4"))
    });
    assert_eq!(lab.kernel_blackholes(), set(&[]));
    lab.birdc(&["enable", "box_a"]);
    let took = poll_eq("the RIB after the flap", LAB_GUARD, &set(&["203.0.113.7/32"]), || {
        nets(&lab.bird_routes("master4"))
    });
    eprintln!("A's routes back in the router's RIB {took:?} after the session was enabled");
    poll_eq("blackholes after the flap", LAB_GUARD, &both, || lab.kernel_blackholes());
    poll_eq("B after the flap", LAB_GUARD, &set(&["2001:db8::7/128"]), || {
        nets(&lab.gobgp_rib(b, "ipv6"))
    });

    // Withdrawal reaches the router's RIB, its kernel and B.
    lab.gobgp(a, &["global", "rib", "del", "203.0.113.7/32"]);
    poll_eq("the withdrawal at the router", LAB_GUARD, &set(&[]), || {
        nets(&lab.bird_routes("master4"))
    });
    poll_eq("the withdrawal in the kernel", LAB_GUARD, &set(&["2001:db8::7"]), || {
        lab.kernel_blackholes()
    });
    poll_eq("the withdrawal at B", LAB_GUARD, &set(&[]), || nets(&lab.gobgp_rib(b, "ipv4")));

    // A's speaker restarts: its routes leave the router at once and it comes
    // back with an empty RIB: only the box replaying its bans brings them back.
    lab.stop_speaker(a, "KILL");
    poll_eq("the router after A's gobgpd died", LAB_GUARD, &set(&[]), || {
        nets(&lab.bird_routes("master6"))
    });
    lab.start_speaker(a);
    lab.wait_established();
    assert_eq!(lab.gobgp_rib(a, "ipv6").len(), 0, "a restarted gobgpd holds nothing");
    assert_eq!(lab.bird_count("master4") + lab.bird_count("master6"), 0);
    assert_eq!(lab.bird_count("flowtab4") + lab.bird_count("flowtab6"), 0);
    assert_eq!(lab.kernel_blackholes(), set(&[]));
}
