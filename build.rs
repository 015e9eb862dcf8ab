//! Generates the DPDK bindings when the `dpdk` feature is on.
//!
//! DPDK 22.11 (Debian's libdpdk-dev) is found with pkg-config; bindgen binds the
//! headers we use and wraps DPDK's `static inline` fast path (rx/tx burst, mbuf
//! alloc/free, …) into real symbols compiled with `cc`. The full
//! `pkg-config --cflags` goes to both, so config macros (`-include rte_config.h`)
//! and `-march` agree between the bindings, the wrappers and the libraries.
//! Without the feature nothing here runs: no libclang, no DPDK needed.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "dpdk")]
    dpdk::build();
}

#[cfg(feature = "dpdk")]
mod dpdk {
    use std::env;
    use std::path::PathBuf;
    use std::process::Command;

    const APT_HINT: &str =
        "apt-get install libdpdk-dev dpdk pkg-config libclang-dev libpcap-dev (or build with --no-default-features for the DPDK-free parts)";

    pub(super) fn build() {
        let src =
            PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
                .join("src/dpdk/sys");
        println!("cargo:rerun-if-changed={}", src.display());
        let lib = match pkg_config::Config::new()
            .atleast_version("22.11")
            .probe("libdpdk")
        {
            Ok(lib) => lib,
            Err(e) => {
                let first = e.to_string().lines().next().unwrap_or_default().to_string();
                panic!("btblocker needs DPDK >= 22.11 for the `dpdk` feature ({first}); install it with: {APT_HINT}");
            }
        };
        let cflags = raw_cflags();
        let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
        let wrappers = out.join("static_fns");

        let bindings = bindgen::Builder::default()
            .header(src.join("wrapper.h").to_string_lossy())
            .clang_args(&cflags)
            .clang_arg(format!("-I{}", src.display()))
            .allowlist_function("rte_(eal|eth|pktmbuf|mempool|lcore|socket|strerror|exit|delay|get_tsc|rdtsc|thread|version|telemetry|tel_|dev_).*")
            .allowlist_function("btb_.*")
            // The pipeline bench's in-memory loopback ports (net_ring).
            .allowlist_function("rte_ring_(create|free|count)|rte_eth_from_ring|rte_sys_gettid")
            .allowlist_var("RING_F_(SP_ENQ|SC_DEQ)")
            .allowlist_type("rte_.*")
            .allowlist_var("RTE_.*")
            .opaque_type("rte_arp_ipv4|rte_arp_hdr|rte_gtp_psc_generic_hdr")
            .derive_default(true)
            .generate_comments(false)
            .layout_tests(false)
            .wrap_static_fns(true)
            .wrap_static_fns_path(&wrappers)
            .generate()
            .unwrap_or_else(|e| panic!("bindgen failed on DPDK headers ({e}); is libclang installed? {APT_HINT}"));
        bindings
            .write_to_file(out.join("dpdk_bindings.rs"))
            .expect("write bindings");

        let mut cc = cc::Build::new();
        cc.file(wrappers.with_extension("c"))
            .file(src.join("shim.c"))
            .include(&src)
            .opt_level(3)
            .warnings(false);
        for inc in &lib.include_paths {
            cc.include(inc);
        }
        for flag in &cflags {
            cc.flag(flag);
        }
        cc.compile("btblocker_dpdk_shim");
        // rte_eth_from_ring lives in the net_ring PMD, which pkg-config leaves
        // out (EAL loads PMDs as plugins); the bench's loopback ports call it.
        println!("cargo:rustc-link-lib=rte_net_ring");
    }

    /// The raw `pkg-config --cflags libdpdk`, split into arguments: the pkg-config
    /// crate drops `-include rte_config.h` and `-march`, which must stay.
    fn raw_cflags() -> Vec<String> {
        let out = Command::new("pkg-config")
            .args(["--cflags", "libdpdk"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run pkg-config ({e}): {APT_HINT}"));
        assert!(
            out.status.success(),
            "pkg-config --cflags libdpdk failed: {APT_HINT}"
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut args = Vec::new();
        let mut words = text.split_whitespace();
        while let Some(w) = words.next() {
            if w == "-include" {
                if let Some(file) = words.next() {
                    args.push(format!("-include{file}"));
                }
            } else {
                args.push(w.to_string());
            }
        }
        args
    }
}
