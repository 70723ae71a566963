/*
 * The program behind traces/hashtable.pctrace (docs/traces.md): builds an open-addressing hash
 * table of 2^21 8-byte slots (16 MiB, so 4096 pages touched in random order) from 2^16
 * pseudo-random keys, then looks up 2^16 keys, half of them present.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SLOTS (1u << 21)
#define KEYS (1u << 16)

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static uint32_t slot_of(uint64_t key) { return (uint32_t)((key * 0x9e3779b97f4a7c15u) >> 43); }

int main(void) {
  /* calloc of 16 MiB is a fresh mmap: no page is touched until a key lands in it. */
  uint64_t *table = calloc(SLOTS, sizeof *table);
  if (!table) return 1;
  uint64_t inserted = 1, other = 2;
  for (uint32_t i = 0; i < KEYS; i++) {
    uint64_t key = splitmix64(&inserted) | 1;
    uint32_t h = slot_of(key);
    while (table[h] != 0 && table[h] != key) h = (h + 1) & (SLOTS - 1);
    table[h] = key;
  }
  inserted = 1;
  uint32_t hits = 0;
  for (uint32_t i = 0; i < KEYS; i++) {
    uint64_t key = (i & 1 ? splitmix64(&inserted) : splitmix64(&other)) | 1;
    uint32_t h = slot_of(key);
    while (table[h] != 0 && table[h] != key) h = (h + 1) & (SLOTS - 1);
    hits += table[h] == key;
  }
  printf("%u of %u lookups hit\n", hits, KEYS);
  free(table);
  return 0;
}
