-- Lua tests of the pure-Lua modules: URL building, Link headers, how the hub
-- client classifies answers and how long it waits before a retry.
package.path = (os.getenv("HFSCAN_SOURCE_DIR") or ".") .. "/tests/lua/?.lua;" .. package.path
local t = require "testlib"
local urls = require "hfscan.hub.urls"
local hub = require "hfscan.hub.api"

t.case("urls: origins compare without default ports", function()
  t.eq(urls.origin("https://HuggingFace.co/api/models?x=1"), "https://huggingface.co", "lower case")
  t.eq(urls.origin("https://huggingface.co:443/api"), "https://huggingface.co", "https 443")
  t.eq(urls.origin("http://127.0.0.1:80/x"), "http://127.0.0.1", "http 80")
  t.eq(urls.origin("http://127.0.0.1:8080/x"), "http://127.0.0.1:8080", "other port kept")
  t.eq(urls.origin("https://h:80/x"), "https://h:80", "80 is not https's default")
  t.eq(urls.origin("/api/resolve-cache/models/a/b"), nil, "a relative URL has none")
end)

t.case("urls: paths, segments, queries and Link", function()
  t.eq(urls.path("dir/a b#c?.gguf"), "dir/a%20b%23c%3F.gguf", "path keeps /")
  t.eq(urls.segment("refs/pr/1"), "refs%2Fpr%2F1", "segment escapes /")
  t.eq(urls.query({ { "expand", "sha" }, { "expand", "gated" }, { "search", "a&b" } }),
    "expand=sha&expand=gated&search=a%26b", "repeated keys in order")
  local link = '<https://huggingface.co/api/models?cursor=abc%3D>; rel="next", '
    .. '<https://cas.example/x>; rel="xet-auth"'
  t.eq(urls.link(link, "next"), "https://huggingface.co/api/models?cursor=abc%3D", "next")
  t.eq(urls.link(link, "xet-auth"), "https://cas.example/x", "other rel")
  t.eq(urls.link(link, "prev"), nil, "absent rel")
  t.eq(urls.link(nil, "next"), nil, "no header")
  t.eq(urls.link('<https://h/p>; rel="prev next"', "next"), "https://h/p", "one of several rels")
  t.eq(urls.link('<https://h/a>; title="x", <https://h/b>; rel="next"', "next"), "https://h/b",
    "a link without rel first")
  -- A hostile header: the old pattern match took 70 s of CPU on 100 KB of "<";
  -- the parse is linear now, so this is milliseconds (the bound is generous).
  local started = os.clock()
  t.eq(urls.link(("<"):rep(100000), "next"), nil, "only <")
  t.eq(urls.link(("<"):rep(100000) .. ">", "next"), nil, "one > at the end")
  t.eq(urls.link(('<a>; rel="'):rep(30000), "next"), nil, "unclosed rels")
  t.eq(os.clock() - started < 5, true, "linear")
end)

t.case("urls: repo ids are checked against the Hub's character set", function()
  for _, id in ipairs({ "gpt2", "org/name", "org/na.me-1_x", "A1/B_2" }) do
    t.eq(urls.repo_id_problem(id), nil, id)
  end
  local bad = { "org/bad\r\nid", "a/b/c", "org/-x", "org/x.", "org/a--b", "org/a..b", "",
    ("a"):rep(97), "org/x y", "org/", "/name", "org/na%2Fme" }
  for _, id in ipairs(bad) do
    t.eq(type(urls.repo_id_problem(id)), "string", ("%q"):format(id))
  end
  t.eq(urls.repo_id_problem("org/bad\r\nid"):find("\n", 1, true), nil, "the message is one line")
end)

t.case("hub: buckets, token only to the endpoint's origin", function()
  local h = hub.new { endpoint = "https://huggingface.co/", token = "hf_secret", loop = {} }
  t.eq(h:bucket_of("https://huggingface.co/api/models"), "api", "api")
  t.eq(h:bucket_of("https://huggingface.co:443/api/models?cursor=x"), "api", "api, explicit port")
  t.eq(h:bucket_of("https://huggingface.co/a/b/resolve/c/f.gguf"), "resolvers", "resolvers")
  t.eq(h:bucket_of("https://huggingface.co/api/resolve-cache/models/a/b/c/f.json"), "api",
    "resolve-cache is an /api/ path")
  t.eq(h:bucket_of("https://huggingface.co/gpt2/resolve/main/config.json"), "resolvers",
    "a legacy id without an owner")
  t.eq(h:bucket_of("https://huggingface.co/api/models?search=/resolve/x"), "api",
    "the query does not count")
  t.eq(h:bucket_of("https://huggingface.co/a/b/raw/c/f.json"), "pages", "pages")
  t.eq(h:bucket_of("https://cdn-lfs.hf.co/x"), "cdn", "another host")
  t.eq(h:headers_for("https://huggingface.co:443/api/x").Authorization, "Bearer hf_secret",
    "token to the endpoint")
  t.eq(h:headers_for("https://cdn-lfs.hf.co/x").Authorization, nil, "never to the CDN")
  t.eq(h:headers_for("http://huggingface.co/api/x").Authorization, nil, "never over plain http")
end)

t.case("hub: the resolve-cache hop is booked where its answers said they were counted", function()
  local h = hub.new { endpoint = "https://huggingface.co", loop = {} }
  local hop = "https://huggingface.co/api/resolve-cache/models/a/b/c/f.json"
  t.eq(h:bucket_of(hop), "api", "an /api/ path until an answer says otherwise")
  local named = h:answered_bucket({ url = hop, bucket = "api" },
    { headers = { ratelimit = '"resolvers";r=9;t=30' } })
  t.eq(named, "resolvers", "the answer's bucket")
  t.eq(h:bucket_of(hop), "resolvers", "later hops are booked there")
  t.eq(h:bucket_of("https://huggingface.co/api/models/a/b/tree/c"), "api", "other api paths stay")
end)

t.case("hub: classification and retry delays (hub-api.md sections 6 and 8)", function()
  local h = hub.new { endpoint = "https://huggingface.co", loop = {} }
  local function answer(status, headers, body)
    return { status = status, headers = headers or {}, body = body or "" }
  end
  t.eq(h:classify(answer(401, {}, '{"error":"Invalid credentials in Authorization header"}')).kind,
    "invalid_token", "bad token")
  t.eq(h:classify(answer(401, { ["x-error-code"] = "RepoNotFound" })).kind, "repository_not_found",
    "missing repo")
  t.eq(h:classify(answer(403, { ["x-error-code"] = "GatedRepo" })).kind, "gated_repository", "gated")
  t.eq(h:classify(answer(503)).kind, "server_error", "5xx")
  t.eq(h:retry_delay(answer(429, { ratelimit = '"api";r=0;t=42' }), 1), 43, "window spent: t+1")
  t.eq(h:retry_delay(answer(429, { ratelimit = '"api";r=12;t=42', ["retry-after"] = "3" }), 1), 3,
    "another quota: Retry-After")
  t.eq(h:retry_delay(answer(429, { ratelimit = '"api";r=12;t=42' }), 3), 4, "another quota: backoff")
  t.eq(h:retry_delay(answer(503), 5), 8, "backoff capped at 8 s")
  t.eq(h:retry_delay(nil, 1), 1, "network error: 1 s first")
end)

t.case("hub: listing variants and waits the server asks for are bounded", function()
  local url = "https://h/api/models?sort=downloads&limit=1000&expand=sha&expand=siblings&cursor=x%3D"
  local v = hub.listing_variants(url)
  t.eq(#v, 5, "as given twice, 250, 100, then without siblings")
  t.eq(v[1], url, "first as given")
  t.eq(v[2], url, "then again")
  t.eq(v[3], "https://h/api/models?sort=downloads&limit=250&expand=sha&expand=siblings&cursor=x%3D", "250")
  t.eq(v[4], "https://h/api/models?sort=downloads&limit=100&expand=sha&expand=siblings&cursor=x%3D", "100")
  t.eq(v[5], "https://h/api/models?sort=downloads&limit=100&expand=sha&cursor=x%3D", "no siblings")
  t.eq(#hub.listing_variants("https://h/api/models?limit=100&expand=sha"), 2, "nothing lighter")
  local h = hub.new { endpoint = "https://huggingface.co", loop = {} }
  local function answer(status, headers) return { status = status, headers = headers, body = "" } end
  local warnings = {}
  h.on_warning = function(m) warnings[#warnings + 1] = m end
  t.eq(h:retry_delay(answer(503, { ["retry-after"] = "999999999" }), 1), hub.MAX_SERVER_WAIT, "capped")
  t.eq(#warnings, 1, "a suspicious wait is logged")
  t.eq(warnings[1]:find("Retry-After: 999999999 cut to 900 s", 1, true) ~= nil, true, warnings[1])
  t.eq(h:retry_delay(answer(503, { ["retry-after"] = "1e309" }), 1), 1, "not a wait: backoff")
  t.eq(h:retry_delay(answer(503, { ["retry-after"] = "-5" }), 2), 2, "negative: backoff, not at once")
  t.eq(h:retry_delay(answer(503, { ["retry-after"] = "1.5" }), 1), 1, "fractional: backoff")
  t.eq(#warnings, 1, "logged once")
  t.eq(h:retry_delay(answer(503, { ["retry-after"] = "7" }), 1), 7, "seconds")
  t.eq(h:retry_delay(answer(429, { ratelimit = '"api";r=0;t=3600' }), 1), hub.MAX_SERVER_WAIT,
    "a window's reset, capped")
  t.eq(h:retry_delay(answer(429, { ratelimit = '"api";r=0;t=999999' }), 3), 4,
    "an absurd reset is no reset: backoff")
  t.eq(hub.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470), 10, "an HTTP-date")
  t.eq(hub.parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", 5), 0, "a date past: at once")
  t.eq(hub.parse_retry_after("Wed, 21 Foo 2015 07:28:00 GMT", 0), nil, "not a date")
  t.eq(hub.parse_retry_after("99999999999999999999", 0) > hub.MAX_SERVER_WAIT, true, "too long: cut later")
end)

t.case("listing journal: a line torn by a kill is skipped, the next run's follow", function()
  local journal = require "hfscan.scan.listing"
  local path = t.tmpdir() .. "/hf_scan_listing_test.jsonl"
  local j = assert(journal.open(path))
  assert(j:page({ { id = "a/1" }, { id = "a/2" } }, "/api/models?cursor=p2"))
  j:close()
  local f = assert(io.open(path, "a"))
  f:write('{"items":[{"id":"b/') -- a write cut short
  f:close()
  j = assert(journal.open(path))
  assert(j:page({ { id = "b/1" } }, "/api/models?cursor=p3"))
  assert(j:done())
  j:close()
  local read = assert(journal.read(path))
  t.eq(#read.pages, 2, "both whole pages")
  t.eq(read.pages[2][1].id, "b/1", "the page after the torn line")
  t.eq(read.next, "/api/models?cursor=p3", "the last next page")
  t.eq(read.done, true, "over")
  t.eq(journal.read(t.tmpdir() .. "/none.jsonl"), nil, "no journal")
end)

os.exit(t.run("test_modules"))
