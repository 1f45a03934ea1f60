/* pcapscan.c - count the records of a damaged classic pcap that libpcap could not read. */
#include "pcapscan.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_HEADER 24
#define RECORD_HEADER 16
#define MAX_RECORD 262144u /* libpcap's largest snapshot length */

static uint32_t word(const unsigned char *p, int swapped)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return swapped ? __builtin_bswap32(v) : v;
}

int ns_pcap_is_classic(const char *path, int *swapped, int *nsec)
{
    /* only regular files: a second reader of a FIFO would steal bytes from the capture */
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 0;
    unsigned char h[4];
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read(fd, h, 4) == 4;
    close(fd);
    if (!ok)
        return 0;
    uint32_t magic = word(h, 0);
    if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) {
        *swapped = 0;
    } else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) {
        *swapped = 1;
        magic = __builtin_bswap32(magic);
    } else {
        return 0;
    }
    *nsec = magic == 0xa1b23c4d;
    return 1;
}

/* A record header that libpcap would read: sub-second field in range, lengths within bounds. */
static int plausible(const unsigned char *p, int swapped, int nsec)
{
    uint32_t frac = word(p + 4, swapped), caplen = word(p + 8, swapped), len = word(p + 12, swapped);
    return frac < (nsec ? 1000000000u : 1000000u) && caplen <= MAX_RECORD && caplen <= len && len > 0;
}

/* Walk the well-formed records from off; *stop gets where the walk ended, *cut whether the last
 * record runs past the end of the file (libpcap would read its header: it counts).  Returns the
 * number of records. */
static int64_t walk(const unsigned char *base, uint64_t off, uint64_t size, int swapped, int nsec,
                    uint64_t *stop, int *cut)
{
    int64_t n = 0;
    *cut = 0;
    while (off + RECORD_HEADER <= size && plausible(base + off, swapped, nsec)) {
        n++;
        uint64_t next = off + RECORD_HEADER + word(base + off + 8, swapped);
        if (next >= size) {
            *cut = next > size;
            off = size;
            break;
        }
        off = next;
    }
    *stop = off;
    return n;
}

void ns_pcap_scan_rest(const char *path, uint64_t from, int swapped, int nsec, struct ns_pcap_rest *out)
{
    out->bytes = out->records = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size < from || from < FILE_HEADER) {
        close(fd);
        return;
    }
    uint64_t size = (uint64_t)st.st_size;
    out->bytes = (int64_t)(size - from);
    if (size == from) {
        out->records = 0;
        close(fd);
        return;
    }
    const unsigned char *base = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (base == MAP_FAILED)
        return;
    /* the damaged record itself, then runs found by resynchronising: one that reaches the end of
     * the file, or at least 4 records in a row (then the next damage is looked past the same way) */
    out->records = 1;
    for (uint64_t off = from + 1; off + RECORD_HEADER <= size;) {
        uint64_t stop;
        int cut;
        int64_t n = walk(base, off, size, swapped, nsec, &stop, &cut);
        /* a lone header whose length runs past the end is too weak a match */
        if (n >= 4 || (n > 0 && stop == size && !(cut && n == 1))) {
            out->records += n;
            if (stop + RECORD_HEADER > size)
                break;
            out->records++; /* the record that stopped the run */
            off = stop + 1;
        } else {
            off++;
        }
    }
    munmap((void *)base, size);
}
