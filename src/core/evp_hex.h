/* Inside the library: the hex digest of an OpenSSL digest context so far, shared by
 * the SHA-256 hasher and the hash pipeline's git blob SHA-1. */
#ifndef HFSCAN_EVP_HEX_H
#define HFSCAN_EVP_HEX_H

#include <openssl/evp.h>

/* hex must hold 2 x the digest size + 1. The context stays usable for updates. */
void hf_evp_peek_hex(const EVP_MD_CTX *ctx, char *hex);

#endif
