/* What bindgen cannot express: macros and thread-local state. */
#include "wrapper.h"

int btb_errno(void) { return rte_errno; }

uint64_t btb_rss_hf_ip_tcp_udp(void) {
    return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
}

uint64_t btb_rx_offload_rss_hash(void) {
    return RTE_ETH_RX_OFFLOAD_RSS_HASH;
}
