/* fuzz_parse.c - libFuzzer entry for ns_parse_packet.
 * Input: byte 0 selects the link type among the supported ones, the rest is one captured frame.
 * A second byte range trick also varies wirelen so the length clamping paths are exercised. */
#include <stddef.h>
#include <stdint.h>

#include "parse.h"

static const int dlts[] = {NS_DLT_EN10MB, NS_DLT_LINUX_SLL, NS_DLT_LINUX_SLL2, NS_DLT_RAW,
                           NS_DLT_RAW_ALT, NS_DLT_IPV4,     NS_DLT_IPV6,       NS_DLT_NULL,
                           NS_DLT_LOOP};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int dlt = dlts[data[0] % (sizeof dlts / sizeof dlts[0])];
    uint32_t extra = data[1]; /* wirelen may exceed caplen (snaplen-cut capture) */
    const uint8_t *frame = data + 2;
    uint32_t caplen = (uint32_t)(size - 2);
    struct ns_packet p = {0};
    int v = ns_parse_packet(dlt, frame, caplen, caplen + extra, &p);
    if (v < 0 || v >= NS_VERDICT_COUNT)
        __builtin_trap();
    if (v == NS_OK && (p.payload_caplen > caplen || p.l3_offset > caplen + extra))
        __builtin_trap();
    (void)ns_verdict_name(v);
    return 0;
}
