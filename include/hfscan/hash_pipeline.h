/* SHA-256 (and optionally git's blob SHA-1) on a thread of its own, fed by a
 * producer such as a download: the producer's copies into a small ring of
 * buffers overlap with the hashing, so a transfer costs max(receive, hash)
 * instead of their sum. Memory: HF_PIPELINE_SLOTS x HF_PIPELINE_SLOT_SIZE. */
#ifndef HFSCAN_HASH_PIPELINE_H
#define HFSCAN_HASH_PIPELINE_H

#include <stddef.h>

#include "hfscan/sha256.h"

#define HF_PIPELINE_SLOTS 4
#define HF_PIPELINE_SLOT_SIZE (1u << 20)

typedef struct hf_hash_pipeline hf_hash_pipeline;

/* Starts the hashing thread; NULL when memory or threads run out. */
hf_hash_pipeline *hf_hash_pipeline_new(void);
/* Copies data in; blocks only while every slot waits to be hashed. */
void hf_hash_pipeline_feed(hf_hash_pipeline *p, const void *data, size_t len);
/* For a producer that can write into the ring itself (a read(2)), with no copy:
 * space gives the free part of the slot being filled (*room bytes, never 0),
 * waiting while every slot waits to be hashed; commit says how much was put there. */
unsigned char *hf_hash_pipeline_space(hf_hash_pipeline *p, size_t *room);
void hf_hash_pipeline_commit(hf_hash_pipeline *p, size_t len);
/* Waits for what was fed, then starts over (git_blob_size >= 0: also the git
 * blob SHA-1 of a body that size). */
void hf_hash_pipeline_restart(hf_hash_pipeline *p, long long git_blob_size);
/* Waits for what was fed and gives the digests (git_sha1 empty when not asked). */
void hf_hash_pipeline_result(hf_hash_pipeline *p, char sha256[HF_SHA256_HEX_SIZE],
                             char git_sha1[41]);
void hf_hash_pipeline_free(hf_hash_pipeline *p);

#endif
