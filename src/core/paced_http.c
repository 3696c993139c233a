/* A request under a rate limiter: acquire (or take the booked slot), sending,
 * perform, observe, in that order, so that the limiter counts what the Hub
 * counts. */
#include "hfscan/paced_http.h"

#include <stdio.h>
#include <string.h>

#include "hfscan/interrupt.h"

int hf_paced_perform(hf_http_client *c, hf_ratelimit *limiter, const char *bucket, int reserved,
                     hf_http_request *req, hf_http_response *res, double *waited) {
  const char *name = bucket ? bucket : "default";
  double held = 0;
  if (limiter && !reserved && (held = hf_ratelimit_acquire(limiter, name)) < 0) {
    memset(res, 0, sizeof *res);
    hf_hash_pipeline_free(req->continue_hash); /* taken over, as by hf_http_perform */
    req->continue_hash = NULL;
    res->error_code = HF_HTTP_ERR_INTERRUPTED;
    snprintf(res->error_message, sizeof res->error_message,
             "interrupted while waiting for the rate limit");
    if (waited)
      *waited = 0;
    return -1;
  }
  if (waited)
    *waited = held;
  if (limiter)
    hf_ratelimit_sending(limiter, name, hf_monotonic_seconds());
  int rc = hf_http_perform(c, req, res);
  if (limiter)
    hf_ratelimit_observe(limiter, name, res->status, &res->headers, hf_monotonic_seconds());
  return rc;
}
