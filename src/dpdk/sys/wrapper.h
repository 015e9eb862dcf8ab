/* The DPDK headers btblocker binds, plus the prototypes of shim.c. */
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_cycles.h>
#include <rte_version.h>
#include <rte_telemetry.h>
#include <rte_ring.h>
#include <rte_eth_ring.h>

/* rte_errno is a per-lcore TLS macro: bindgen cannot bind it. */
int btb_errno(void);
/* RTE_ETH_RSS_* are RTE_BIT64() macros that bindgen drops. */
uint64_t btb_rss_hf_ip_tcp_udp(void);
uint64_t btb_rx_offload_rss_hash(void);
