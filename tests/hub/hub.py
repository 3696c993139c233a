#!/usr/bin/env python3
"""hfscan test hub: a local stand-in for the Hugging Face Hub HTTP API.

Usage: tests/hub/hub --port 8080      (see tests/hub/README.md for every flag)
"""
import argparse
import json
import os
import signal
import sys
import threading

import faults
import generate
import instrument
import names
import ratelimit
import server
import world


# --real: the Hub as hub-api.md section 12 describes it.  These flags default
# to None so that one given on the command line wins over --real's value.
REAL = {  # dest: (default, value under --real)
    "siblings_cut": (0, 25), "siblings_empty_rate": (0.0, 0.05),
    "many_files_rate": (0.0, 0.05), "broken_tree_rate": (0.0, 0.05),
    "broken_blobs_rate": (0.0, 0.05), "region_blocked_rate": (0.0, 0.03),
    "disabled_info_403": (False, True), "resolve_cache_307": (False, True),
    "hop_head_no_length": (False, True), "cdn_url_uses": (0, 1),
    "cut_downloads_rate": (0.0, 0.1), "listing_504_once": (False, True),
    "aligned_windows": (False, True),
}
SWITCH = argparse.BooleanOptionalAction     # --flag / --no-flag, None when not given


def parse_args(argv):
    p = argparse.ArgumentParser(prog="hub", description=__doc__.splitlines()[0])
    p.add_argument("--real", action="store_true",
                   help="turn on the section-12 behaviours below with realistic fractions")
    net = p.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1")
    net.add_argument("--port", type=int, default=0, help="0 picks a free port")
    net.add_argument("--cdn-host", default="127.0.0.2", help="LFS redirects go to this host")
    net.add_argument("--cdn-port", type=int, default=0)
    net.add_argument("--ready-file", help="JSON written atomically once both servers listen")
    w = p.add_argument_group("world")
    w.add_argument("--seed", type=int, default=1)
    w.add_argument("--models", type=int, default=40)
    w.add_argument("--world", help="load this JSON fixture instead of generating")
    w.add_argument("--dump-world", metavar="FILE", help="write the world as a fixture and exit")
    w.add_argument("--print-truth", action="store_true", help="print truth JSON lines and exit")
    w.add_argument("--truth-file", help="write truth JSON lines at startup")
    w.add_argument("--file-size", type=int, default=1024,
                   help="weights are between half and twice this many bytes")
    w.add_argument("--large-file-size", type=int, default=0,
                   help="add repo hfscan-test/large-file with two files of this size")
    w.add_argument("--big-repo-files", type=int, default=0,
                   help="add repo hfscan-test/big-repo with this many files")
    w.add_argument("--odd-names", action="store_true",
                   help="add hfscan-test/odd-names: names that are not UTF-8, control characters")
    w.add_argument("--many-files-rate", type=float, metavar="F",
                   help="this fraction of the random repos get 40-60 more files")
    r = p.add_argument_group("rate limits")
    r.add_argument("--quota-api", type=int, default=1000)
    r.add_argument("--quota-resolvers", type=int, default=5000)
    r.add_argument("--quota-pages", type=int, default=200)
    r.add_argument("--window", type=float, default=300.0, help="seconds")
    r.add_argument("--retry-after", action="store_true", help="add Retry-After to 429s")
    r.add_argument("--no-ratelimit-headers", action="store_true")
    r.add_argument("--aligned-windows", action=SWITCH,
                   help="windows are slices of the wall clock, not opened by a first request")
    r.add_argument("--html-429-rate", type=float, default=0.0, metavar="F",
                   help="this fraction of window-exhaustion 429s are HTML without RateLimit")
    r.add_argument("--no-hf-warning", action="store_true",
                   help="no x-hf-warning on answers to callers without a valid token")
    f = p.add_argument_group("faults and behaviour switches")
    f.add_argument("--latency-ms", type=float, default=0)
    f.add_argument("--fault-rate", type=float, default=0.0)
    f.add_argument("--fault-seed", type=int, default=0)
    f.add_argument("--cut-downloads", action="store_true")
    f.add_argument("--cut-downloads-always", action="store_true")
    f.add_argument("--cut-downloads-rate", type=float, metavar="F",
                   help="cut the first GET of this fraction of the files")
    f.add_argument("--broken-blobs", action="append", default=[], metavar="REPO_ID")
    f.add_argument("--broken-blobs-rate", type=float, metavar="F")
    f.add_argument("--cdn-mismatch", action="append", default=[], metavar="REPO_ID")
    f.add_argument("--git-mismatch", action="append", default=[], metavar="REPO_ID",
                   help="regular files of this repo are served with altered bytes")
    f.add_argument("--broken-tree", action="append", default=[], metavar="REPO_ID",
                   help="the tree endpoint of this repo answers 500")
    f.add_argument("--broken-tree-rate", type=float, metavar="F")
    f.add_argument("--broken-raw", action="append", default=[], metavar="REPO_ID",
                   help="the raw endpoint of this repo answers 500")
    f.add_argument("--listing-repeat", action="store_true")
    f.add_argument("--listing-default-limit", type=int, default=1000)
    f.add_argument("--listing-page-cap", type=int, default=1000, metavar="N",
                   help="listing pages hold at most N items")
    f.add_argument("--listing-504-once", action=SWITCH,
                   help="the first request for each listing page after the first answers 504")
    f.add_argument("--listing-max-limit", type=int, metavar="N",
                   help="a listing request with limit above N answers 504")
    f.add_argument("--listing-siblings-max-limit", type=int, metavar="N",
                   help="a listing request with siblings and limit above N answers 504")
    f.add_argument("--listing-fail-from-page", type=int, default=0, metavar="K",
                   help="listing pages K and later always answer 504")
    f.add_argument("--siblings-cut", type=int, metavar="N",
                   help="siblings hold only the first N paths of a repo")
    f.add_argument("--siblings-empty", action="append", default=[], metavar="REPO_ID")
    f.add_argument("--siblings-empty-rate", type=float, metavar="F")
    f.add_argument("--region-blocked", action="append", default=[], metavar="REPO_ID",
                   help="the files of this repo answer 403 (not available in your region)")
    f.add_argument("--region-blocked-rate", type=float, metavar="F")
    f.add_argument("--disabled-info-403", action=SWITCH,
                   help="model info of a disabled repo answers 403 too")
    f.add_argument("--revoke-token-after", type=int, default=0, metavar="N",
                   help="after N requests with a valid token, every token is refused as "
                        "invalid (a token revoked mid-scan)")
    f.add_argument("--rotate-token-file", metavar="PATH",
                   help="with --revoke-token-after: when the tokens are revoked, write a new "
                        "valid token of testuser into PATH (a browser login rotating it)")
    f.add_argument("--vanish-after", type=int, default=0, metavar="N",
                   help="after N API requests the API host stops answering: its port closes")
    f.add_argument("--other-quota-429", type=float, default=0.0, metavar="RATE",
                   help="this fraction of /api/ calls answer 429 from another quota, "
                        "while the bucket's RateLimit still shows r>0")
    f.add_argument("--gated-api", action="store_true",
                   help="old behaviour: gated metadata and trees need access too")
    f.add_argument("--gated-paths-info", action="store_true",
                   help="paths-info on gated repos needs access")
    f.add_argument("--resolve-cache-307", action=SWITCH,
                   help="regular files of public repos first answer a relative 307")
    f.add_argument("--resolve-cache-bucket", choices=("api", "resolvers"), default="api",
                   help="the rate-limit bucket of the resolve-cache hop")
    f.add_argument("--hop-head-no-length", action=SWITCH,
                   help="a HEAD on the resolve-cache hop has no content-length")
    f.add_argument("--cdn-url-ttl", type=float, default=3600.0, metavar="S",
                   help="lifetime of signed CDN URLs in seconds")
    f.add_argument("--cdn-url-uses", type=int, metavar="N",
                   help="each signed CDN URL answers N GETs, then 403 (0: no limit)")
    f.add_argument("--cdn-reject-auth", action="store_true",
                   help="the CDN answers 400 to requests carrying Authorization")
    i = p.add_argument_group("instrumentation")
    i.add_argument("--request-log", metavar="FILE")
    i.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    for name, (default, real) in REAL.items():
        if getattr(args, name) is None:
            setattr(args, name, real if args.real else default)
    if args.listing_page_cap < 1:
        p.error("--listing-page-cap must be at least 1")
    return args


def build_world(args):
    if args.world:
        return world.World.load(args.world)
    return world.World(generate.generate(args.seed, args.models, args.file_size,
                                         args.large_file_size, args.big_repo_files,
                                         args.many_files_rate, args.odd_names))


def write_truth(the_world, stream, args):
    for record in the_world.truth(faults.Faults(args, the_world)):
        stream.write(json.dumps(record, ensure_ascii=False) + "\n")


def warm_large_files(the_world, threshold=8 << 20):
    """Hash big files before announcing readiness.

    Their hashes are needed by the first metadata or resolve answer; computing
    them lazily would stall that request for seconds, past client timeouts.
    """
    for repo in the_world.all_repos():
        for f in repo.files.values():
            if f.size >= threshold:
                f.sha256()
                f.git_oid()


def write_atomically(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8", errors=names.ERRORS) as handle:
        handle.write(text)
    os.replace(tmp, path)


def start(args, the_world):
    hub = server.Hub(
        the_world, args,
        faults.Faults(args, the_world),
        ratelimit.FixedWindowLimiter({"api": args.quota_api, "resolvers": args.quota_resolvers,
                                      "pages": args.quota_pages}, args.window,
                                     aligned=args.aligned_windows),
        instrument.Instruments(args.request_log))
    try:
        api_server = server.Server((args.host, args.port), hub, "api")
        cdn_server = server.Server((args.cdn_host, args.cdn_port), hub, "cdn")
    except OSError as err:
        sys.exit("hub: cannot listen: %s (on systems without 127.0.0.2, try --cdn-host "
                 "127.0.0.1)" % err)
    hub.api_server = api_server
    hub.endpoint = "http://%s:%d" % (_url_host(args.host), api_server.server_port)
    hub.cdn_url = "http://%s:%d" % (_url_host(args.cdn_host), cdn_server.server_port)
    for srv in (api_server, cdn_server):
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
    return hub, (api_server, cdn_server)


def _url_host(host):
    return "[%s]" % host if ":" in host else host


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    the_world = build_world(args)
    if args.dump_world:
        write_atomically(args.dump_world, json.dumps(the_world.to_fixture(), indent=1,
                                                     ensure_ascii=False) + "\n")
        return 0
    if args.print_truth:
        try:
            sys.stdout.reconfigure(errors=names.ERRORS)
            write_truth(the_world, sys.stdout, args)
            sys.stdout.flush()
        except BrokenPipeError:         # e.g. piped into head
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if args.truth_file:
        with open(args.truth_file, "w", encoding="utf-8", errors=names.ERRORS) as handle:
            write_truth(the_world, handle, args)
    warm_large_files(the_world)
    hub, servers = start(args, the_world)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.ready_file:
        write_atomically(args.ready_file, json.dumps({
            "endpoint": hub.endpoint, "port": servers[0].server_port, "cdn": hub.cdn_url,
            "pid": os.getpid()}) + "\n")
    print("hub ready endpoint=%s cdn=%s" % (hub.endpoint, hub.cdn_url), flush=True)
    while not stop.wait(0.2):
        pass
    for srv in servers:
        srv.shutdown()
        srv.server_close()
    hub.instruments.close()
    if args.ready_file:
        try:
            os.remove(args.ready_file)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
