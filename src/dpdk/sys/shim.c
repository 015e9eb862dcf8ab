/* What bindgen cannot express: macros and thread-local state. */
#include "wrapper.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <rte_flow.h>

int btb_errno(void) { return rte_errno; }

uint64_t btb_rss_hf_ip_tcp_udp(void) {
    return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
}

uint64_t btb_rx_offload_rss_hash(void) {
    return RTE_ETH_RX_OFFLOAD_RSS_HASH;
}

int btb_symmetric_rss_rule(uint16_t port, uint64_t types, const uint8_t *key,
                           uint32_t key_len, uint16_t nb_queues, char *msg,
                           size_t msg_len) {
    /* An empty pattern matches every packet the port receives: every hash
     * it delivers then comes from this function, none from the port's key. */
    const struct rte_flow_attr attr = {.ingress = 1};
    const struct rte_flow_item pattern[] = {{.type = RTE_FLOW_ITEM_TYPE_END}};
    uint16_t queues[RTE_MAX_QUEUES_PER_PORT];
    struct rte_flow_error err;
    int rc;

    if (nb_queues == 0 || nb_queues > RTE_MAX_QUEUES_PER_PORT) {
        snprintf(msg, msg_len, "%u queues", nb_queues);
        return -EINVAL;
    }
    for (uint16_t q = 0; q < nb_queues; q++)
        queues[q] = q;
    const struct rte_flow_action_rss rss = {
        .func = RTE_ETH_HASH_FUNCTION_SYMMETRIC_TOEPLITZ,
        .level = 0,
        .types = types,
        .key_len = key_len,
        .key = key,
        .queue_num = nb_queues,
        .queue = queues,
    };
    const struct rte_flow_action actions[] = {
        {.type = RTE_FLOW_ACTION_TYPE_RSS, .conf = &rss},
        {.type = RTE_FLOW_ACTION_TYPE_END},
    };
    memset(&err, 0, sizeof(err));
    rc = rte_flow_validate(port, &attr, pattern, actions, &err);
    if (rc == 0 && rte_flow_create(port, &attr, pattern, actions, &err) == NULL)
        rc = -(rte_errno ? rte_errno : EINVAL);
    if (rc != 0)
        snprintf(msg, msg_len, "%s (%s)",
                 err.message ? err.message : "no reason given",
                 rte_strerror(-rc));
    return rc;
}
