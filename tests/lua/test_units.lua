-- Lua unit tests of the modules under the workflow: the async loop (timers,
-- queue, all), policy result checks, the JSON encoder, argument walking, and
-- the strict LFS pointer parser.
package.path = (os.getenv("HFSCAN_SOURCE_DIR") or ".") .. "/tests/lua/?.lua;" .. package.path
local t = require "testlib"
local hf = require "hfscan"
local async = require "hfscan.async"
local cli = require "hfscan.cli"
local json = require "hfscan.json"
local lfs = require "hfscan.scan.lfs"
local policies = require "hfscan.scan.policy"

t.case("async: timers wake tasks in time order, the queue hands items in order", function()
  local pool <close> = hf.pool(1)
  local loop = async.new(pool)
  local order = {}
  for _, delay in ipairs({ 0.06, 0.02, 0.04 }) do
    loop:spawn(function()
      loop:sleep(delay)
      order[#order + 1] = delay
    end)
  end
  local q = loop:queue()
  local got = {}
  loop:spawn(function()
    while true do
      local item = q:pop()
      if not item then return end
      got[#got + 1] = item
    end
  end)
  loop:spawn(function()
    for i = 1, 3 do q:push(i) loop:sleep(0.01) end
    q:close()
  end)
  loop:run()
  t.eq(table.concat(order, ","), "0.02,0.04,0.06", "timers in order")
  t.eq(table.concat(got, ","), "1,2,3", "queue in order, then closed")
end)

t.case("async: all waits for every child and raises the first failure after them", function()
  local pool <close> = hf.pool(1)
  local loop = async.new(pool)
  local finished, raised = 0, nil
  loop:spawn(function()
    local ok, err = pcall(loop.all, loop, {
      function() loop:sleep(0.02) finished = finished + 1 end,
      function() error("child failed", 0) end,
      function() loop:sleep(0.01) finished = finished + 1 end,
    })
    raised = not ok and err
  end)
  loop:run()
  t.eq(finished, 2, "the others ran to their end")
  t.eq(raised, "child failed", "the failure is raised in the parent")
end)

t.case("policy: hooks returning the wrong thing stop with the hook named", function()
  local p = policies.new({ select_file = function() return "yes" end,
    tiers = function() return { "api_metadata", "guess" } end }, "mine.lua")
  local ok, err = pcall(p.call, p, "select_file", { path = "a.bin" }, {})
  t.truthy(not ok and policies.is_policy_error(err), "select_file raises a policy error")
  t.truthy(tostring(err):find("policy hook 'select_file'", 1, true), tostring(err))
  t.truthy(tostring(err):find("it must return a boolean", 1, true), tostring(err))
  ok, err = pcall(p.call, p, "tiers", { path = "a.bin" }, {})
  t.truthy(not ok and tostring(err):find("api_metadata, lfs_pointer, downloaded", 1, true), tostring(err))
  t.eq(p:call("on_error", {}, {}), "continue", "a hook not given is the default")
  ok, err = pcall(policies.new, { select_everything = function() end }, "mine.lua")
  t.truthy(not ok and tostring(err):find("unknown hook 'select_everything'", 1, true), tostring(err))
end)

t.case("json: arrays, empty ones, sorted keys, escapes and numbers", function()
  t.eq(json.encode({ b = 1, a = { 1, 2 }, c = json.array() }), '{"a":[1,2],"b":1,"c":[]}', "object")
  t.eq(json.encode("q\"\\\n\1"), '"q\\"\\\\\\n\\u0001"', "escapes")
  t.eq(json.encode({ 1.5, 0 / 0, math.huge, true }), "[1.5,null,null,true]", "numbers")
  t.eq(json.encode({ 0.074, 1 / 3, 0.1 + 0.2 }), "[0.074,0.3333333333333333,0.30000000000000004]",
    "the shortest decimal that reads back the same")
  t.eq(json.encode({}), "{}", "an unmarked empty table is an object")
end)

t.case("cli: walking arguments against declared flags", function()
  local flags = {
    { "--out", "DIR", "./o", "where" },
    { "--json", nil, nil, "as JSON" },
    { "-j", "N", nil, "threads", alias = "--jobs",
      check = function(v) return cli.parse_workers(v), "a whole number from 1 to 256" end },
  }
  local pos = {}
  local function keep(a) pos[#pos + 1] = a end
  local o, given = cli.parse_flags({ "--out=x", "a", "--json", "-j4", "--", "--b" }, flags, keep)
  t.eq(o.out, "x", "inline value")
  t.eq(o.json, true, "flag")
  t.eq(o.j, 4, "an attached short value, converted by its check")
  t.eq(table.concat(pos, " "), "a --b", "positionals, after -- too")
  t.eq(given.out and given.json and given.j and not given.help, true, "what was given")
  o = cli.parse_flags({ "--out", "-x", "--out=--json" }, flags, keep)
  t.eq(o.out, "--json", "a value that starts with - is taken inline")
  o = cli.parse_flags({ "--jobs", "2" }, flags, keep)
  t.eq(o.j, 2, "an alias fills the same key")
  t.eq(o.out, "./o", "a default fills what was not given")
  local cases = {
    { { "--json=1" }, "--json takes no value" },
    { { "--out" }, "--out needs DIR" },
    { { "--out=" }, "--out needs DIR" },
    { { "-j0" }, "-j: '0' is not a whole number from 1 to 256" },
    { { "--what" }, "unknown option '--what'" },
    { { "-jx" }, "-j: 'x' is not a whole number from 1 to 256" },
    { { "--out", "--json" }, "--out needs DIR, not the option '--json' (write --out=VALUE for a value that starts with -)" },
    { { "--out", "--json=1" }, "--out needs DIR, not the option '--json=1' (write --out=VALUE for a value that starts with -)" },
  }
  for _, c in ipairs(cases) do
    local _, err = cli.parse_flags(c[1], flags, keep)
    t.eq(err, c[2], table.concat(c[1], " "))
  end
  local _, err = cli.parse_flags({ "stray" }, flags, nil)
  t.eq(err, "unexpected argument 'stray'", "no positionals taken")
  t.eq(cli.key_of("--max-workers"), "max_workers", "key")
  t.eq(cli.parse_workers("0"), nil, "workers from 1")
  t.eq(cli.parse_workers("8"), 8, "workers")
end)

t.case("cli: a command's help is made from its declared flags", function()
  local help = cli.help({ name = "demo", usage = { "[--out DIR] X", "--json Y" }, about = "  about",
    flags = { { "--out", "DIR", "./o", "where" }, { "-j", "N", nil, "threads", alias = "--jobs" } } })
  t.eq(help, table.concat({
    "usage: hfscan demo [--out DIR] X",
    "       hfscan demo --json Y",
    "  about",
    "options:",
    "  --out DIR          where (default ./o)",
    "  -j, --jobs N       threads",
    "  --help             show this help" }, "\n"), "help")
end)

t.case("lfs: pointers are parsed strictly", function()
  local sha = ("ab"):rep(32)
  local good = "version https://git-lfs.github.com/spec/v1\noid sha256:" .. sha .. "\nsize 12\n"
  local got, size = lfs.parse_pointer(good)
  t.eq(got, sha, "a pointer")
  t.eq(size, 12, "its size")
  local ext = "version https://git-lfs.github.com/spec/v1\next-0-foo sha256:" .. sha
    .. "\noid sha256:" .. sha .. "\nsize 12\n"
  t.eq(lfs.parse_pointer(ext), sha, "an extension line before oid")
  local function refused(text, why)
    local h, reason = lfs.parse_pointer(text)
    t.eq(h, nil, why)
    return reason
  end
  refused(good:gsub(sha, sha:upper()), "upper-case hex")
  refused(good:sub(1, -2), "no trailing newline")
  refused(good .. "oid sha256:" .. sha .. "\n", "two oid lines")
  refused("version https://git-lfs.github.com/spec/v1\nsize 12\noid sha256:" .. sha .. "\n",
    "keys out of order")
  refused(good .. ("x"):rep(1100), "over 1024 bytes")
  refused("version https://example/spec\noid sha256:" .. sha .. "\nsize 12\n", "another version")
  refused(good:gsub("size 12", "size 1e3"), "size not decimal")
  t.truthy(refused(good:gsub(sha, sha:sub(2)), "63 hex digits"):find("64", 1, true), "says why")
end)

t.case("verdicts: the Hub's two shapes of securityFileStatus, and the route's cost", function()
  local verdicts = require "hfscan.scan.verdicts"
  local openapi = verdicts.columns({ status = "unsafe",
    avScan = { status = "unsafe", message = "Eicar-Test-Signature" },
    pickleImportScan = { status = "unsafe", pickleImports = {
      { module = "builtins", name = "exec", safety = "dangerous" },
      { module = "torch", name = "FloatStorage", safety = "innocuous" },
      { module = "builtins", name = "exec", safety = "dangerous" } } } })
  t.eq(json.encode(openapi), json.encode { security_status = "unsafe", av_virus = "Eicar-Test-Signature", pickle_safety = "dangerous",
    pickle_imports = "builtins.exec:dangerous;torch.FloatStorage:innocuous" }, "OpenAPI shape, imports once each")
  local older = verdicts.columns({ safe = false, avScan = { virusFound = true, virusNames = { "A", "B" } },
    pickleImportScan = { highestSafetyLevel = "suspicious", imports = {
      { module = "numpy", name = "load", safety = "suspicious" } } } })
  t.eq(json.encode(older), json.encode { security_status = "unsafe", av_virus = "A;B", pickle_safety = "suspicious",
    pickle_imports = "numpy.load:suspicious" }, "huggingface.js shape")
  t.eq(json.encode(verdicts.columns(nil)), json.encode { security_status = "", av_virus = "", pickle_safety = "", pickle_imports = "" },
    "no status: empty columns")
  t.eq(verdicts.columns({ status = "safe", avScan = { status = "safe", message = "ignored" } }).av_virus, "",
    "a safe scan names no virus")
  t.eq(verdicts.expanded_tree_is_cheaper(nil), false, "unknown size: the plain tree")
  t.eq(verdicts.expanded_tree_is_cheaper(50), true, "one page of 50 against a tree page and a paths-info")
  t.eq(verdicts.expanded_tree_is_cheaper(100), true, "two pages of 50 against two requests")
  t.eq(verdicts.expanded_tree_is_cheaper(101), false, "three pages of 50 cost more")
end)

os.exit(t.run("test_units"))
