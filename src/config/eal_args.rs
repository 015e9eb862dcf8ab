//! The EAL command line a validated [`Config`] starts DPDK with.
use super::names::PciAddress;
use super::Config;

impl Config {
    /// EAL argv (without `argv[0]`) for `rte_eal_init`.
    pub fn eal_args(&self) -> Vec<String> {
        let eal = &self.eal;
        let pipeline = &self.pipeline;
        let mut args: Vec<String> = Vec::new();

        match &eal.lcores {
            Some(map) => args.extend(["--lcores".to_owned(), map.clone()]),
            None => {
                let lcores: Vec<String> = std::iter::once(pipeline.control_lcore)
                    .chain(pipeline.worker_lcores.iter().copied())
                    .map(|l| l.to_string())
                    .collect();
                args.extend(["-l".to_owned(), lcores.join(",")]);
            }
        }
        args.extend([
            "--main-lcore".to_owned(),
            pipeline.control_lcore.to_string(),
        ]);
        args.extend(["-m".to_owned(), eal.memory_mb.to_string()]);
        if !eal.hugepages {
            args.push("--no-huge".to_owned());
        }
        if let Some(prefix) = &eal.file_prefix {
            args.extend(["--file-prefix".to_owned(), prefix.clone()]);
        }

        // With no -a at all EAL would probe and grab every NIC in the box.
        let pci_ports = self.ports.iter().filter(|p| p.is_pci());
        let mut allowed: Vec<(PciAddress, &str)> = Vec::new();
        for addr in eal.pci_allow.iter().chain(pci_ports.map(|p| &p.device)) {
            if let Some(parsed) = PciAddress::parse(addr) {
                // The same device written twice (03:00.0 and 0000:03:00.0)
                // is one -a: EAL refuses a device allowed twice.
                if !allowed.iter().any(|(seen, _)| *seen == parsed) {
                    allowed.push((parsed, addr));
                }
            }
        }
        if allowed.is_empty() {
            args.push("--no-pci".to_owned());
        }
        for (_, addr) in allowed {
            args.extend(["-a".to_owned(), addr.to_owned()]);
        }

        let port_vdevs = self.ports.iter().filter(|p| !p.is_pci()).map(|p| &p.device);
        for vdev in port_vdevs.chain(&eal.vdevs) {
            args.extend(["--vdev".to_owned(), vdev.clone()]);
        }
        args.extend(eal.extra_args.iter().cloned());
        args
    }
}
