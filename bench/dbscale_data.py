"""The output folders bench/dbscale measures: seeded, reproducible scans in
hfscan's exact format (lua/hfscan/db/files.lua), written as plain text.

For a size of N rows, under DIR:
  a/             a completed scan of N rows (about 5 per repo; 1% FAILED_* rows,
                 each with its error; 5% of repos without target files, 0.3%
                 with a repo-level error)
  b/             the same Hub a week later, about 1% apart: 1.5% of repos at a
                 new commit (half their hashes changed, files added and
                 removed), 0.1% of repos gone, 0.1% new
  shard-K/       a/'s repos split as `--shard K/4` would (first 32 bits of the
                 SHA-256 of the id, modulo 4), each a completed scan
  interrupted/   a/ killed at its end: the same CSVs (hard links), the
                 progress file without its last 8 repos, whose rows are still
                 in the CSVs, metadata status "interrupted", and the manifest
                 of a run that ended at the last repo recorded
  params.json    what was generated, written last: a folder is reused when it
                 matches
No folder has a listing journal (a restart lists the Hub from its first page)
nor a database (bench/dbscale builds them with the hfscan it measures).

Every repo is drawn from its own random.Random, seeded by the seed and its
index, so b/ and the shards are written in one pass each without holding a
scan in memory.
"""
import hashlib
import json
import os
import random
import shutil

VERSION = 2  # 2: progress lines record the CSVs' sizes (hfscan's issue 16 format)
SHARDS = 4
UNFINISHED = 8  # repos in flight when the interrupted copy was killed
PROGRESS_COLUMNS = "repo_id,commit_hash,errors_end,basic_end,extended_end,unfinished_blocks"

TS_A = "20250301_120000"
TS_B = "20250308_120000"
ISO_A = "2025-03-01T12:00:00Z"
ISO_B = "2025-03-08T12:00:00Z"
THRESHOLD = 1000
EXTENSIONS = (".bin,.caffemodel,.coreml,.dlc,.ggmf,.ggml,.gguf,.ggjt,.h5,.keras,.llamafile,.mar,"
              ".mlmodel,.onnx,.pb,.pkl,.pt,.pt2,.pth,.ptl,.safetensors,.tflite")
EXTENDED = "hash,filename,repo_id,file_size,file_type,last_modified,download_url,hash_method,commit_hash"
GB = 1 << 30

ORGS = ["meta-llama", "mistralai", "google", "microsoft", "Qwen", "TheBloke", "bartowski",
        "stabilityai", "openai", "facebook", "sentence-transformers", "bert-base", "unsloth",
        "mlx-community", "lmstudio-community", "nvidia", "tiiuae", "EleutherAI", "bigscience",
        "deepseek-ai", "allenai", "intfloat", "BAAI", "cardiffnlp", "Helsinki-NLP", "timm",
        "openmmlab", "runwayml", "laion", "apple", "ibm-granite", "HuggingFaceTB"]
WORDS = ["llama", "mistral", "qwen2.5", "phi", "gemma", "bert", "roberta", "t5", "whisper",
         "vit", "clip", "sdxl", "flux", "mixtral", "falcon", "bloom", "opus-mt", "resnet50",
         "deberta-v3", "e5", "bge", "minilm", "yolo", "sam", "wav2vec2", "granite", "smollm"]
VARIANTS = ["base", "instruct", "chat", "7b", "13b", "70b", "small", "large", "tiny", "v2",
            "finetuned", "gguf", "awq", "gptq", "lora", "distilled", "uncased", "sft", "dpo"]
QUANTS = ["Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_1", "Q4_K_S", "Q4_K_M", "Q5_0",
          "Q5_1", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0", "F16", "BF16", "IQ2_XS", "IQ3_M", "IQ4_XS",
          "IQ4_NL"]
SINGLES = ["model.safetensors", "pytorch_model.bin", "model.onnx", "onnx/model.onnx",
           "onnx/model_quantized.onnx", "onnx/model_fp16.onnx", "tf_model.h5", "model.tflite",
           "openvino/openvino_model.bin", "coreml/model.mlmodel", "training_args.bin",
           "adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth",
           "flax_model.msgpack.bin", "model.pt", "weights/best.pt", "keras_model.keras"]
DIFFUSERS = ["unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
             "text_encoder/model.safetensors", "text_encoder_2/model.safetensors",
             "unet/diffusion_pytorch_model.fp16.safetensors",
             "vae/diffusion_pytorch_model.fp16.safetensors", "text_encoder/model.fp16.safetensors",
             "text_encoder_2/model.fp16.safetensors", "safety_checker/model.safetensors",
             "vae_decoder/model.onnx", "vae_encoder/model.onnx", "unet/model.onnx",
             "text_encoder/model.onnx", "sd_xl_base_1.0.safetensors"]


def rows_of(label):
    """'250k' -> 250000, '1M' -> 1000000, '5000' -> 5000."""
    text = label.strip()
    scale = {"k": 1000, "K": 1000, "m": 1000000, "M": 1000000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def shard_of(repo_id):
    """As hfscan.scan.scanner.shard_of: the first 32 bits of the id's SHA-256, modulo N."""
    return int.from_bytes(hashlib.sha256(repo_id.encode()).digest()[:4], "big") % SHARDS


def _count(rng):
    """Files in a repo: mostly 1 to 10, a tail of hundreds."""
    r = rng.random()
    if r < 0.70:
        return rng.randint(1, 3)
    if r < 0.95:
        return rng.randint(4, 10)
    if r < 0.995:
        return rng.randint(11, 40)
    return rng.randint(100, 400)


def _names(rng, n, model):
    """n distinct file names in one of the layouts repos have."""
    style = rng.random()
    if style < 0.25:  # sharded safetensors, often with the .bin twins
        names = [f"model-{k:05d}-of-{n:05d}.safetensors" for k in range(1, n + 1)]
        if n > 1 and rng.random() < 0.4:
            half = (n + 1) // 2
            names = names[:half] + [f"pytorch_model-{k:05d}-of-{n - half:05d}.bin"
                                    for k in range(1, n - half + 1)]
        return names
    if style < 0.45:  # gguf quantizations, split ones in folders
        names = [f"{model}-{q}.gguf" for q in QUANTS]
        k = 0
        while len(names) < n:
            q = QUANTS[k % len(QUANTS)]
            names.append(f"{q}/{model}-{q}-{k // len(QUANTS) + 1:05d}-of-00099.gguf")
            k += 1
        rng.shuffle(names)
        return names[:n]
    if style < 0.55:  # diffusers pipelines, checkpoints beyond
        names = DIFFUSERS[:]
        names += [f"checkpoints/step-{500 * k}/diffusion_pytorch_model.safetensors"
                  for k in range(1, n - len(names) + 1)]
        return names[:n]
    names = rng.sample(SINGLES, min(n, len(SINGLES)))
    names += [f"checkpoint-{1000 * k}/model.safetensors" for k in range(1, n - len(names) + 1)]
    return names


def _extension(name):
    return name.rsplit(".", 1)[1].lower()


def _file(rng, name):
    """(filename, hash, size, hash_method, error) of one file."""
    ext = _extension(name)
    if ext in ("gguf", "safetensors"):
        size = rng.randint(GB // 2, 12 * GB)
    else:
        size = rng.randint(10_000, 2 * GB)
    r = rng.random()
    if r < 0.0085:
        return (name, "FAILED_NO_HASH", size, "FAILED_NO_HASH",
                ("server_error", "HTTP 503: Service Unavailable"))
    if r < 0.01:
        size = rng.randint(5 * GB + 1, 60 * GB)
        return (name, "FAILED_TOO_LARGE", size, "FAILED_TOO_LARGE",
                ("file_too_large", f"{size} bytes is over --max-file-size 5.0 GB"))
    method = "api_metadata" if r < 0.95 else ("lfs_pointer" if r < 0.97 else "downloaded")
    return (name, "%064x" % rng.getrandbits(256), size, method, None)


def _date(rng, years=(2021, 2024)):
    return (f"{rng.randint(*years)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            f"T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.000Z")


def repo(seed, i):
    """Repo i of the seed's Hub: {id, commit, last_modified, files, error}."""
    rng = random.Random((seed << 40) + 2 * i)
    model = f"{rng.choice(WORDS)}-{rng.choice(VARIANTS)}"
    r = {"id": f"{rng.choice(ORGS)}/{model}-{i}", "commit": "%040x" % rng.getrandbits(160),
         "last_modified": _date(rng), "files": [], "error": None}
    kind = rng.random()
    if kind < 0.003:
        r["error"] = ("repository_disabled", "HTTP 403: Access to this resource is disabled.")
    elif kind >= 0.053:  # the others have no target files
        r["files"] = [_file(rng, name) for name in _names(rng, _count(rng), model)]
    return r


def week_later(seed, i, r):
    """Repo r a week later (None: gone): 1.5% at a new commit."""
    rng = random.Random((seed << 40) + 2 * i + 1)
    x = rng.random()
    if x < 0.001:
        return None
    if x >= 0.016:
        return r
    files = []
    for f in r["files"]:
        if rng.random() < 0.1:
            continue
        if rng.random() < 0.5:
            f = (f[0], "%064x" % rng.getrandbits(256), rng.randint(10_000, 2 * GB), "api_metadata", None)
        files.append(f)
    for k in range(rng.randint(1, 3) if rng.random() < 0.3 else 0):
        files.append(_file(rng, f"added-{rng.getrandbits(32):08x}/model.safetensors"))
    return {**r, "commit": "%040x" % rng.getrandbits(160), "last_modified": _date(rng, (2025, 2025)),
            "files": files}


class Output:
    """A file written through a buffer, with its size and SHA-256 (the manifest's)."""

    def __init__(self, path):
        self.path, self.f, self.parts, self.held = path, open(path, "wb"), [], 0
        self.sha, self.size, self.at = hashlib.sha256(), 0, 0

    def write(self, text):
        self.parts.append(text)
        self.held += len(text)
        self.at += len(text.encode())  # the file's size once this is written
        if self.held > 1 << 20:
            self.flush()

    def flush(self):
        data = "".join(self.parts).encode()
        self.f.write(data)
        self.sha.update(data)
        self.size += len(data)
        self.parts, self.held = [], 0

    def close(self):
        self.flush()
        self.f.close()


def _header(kind, p):
    lines = ["SCAN_PARAMETERS", f"download_threshold: {THRESHOLD}", "max_file_size_gb: 5.0",
             "rate_limit_delay: 0", "max_workers: 4", f"scan_start: {p['iso']}",
             f"target_extensions: {EXTENSIONS}", f"command_line: {p['command']}",
             "authenticated: false", f"output_format: {kind}", f"endpoint: {p['endpoint']}",
             "scripts: bundled"]
    if p.get("shard"):
        lines.append(f"shard: {p['shard']}")
    return "".join(f"# {line}\r\n" for line in lines) + "# END_PARAMETERS\r\n"


class Scan:
    """The four CSVs of one scan being written, and the counts its metadata holds."""

    def __init__(self, folder, ts, iso, endpoint, shard=None):
        os.makedirs(folder, exist_ok=True)
        self.folder, self.ts, self.iso, self.endpoint, self.shard = folder, ts, iso, endpoint, shard
        command = f"hfscan --output-dir {os.path.basename(folder)} --download-threshold {THRESHOLD}"
        if shard:
            command += f" --shard {shard}"
        p = {"iso": iso, "command": command, "endpoint": endpoint, "shard": shard}
        self.files = {}
        for kind, name, columns in (("errors", f"hf_scan_errors_{ts}.csv", "repo_id,filename,error_type,reason,timestamp"),
                                    ("basic", f"hf_model_hashes_basic_{ts}.csv", "hash,filename,repo_id"),
                                    ("extended", f"hf_model_hashes_extended_{ts}.csv", EXTENDED),
                                    ("progress", f"hf_scan_progress_{ts}.csv", PROGRESS_COLUMNS)):
            out = Output(os.path.join(folder, name))
            out.write((_header(kind, p) if kind != "progress" else "") + columns + "\r\n")
            self.files[kind] = out
        self.repos = self.rows = self.failed = 0
        self.methods, self.errors = {}, {}

    def add(self, r):
        rid, commit, lm = r["id"], r["commit"], r["last_modified"]
        url = f"{self.endpoint}/{rid}/resolve/{commit}/"
        ext, basic, errors = [], [], []
        if r["error"]:
            errors.append(f"{rid},,{r['error'][0]},{r['error'][1]},{self.iso}\r\n")
            self.errors[r["error"][0]] = self.errors.get(r["error"][0], 0) + 1
        for name, h, size, method, error in r["files"]:
            ext.append(f"{h},{name},{rid},{size},{_extension(name)},{lm},{url}{name},{method},{commit}\r\n")
            basic.append(f"{h},{name},{rid}\r\n")
            self.methods[method] = self.methods.get(method, 0) + 1
            if error:
                errors.append(f"{rid},{name},{error[0]},{error[1]},{self.iso}\r\n")
                self.errors[error[0]] = self.errors.get(error[0], 0) + 1
                self.failed += 1
        self.files["errors"].write("".join(errors))
        self.files["basic"].write("".join(basic))
        self.files["extended"].write("".join(ext))
        ends = ",".join(str(self.files[k].at) for k in ("errors", "basic", "extended"))
        self.files["progress"].write(f"{rid},{commit},{ends},0\r\n")
        self.repos += 1
        self.rows += len(r["files"])

    def metadata(self, status="completed", unfinished=0):
        m = {"authenticated": False, "download_threshold": THRESHOLD, "duration_seconds": 86400.0,
             "endpoint": self.endpoint, "errors_by_type": self.errors, "failed_files": self.failed,
             "files_by_method": self.methods, "hash_mismatches": 0, "max_file_size_gb": 5,
             "max_workers": 4, "rate_limit_delay": 0, "rate_limit_wait_seconds": 0,
             "rate_limited_responses": 0, "repos_listed_without_tree": 0,
             "requests_by_bucket": {"api": self.repos, "cdn": 0, "pages": 0, "resolvers": 0},
             "scan_end": self.iso, "scan_start": self.iso, "scan_timestamp": self.ts,
             "scripts": "bundled", "status": status, "target_extensions": EXTENSIONS.split(","),
             "total_errors": sum(self.errors.values()), "total_files_processed": self.rows,
             "total_models_scanned": self.repos - unfinished, "unfinished_repos": unfinished}
        if self.shard:
            m["shard"] = self.shard
        return m

    def close(self):
        for out in self.files.values():
            out.close()
        entries = {kind: (out.size, out.sha.hexdigest()) for kind, out in self.files.items()}
        finish(self.folder, self.ts, entries, self.metadata())


def _compact(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def finish(folder, ts, entries, metadata):
    """Writes the metadata and the manifest of the files in entries {kind: (size, sha256)}."""
    text = (_compact(metadata) + "\n").encode()
    with open(os.path.join(folder, f"scan_metadata_{ts}.json"), "wb") as f:
        f.write(text)
    entries = {**entries, "metadata": (len(text), hashlib.sha256(text).hexdigest())}
    names = {"errors": f"hf_scan_errors_{ts}.csv", "basic": f"hf_model_hashes_basic_{ts}.csv",
             "extended": f"hf_model_hashes_extended_{ts}.csv", "progress": f"hf_scan_progress_{ts}.csv",
             "metadata": f"scan_metadata_{ts}.json"}
    files = [{"kind": k, "name": names[k], "sha256": entries[k][1], "size": entries[k][0]}
             for k in ("errors", "basic", "extended", "progress", "metadata")]
    with open(os.path.join(folder, f"hf_scan_manifest_{ts}.json"), "w") as f:
        f.write(_compact({"files": files, "manifest_version": 1, "scan_timestamp": ts,
                          "written": metadata["scan_end"]}) + "\n")


def _file_sha(path, size=None):
    """The size and SHA-256 of path's first size bytes (all of it by default)."""
    size = os.path.getsize(path) if size is None else size
    sha, left = hashlib.sha256(), size
    with open(path, "rb") as f:
        while left > 0:
            block = f.read(min(1 << 20, left))
            if not block:
                break
            sha.update(block)
            left -= len(block)
    return size, sha.hexdigest()


def _interrupted(d, a):
    """a/'s scan killed before its last UNFINISHED repos were recorded."""
    os.makedirs(d, exist_ok=True)
    ts = a.ts
    with open(a.files["progress"].path, "rb") as f:
        lines = f.read().split(b"\r\n")[:-1]
    progress = os.path.join(d, f"hf_scan_progress_{ts}.csv")
    with open(progress, "wb") as f:
        f.write(b"".join(line + b"\r\n" for line in lines[:-UNFINISHED]))
    entries = {"progress": _file_sha(progress)}
    ends = lines[-UNFINISHED - 1].split(b",")[2:5]
    for kind, end in zip(("errors", "basic", "extended"), ends):
        name = os.path.basename(a.files[kind].path)
        os.link(a.files[kind].path, os.path.join(d, name))
        entries[kind] = _file_sha(os.path.join(d, name), int(end))
    meta = a.metadata("interrupted", UNFINISHED)
    finish(d, ts, entries, meta)


def params(seed, rows, endpoint):
    return {"version": VERSION, "seed": seed, "rows": rows, "endpoint": endpoint}


def ensure(d, seed, rows, endpoint, log=print):
    """The folders for rows rows under d, generated unless params.json matches."""
    wanted = params(seed, rows, endpoint)
    stamp = os.path.join(d, "params.json")
    try:
        with open(stamp) as f:
            found = json.load(f)
        if {k: found.get(k) for k in wanted} == wanted:
            return found
    except (OSError, ValueError):
        pass
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    log(f"generating {rows} rows in {d} ...")
    a = Scan(os.path.join(d, "a"), TS_A, ISO_A, endpoint)
    shards = [Scan(os.path.join(d, f"shard-{k}"), TS_A, ISO_A, endpoint, f"{k}/{SHARDS}")
              for k in range(SHARDS)]
    n = 0
    while a.rows < rows:
        r = repo(seed, n)
        a.add(r)
        shards[shard_of(r["id"])].add(r)
        n += 1
    for s in [a] + shards:
        s.close()
    _interrupted(os.path.join(d, "interrupted"), a)
    b = Scan(os.path.join(d, "b"), TS_B, ISO_B, endpoint)
    for i in range(n + n // 1000):
        r = repo(seed, i)
        later = week_later(seed, i, r) if i < n else r
        if later:
            b.add(later)
    b.close()
    found = {**wanted, "repos": n, "rows_a": a.rows, "rows_b": b.rows, "failed_a": a.failed}
    with open(stamp, "w") as f:
        json.dump(found, f)
    return found


def known_hashes(seed, repos, count):
    """count hashes of a/ (not FAILED_*), drawn with their own seed."""
    rng, out = random.Random(seed + 99), []
    while len(out) < count:
        files = [f for f in repo(seed, rng.randrange(repos))["files"] if not f[1].startswith("FAILED")]
        if files:
            out.append(rng.choice(files)[1])
    return out
