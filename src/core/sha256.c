/* Incremental and one-shot SHA-256 on OpenSSL's EVP interface. */
#include "hfscan/sha256.h"

#include <openssl/evp.h>
#include <stdlib.h>

#include "evp_hex.h"

struct hf_sha256 {
  EVP_MD_CTX *ctx;
  uint64_t length;
};

static void to_hex(const unsigned char *digest, unsigned len, char *hex) {
  static const char digits[] = "0123456789abcdef";
  for (unsigned i = 0; i < len; i++) {
    hex[2 * i] = digits[digest[i] >> 4];
    hex[2 * i + 1] = digits[digest[i] & 15];
  }
  hex[2 * len] = '\0';
}

void hf_sha256_hex(const void *data, size_t len, char hex[HF_SHA256_HEX_SIZE]) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL);
  to_hex(digest, digest_len, hex);
}

hf_sha256 *hf_sha256_new(void) {
  hf_sha256 *h = calloc(1, sizeof *h);
  if (!h)
    return NULL;
  h->ctx = EVP_MD_CTX_new();
  if (!h->ctx) {
    free(h);
    return NULL;
  }
  hf_sha256_reset(h);
  return h;
}

void hf_sha256_reset(hf_sha256 *h) {
  EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL);
  h->length = 0;
}

void hf_sha256_update(hf_sha256 *h, const void *data, size_t len) {
  EVP_DigestUpdate(h->ctx, data, len);
  h->length += len;
}

void hf_evp_peek_hex(const EVP_MD_CTX *ctx, char *hex) {
  /* Finalising a copy keeps the running state, so callers may keep updating. */
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  EVP_MD_CTX *copy = EVP_MD_CTX_new();
  if (!copy || !EVP_MD_CTX_copy_ex(copy, ctx) || !EVP_DigestFinal_ex(copy, digest, &digest_len))
    digest_len = 0; /* out of memory: an empty digest, which no caller accepts as a hash */
  EVP_MD_CTX_free(copy);
  to_hex(digest, digest_len, hex);
}

void hf_sha256_peek_hex(const hf_sha256 *h, char hex[HF_SHA256_HEX_SIZE]) {
  hf_evp_peek_hex(h->ctx, hex);
}

uint64_t hf_sha256_length(const hf_sha256 *h) { return h->length; }

void hf_sha256_free(hf_sha256 *h) {
  if (!h)
    return;
  EVP_MD_CTX_free(h->ctx);
  free(h);
}
