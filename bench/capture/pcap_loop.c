/* pcap_loop.c - the throughput ceiling: read a capture with libpcap and count its packets.
 *
 * Usage: pcap_loop FILE|-      prints {"packets": N, "bytes": B, "seconds": S}
 * Touches one byte of each packet and sums the captured lengths so that the loop cannot be
 * optimised into "just read the file"; no parsing, no flow table.  Built by the benchmark with
 * `cc -O2 -o bench/out/pcap_loop bench/capture/pcap_loop.c -lpcap`.
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE|-\n", argv[0]);
        return 2;
    }
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(argv[1], err);
    if (!p) {
        fprintf(stderr, "pcap_loop: %s\n", err);
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct pcap_pkthdr *h;
    const u_char *data;
    uint64_t packets = 0, bytes = 0, touch = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
        packets++;
        bytes += h->caplen;
        if (h->caplen)
            touch += data[h->caplen - 1];
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == -1) {
        fprintf(stderr, "pcap_loop: %s\n", pcap_geterr(p));
        pcap_close(p);
        return 1;
    }
    pcap_close(p);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("{\"packets\": %llu, \"bytes\": %llu, \"seconds\": %.6f, \"checksum\": %llu}\n",
           (unsigned long long)packets, (unsigned long long)bytes, s, (unsigned long long)(touch & 0xff));
    return 0;
}
