/* pcapscan.h - what a damaged classic pcap file still holds after the point where libpcap stopped.
 *
 * libpcap ends a read at the first bad record (a length beyond the snapshot length, a record cut
 * by the end of the file).  To report what was not read, the rest of the file is scanned for the
 * next run of well-formed records that ends exactly at the end of the file (resynchronising).
 */
#ifndef NS_PCAPSCAN_H
#define NS_PCAPSCAN_H

#include <stdint.h>

struct ns_pcap_rest {
    int64_t bytes;    /* bytes of the file after the last record read; -1 unknown */
    int64_t records;  /* records in them (the damaged one included); -1 unknown */
};

/* Tell whether path is a classic pcap file (not pcapng, not a pipe): 1 yes, 0 no.  On 1, swapped
 * and nsec describe its records (byte order, nanosecond timestamps). */
int ns_pcap_is_classic(const char *path, int *swapped, int *nsec);

/* Scan path from byte offset `from` (just after the last record read). */
void ns_pcap_scan_rest(const char *path, uint64_t from, int swapped, int nsec, struct ns_pcap_rest *out);

#endif
