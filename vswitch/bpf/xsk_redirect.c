// Switchyard's XDP program: steer every frame received on a queue into the AF_XDP
// socket registered for that queue; without one, hand the frame to the kernel.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define GENEVE_PORT 6081

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, __u32);
} xsks_map SEC(".maps");

SEC("xdp.frags")
int switchyard_xsk(struct xdp_md *ctx)
{
    return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

// Underlay trust, enforced before a frame costs the PMD anything: the encap
// IPs of the chassis in the southbound database (vswitchd keeps this map in
// step with it) and this chassis's own encap IP.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, __u32);   // IPv4 address, network byte order
    __type(value, __u8);
} geneve_peers SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32); // local encap IP, network byte order; 0: not set yet
} geneve_local SEC(".maps");

#define DROP_UNKNOWN_SOURCE 0
#define DROP_WRONG_DESTINATION 1
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} geneve_drops SEC(".maps");

static __always_inline int count_drop(__u32 reason)
{
    __u64 *n = bpf_map_lookup_elem(&geneve_drops, &reason);
    if (n)
        *n += 1;
    return XDP_DROP;
}

// The underlay's program: only Geneve (IPv4 UDP to port 6081) goes to the
// socket; ARP, the control plane and everything else stay with the kernel.
// Geneve from an address that is no known chassis, or to an address that is
// not ours, is dropped here and counted (the kernel has no Geneve socket: it
// would answer a stranger with ICMP port unreachable).
SEC("xdp.frags")
int switchyard_xsk_geneve(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->ihl < 5)
        return XDP_PASS;
    struct udphdr *udp = (void *)ip + ip->ihl * 4;
    if ((void *)(udp + 1) > end || udp->dest != bpf_htons(GENEVE_PORT))
        return XDP_PASS;
    __u32 zero = 0;
    __u32 *local = bpf_map_lookup_elem(&geneve_local, &zero);
    if (local && *local) {
        if (ip->daddr != *local)
            return count_drop(DROP_WRONG_DESTINATION);
        __u32 saddr = ip->saddr;
        if (!bpf_map_lookup_elem(&geneve_peers, &saddr))
            return count_drop(DROP_UNKNOWN_SOURCE);
    }
    return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
