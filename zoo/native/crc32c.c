/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum TensorFlow stores for every tensor of a
 * checkpoint (BundleEntryProto.crc32c) and for every block of its .index table.
 *
 * Why it exists: zoo.convert checks every tensor it reads, and a BERT-base checkpoint is 440 MB. Python's zlib has
 * only the IEEE polynomial, and a table-driven loop in Python runs at ~15 MB/s (half a minute for BERT-base). Here,
 * on x86-64 processors with SSE4.2 (every one since 2008), the CRC32 instruction computes this very polynomial
 * 8 bytes at a time; elsewhere a portable slicing-by-8 table loop takes over. The choice is made once, at run time
 * (cpuid through __builtin_cpu_supports), so one build runs on any x86-64.
 *
 * Conventions are LevelDB's and TensorFlow's (tensorflow/core/lib/hash/crc32c.h): zoo_crc32c_extend(crc, data, n)
 * returns the CRC-32C of A || data given crc = CRC-32C of A (0 for an empty A), i.e. the register is inverted on
 * the way in and out. TensorFlow's "mask" is applied in Python. Plain C, no Python C API: loaded through ctypes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ZOO_CRC32C_POLY 0x82F63B78u

int zoo_crc32c_abi_version(void) { return 1; }

static uint32_t table[8][256];
static int table_ready = 0;

static void build_table(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ ZOO_CRC32C_POLY : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int t = 1; t < 8; t++) table[t][n] = (table[t - 1][n] >> 8) ^ table[0][table[t - 1][n] & 0xff];
    table_ready = 1;
}

/* Portable path: eight table lookups per 8 bytes (slicing-by-8); the register is little-endian-ordered, so the
 * word is assembled byte by byte and the loop is correct on big-endian machines too. */
static uint32_t extend_tables(uint32_t crc, const uint8_t *p, size_t n) {
    if (!table_ready) build_table(); /* idempotent: a race only builds the same table twice */
    while (n && ((uintptr_t)p & 7)) { crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8); n--; }
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
              table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^ table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <nmmintrin.h>
#define ZOO_HAVE_SSE42_PATH 1

/* The CRC32 instruction has a latency of 3 cycles and a throughput of 1: one stream reaches ~8 bytes / 3 cycles,
 * several GB/s, faster than the page cache delivers a checkpoint, so the three-stream interleave is not worth its
 * complexity here. */
__attribute__((target("sse4.2"))) static uint32_t extend_sse42(uint32_t crc, const uint8_t *p, size_t n) {
    uint64_t c = crc;
    while (n && ((uintptr_t)p & 7)) { c = _mm_crc32_u8((uint32_t)c, *p++); n--; }
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8); /* aligned by now; memcpy keeps it free of aliasing rules */
        c = _mm_crc32_u64(c, word);
        p += 8;
        n -= 8;
    }
    while (n--) c = _mm_crc32_u8((uint32_t)c, *p++);
    return (uint32_t)c;
}
#endif

static int use_hardware = -1; /* -1: not decided yet */

/* 1 where the SSE4.2 instruction is used, 0 for the table loop. */
int zoo_crc32c_hardware(void) {
    if (use_hardware < 0) {
#ifdef ZOO_HAVE_SSE42_PATH
        __builtin_cpu_init();
        use_hardware = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
        use_hardware = 0;
#endif
    }
    return use_hardware;
}

/* force: 0 tables, 1 hardware (where there is one), -1 back to the automatic choice; returns the path in use.
 * Lets the tests run both paths on a machine that has the instruction. */
int zoo_crc32c_force(int force) {
    use_hardware = -1;
    int hardware = zoo_crc32c_hardware();
    if (force == 0) use_hardware = 0;
    else if (force == 1) use_hardware = hardware;
    return use_hardware;
}

uint32_t zoo_crc32c_extend(uint32_t crc, const void *data, size_t n) {
    const uint8_t *p = (const uint8_t *)data;
    uint32_t c = ~crc;
#ifdef ZOO_HAVE_SSE42_PATH
    if (zoo_crc32c_hardware()) return ~extend_sse42(c, p, n);
#endif
    return ~extend_tables(c, p, n);
}
