/* One HTTP request under a rate limiter: take a slot of its bucket (wait for one,
 * or use the one the caller already booked), mark it sent, perform it, and feed
 * the answer back to the limiter. The pool's workers and the binding's own
 * hf.http both do requests this way. */
#ifndef HFSCAN_PACED_HTTP_H
#define HFSCAN_PACED_HTTP_H

#include "hfscan/http.h"
#include "hfscan/ratelimit.h"

/* limiter may be NULL (a plain hf_http_perform). bucket NULL means "default".
 * reserved: the caller booked the slot with hf_ratelimit_reserve and waited for
 * it. *waited (may be NULL) gets the seconds spent waiting here. Returns as
 * hf_http_perform; a wait cut short by a stop request fails with
 * HF_HTTP_ERR_INTERRUPTED. The response must be freed in every case. */
int hf_paced_perform(hf_http_client *c, hf_ratelimit *limiter, const char *bucket, int reserved,
                     hf_http_request *req, hf_http_response *res, double *waited);

#endif
