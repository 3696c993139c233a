/* SHA-256: NIST example values, incremental use, and files of awkward sizes
 * compared with coreutils' sha256sum. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "hfscan/sha256.h"

static void test_nist_vectors(void) {
  char hex[HF_SHA256_HEX_SIZE];
  hf_sha256_hex("", 0, hex);
  CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  hf_sha256_hex("abc", 3, hex);
  CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  hf_sha256_hex(m448, strlen(m448), hex);
  CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                     "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
  hf_sha256_hex(m896, strlen(m896), hex);
  CHECK_STR(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_million_a_incrementally(void) {
  hf_sha256 *h = hf_sha256_new();
  char block[1000];
  memset(block, 'a', sizeof block);
  for (int i = 0; i < 1000; i++)
    hf_sha256_update(h, block, sizeof block);
  char hex[HF_SHA256_HEX_SIZE];
  hf_sha256_peek_hex(h, hex);
  CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  CHECK(hf_sha256_length(h) == 1000000);
  hf_sha256_free(h);
}

static void test_peek_keeps_state(void) {
  hf_sha256 *h = hf_sha256_new();
  char hex[HF_SHA256_HEX_SIZE];
  hf_sha256_update(h, "a", 1);
  hf_sha256_peek_hex(h, hex);
  CHECK_STR(hex, "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
  hf_sha256_update(h, "bc", 2);
  hf_sha256_peek_hex(h, hex);
  CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  hf_sha256_reset(h);
  hf_sha256_peek_hex(h, hex);
  CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hf_sha256_length(h) == 0);
  hf_sha256_free(h);
}

/* Writes size pseudo-random bytes to path. */
static void write_file(const char *path, size_t size, unsigned seed) {
  FILE *f = fopen(path, "wb");
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    fputc((int)(x & 0xff), f);
  }
  fclose(f);
}

static void sha256sum_of(const char *path, char hex[HF_SHA256_HEX_SIZE]) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
  FILE *p = popen(cmd, "r");
  hex[0] = '\0';
  if (p && fscanf(p, "%64s", hex) != 1)
    hex[0] = '\0';
  if (p)
    pclose(p);
}

static void test_files_of_awkward_sizes(void) {
  const size_t block = HF_SHA256_FILE_BLOCK;
  const size_t sizes[] = {0, 1, block - 1, block, block + 1, 3 * block + 5};
  char dir[] = "/tmp/hfscan-sha-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    char path[256], expected[HF_SHA256_HEX_SIZE], actual[HF_SHA256_HEX_SIZE], err[256];
    snprintf(path, sizeof path, "%s/f%zu", dir, i);
    write_file(path, sizes[i], (unsigned)i + 1);
    sha256sum_of(path, expected);
    uint64_t bytes = 0;
    CHECK(hf_sha256_file(path, actual, &bytes, err, sizeof err) == 0);
    CHECK_STR(actual, expected);
    CHECK(bytes == sizes[i]);
    unlink(path);
  }
  rmdir(dir);
}

static void test_file_errors(void) {
  char hex[HF_SHA256_HEX_SIZE], err[256];
  int rc = hf_sha256_file("/nonexistent/file.bin", hex, NULL, err, sizeof err);
  CHECK(rc != 0);
  CHECK_STR(err, "/nonexistent/file.bin: No such file or directory");
  rc = hf_sha256_file("/tmp", hex, NULL, err, sizeof err);
  CHECK(rc != 0);
  CHECK_STR(err, "/tmp: Is a directory");
}

int main(void) {
  test_nist_vectors();
  test_million_a_incrementally();
  test_peek_keeps_state();
  test_files_of_awkward_sizes();
  test_file_errors();
  return check_report("test_sha256");
}
