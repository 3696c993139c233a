/* The hashing thread: digests equal the one-shot ones whatever the chunking,
 * restarts start over, and the git blob id is git's. */
#include <stdlib.h>

#include "check.h"
#include "hfscan/hash_pipeline.h"

static void test_chunkings_agree(void) {
  size_t size = 3 * HF_PIPELINE_SLOT_SIZE * HF_PIPELINE_SLOTS + 12345;
  unsigned char *data = malloc(size);
  for (size_t i = 0; i < size; i++)
    data[i] = (unsigned char)(i * 31 + (i >> 9));
  char want[HF_SHA256_HEX_SIZE], got[HF_SHA256_HEX_SIZE], git[41];
  hf_sha256_hex(data, size, want);
  const size_t chunks[] = {1, 7, 4096, HF_PIPELINE_SLOT_SIZE - 1, HF_PIPELINE_SLOT_SIZE + 3, size};
  hf_hash_pipeline *p = hf_hash_pipeline_new();
  for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
    hf_hash_pipeline_restart(p, -1);
    for (size_t off = 0; off < size; off += chunks[c]) {
      size_t n = size - off < chunks[c] ? size - off : chunks[c];
      hf_hash_pipeline_feed(p, data + off, n);
    }
    hf_hash_pipeline_result(p, got, git);
    CHECK_STR(got, want);
    CHECK(git[0] == '\0');
  }
  hf_hash_pipeline_free(p);
  free(data);
}

static void test_git_blob_id_and_restart(void) {
  hf_hash_pipeline *p = hf_hash_pipeline_new();
  char sha[HF_SHA256_HEX_SIZE], git[41];
  hf_hash_pipeline_restart(p, 3);
  hf_hash_pipeline_feed(p, "xyz", 3); /* thrown away by the restart below */
  hf_hash_pipeline_restart(p, 3);
  hf_hash_pipeline_feed(p, "abc", 3);
  hf_hash_pipeline_result(p, sha, git);
  CHECK_STR(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK_STR(git, "f2ba8f84ab5c1bce84a7b441cb1959cfc7093b7f"); /* git hash-object of "abc" */
  hf_hash_pipeline_free(p);
}

int main(void) {
  test_chunkings_agree();
  test_git_blob_id_and_restart();
  return check_report("test_hash_pipeline");
}
