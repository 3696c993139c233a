/* SHA-256 over OpenSSL EVP (which uses SHA-NI or AVX2 where the CPU has them). */
#ifndef HFSCAN_SHA256_H
#define HFSCAN_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define HF_SHA256_HEX_SIZE 65 /* 64 lowercase hex digits and a NUL */

typedef struct hf_sha256 hf_sha256;

/* One-shot digest of a buffer. */
void hf_sha256_hex(const void *data, size_t len, char hex[HF_SHA256_HEX_SIZE]);

/* Incremental hasher. new returns NULL only when memory runs out. */
hf_sha256 *hf_sha256_new(void);
void hf_sha256_update(hf_sha256 *h, const void *data, size_t len);
/* Digest of everything so far; the hasher stays usable for more updates. */
void hf_sha256_peek_hex(const hf_sha256 *h, char hex[HF_SHA256_HEX_SIZE]);
void hf_sha256_reset(hf_sha256 *h);
uint64_t hf_sha256_length(const hf_sha256 *h);
void hf_sha256_free(hf_sha256 *h);

/* Streams a file through SHA-256, hashing on a second thread while the caller
 * reads the next block, so that reading and hashing overlap. Returns 0, or an
 * errno value with a message naming the file in err. */
#define HF_SHA256_FILE_BLOCK (1u << 20)
int hf_sha256_file(const char *path, char hex[HF_SHA256_HEX_SIZE], uint64_t *bytes, char *err,
                   size_t errlen);

#endif
