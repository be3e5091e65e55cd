/* Shared by the libFuzzer targets in tests/fuzz/ (built by `make fuzz` with
 * clang) and by tests/test_fuzz_corpus.c, which replays the committed corpus
 * through the same entry points with gcc in `make test`. A target's oracle
 * (a property every input must keep) fails with FUZZ_ASSERT, which aborts,
 * so libFuzzer saves the input and the replay dies loudly. */
#ifndef SL_FUZZ_H
#define SL_FUZZ_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FUZZ_ASSERT(cond, what)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz oracle failed: %s (%s:%d)\n", (what), __FILE__, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* data[0..n) as a NUL-terminated string (an embedded NUL ends it early). */
static inline char *fuzz_cstr(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* A regular file in memory holding data[0..n), its path in path
 * ("/proc/self/fd/N"); close the returned fd when done. */
static inline int fuzz_file(const uint8_t *data, size_t n, char path[64])
{
    int fd = memfd_create("seqlab-fuzz", MFD_CLOEXEC);
    if (fd < 0) abort();
    for (size_t at = 0; at < n;) {
        ssize_t w = write(fd, data + at, n - at);
        if (w <= 0) abort();
        at += (size_t)w;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
