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
/* Creates (after rte_flow_validate) an rte_flow rule on every packet of
 * `port`: RSS over queues 0..nb_queues with the symmetric Toeplitz hash
 * function, `types` and `key`. 0, or a negative errno with the PMD's reason
 * written to msg. In C: the rule is nested structs of pointers and enums. */
int btb_symmetric_rss_rule(uint16_t port, uint64_t types, const uint8_t *key,
                           uint32_t key_len, uint16_t nb_queues, char *msg,
                           size_t msg_len);
