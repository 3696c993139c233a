"""Deterministic world generation from a seed and a model count.

The first 13 repos are fixed archetypes (see README.md) so that even a small
`--models` covers every case a scanner must handle; the rest are random
fillers drawn from the seed.  The result is a fixture dict (world.py format),
which is what `--dump-world` writes.
"""
import datetime
import hashlib
import json
import random

import selection
import world

TARGET_EXTS = (".bin", ".caffemodel", ".coreml", ".dlc", ".ggmf", ".ggml", ".gguf", ".ggjt",
               ".h5", ".keras", ".llamafile", ".mar", ".mlmodel", ".onnx", ".pb", ".pkl", ".pt",
               ".pt2", ".pth", ".ptl", ".safetensors", ".tflite")

TEST_USER = "testuser"
OTHER_USER = "otheruser"
TOKENS = {
    "hf_testuser_granted": {"user": TEST_USER, "gated": "all", "pending": [], "role": "write"},
    "hf_other_nogated": {"user": OTHER_USER, "gated": [], "pending": ["gated-org/gated-manual"],
                         "role": "read"},
}

GITATTRIBUTES = "".join("*%s filter=lfs diff=lfs merge=lfs -text\n" % ext for ext in (
    ".7z", ".bin", ".ckpt", ".gguf", ".h5", ".joblib", ".keras", ".mlmodel", ".model", ".msgpack",
    ".npy", ".npz", ".onnx", ".ot", ".parquet", ".pb", ".pickle", ".pkl", ".pt", ".pth",
    ".safetensors", ".tflite", ".zip"))


def _hex(seed, repo_id, what, length):
    return hashlib.sha1(("%s:%s:%s" % (seed, repo_id, what)).encode()).hexdigest()[:length]


class _Builder:
    """Collects the files of one repo; sizes come from the shared rng."""

    def __init__(self, rng, file_size):
        self.rng = rng
        self.file_size = file_size
        self.files = []

    def weight(self, path, storage, size=None):
        if size is None:
            size = self.rng.randint(max(1, self.file_size // 2), max(1, self.file_size * 2))
        self.files.append({"path": path, "storage": storage, "size": size})

    def text(self, path, text):
        self.files.append({"path": path, "storage": "git", "text": text})

    def standard_texts(self, repo_id, readme=True, config=True, attrs=True, tokenizer=False):
        if readme:
            self.text("README.md", "---\nlicense: apache-2.0\n---\n# %s\n\n"
                      "Synthetic repository served by the hfscan test hub.\n" % repo_id)
        if config:
            self.text("config.json", json.dumps({"model_type": "synthetic", "hidden_size": 64,
                                                 "num_layers": 2}, indent=2) + "\n")
        if attrs:
            self.text(".gitattributes", GITATTRIBUTES)
        if tokenizer:
            self.text("tokenizer.json", json.dumps({"version": "1.0", "model": {
                "type": "WordLevel", "vocab": {"[UNK]": 0, "hello": 1, "world": 2}}}) + "\n")


def _sharded(b, repo_id):
    b.weight("model-00001-of-00002.safetensors", "lfs")
    b.weight("model-00002-of-00002.safetensors", "lfs")
    b.text("model.safetensors.index.json", json.dumps({
        "metadata": {"total_size": sum(f["size"] for f in b.files)},
        "weight_map": {"layer.0.weight": "model-00001-of-00002.safetensors",
                       "layer.1.weight": "model-00002-of-00002.safetensors"}}, indent=2) + "\n")
    b.weight("pytorch_model.BIN", "lfs")
    b.standard_texts(repo_id, tokenizer=True)


def _xet(b, repo_id):
    b.weight("model-q4_k_m.gguf", "xet")
    b.weight("model-f16.GGUF", "xet")
    b.weight("legacy.ggml", "xet")
    b.weight("old.ggmf", "lfs")
    b.weight("older.ggjt", "xet")
    b.weight("runner.llamafile", "xet")
    b.standard_texts(repo_id, config=False)


def _plain_git(b, repo_id):
    b.weight("tiny.pkl", "git")
    b.weight("graph.pb", "git")
    b.weight("small.h5", "git")
    b.weight("empty.pkl", "git", size=0)
    b.weight("model.tflite", "git")
    b.standard_texts(repo_id, readme=False)


def _nested(b, repo_id):
    b.weight("onnx/model.onnx", "lfs")
    b.weight("onnx/fp16/model.ONNX", "xet")
    b.weight("coreml/model.mlmodel", "lfs")
    b.weight("coreml/package/model.coreml", "lfs")
    b.weight("tf/saved_model/saved_model.pb", "git")
    b.text("tf/saved_model/variables/variables.index", "synthetic variables index\n")
    b.weight("keras/model.keras", "xet")
    b.weight("a/b/c/d/deep.pt", "lfs")
    b.standard_texts(repo_id)


def _tricky(b, repo_id):
    b.weight("weights with space.bin", "lfs")
    b.weight("a,b,c.pt", "lfs")
    b.weight('quote"name.pth', "git")
    b.weight("\u00fcn\u00efc\u00f8d\u00e9-\u6a21\u578b.safetensors", "xet")
    b.weight("=leading-equals.ptl", "lfs")
    b.weight("dir with space/nested,comma.PT2", "lfs")
    b.weight("it's.pkl", "git")
    b.weight("plus+and%percent#hash.onnx", "lfs")
    b.standard_texts(repo_id, config=False)


def _odd_names(b, repo_id):
    """--odd-names: names no CSV can hold as they are. A byte that is not
    UTF-8 is a lone surrogate here (names.py), as os.fsdecode makes it."""
    b.weight("bad-\udcff-byte.bin", "lfs")
    b.weight("latin1-caf\udce9.pt", "git")
    b.weight("dir-\udcfe/inner.safetensors", "lfs")
    b.weight("nul\x00byte.safetensors", "lfs")
    b.weight("line\nbreak.pth", "git")
    b.weight("carriage\rreturn.onnx", "lfs")
    b.weight("tab\tand-del\x7f.h5", "git")
    b.weight("c1-\u0085next.ptl", "xet")
    b.weight("literal\\x41.pkl", "git")
    b.weight("back\\slash.bin", "lfs")
    b.weight("+plus.gguf", "xet")
    b.weight("-minus.bin", "lfs")
    b.weight("@at.pt", "git")
    b.weight("'=quoted.pth", "lfs")
    b.weight("emoji-\U0001f917.safetensors", "lfs")
    b.standard_texts(repo_id, config=False)


def _no_targets(b, repo_id):
    b.standard_texts(repo_id, tokenizer=True)
    b.text("vocab.txt", "[PAD]\n[UNK]\nhello\nworld\n")
    b.text("notes.bin.txt", "a decoy: this name contains .bin but does not end with it\n")
    b.weight("weights.safetensors.md5", "git", size=33)


def _gated_auto(b, repo_id):
    b.weight("pytorch_model.bin", "lfs")
    b.weight("model.pt", "xet")
    b.weight("tiny.pkl", "git")
    b.standard_texts(repo_id, readme=False)


def _gated_manual(b, repo_id):
    b.weight("model.safetensors", "lfs")
    b.weight("optimizer.pt", "lfs")
    b.weight("extra.pkl", "git")
    b.standard_texts(repo_id, config=False)


def _private(b, repo_id):
    b.weight("model.safetensors", "lfs")
    b.weight("private.pkl", "git")
    b.weight("model.gguf", "xet")
    b.standard_texts(repo_id)


def _renamed(b, repo_id):
    b.weight("model.caffemodel", "lfs")
    b.weight("handler.mar", "lfs")
    b.weight("net.dlc", "xet")
    b.text("deploy.prototxt", "name: \"synthetic\"\n")
    b.standard_texts(repo_id, config=False)


def _mobile(b, repo_id):
    b.weight("model.TFLite", "lfs")
    b.weight("exported.pt2", "xet")
    b.weight("mobile.ptl", "git")
    b.weight("Model.Pth", "lfs")
    b.weight("model.h5", "lfs")
    b.weight("model.Keras", "git")
    b.standard_texts(repo_id)


def _disabled(b, repo_id):
    b.weight("model.bin", "lfs")
    b.standard_texts(repo_id, config=False, attrs=False)


# (repo id, builder, extra fields); index = position in download order.
ARCHETYPES = (
    ("hfscan-test/sharded-safetensors", _sharded, {"library_name": "transformers",
                                                   "pipeline_tag": "text-generation"}),
    ("hfscan-test/xet-gguf", _xet, {"library_name": "gguf", "pipeline_tag": "text-generation"}),
    ("hfscan-test/plain-git-weights", _plain_git, {"library_name": "keras"}),
    ("hfscan-test/nested-folders", _nested, {"library_name": "onnx"}),
    ("hfscan-test/tricky-names", _tricky, {}),
    ("hfscan-test/no-target-files", _no_targets, {"library_name": "transformers"}),
    ("gated-org/gated-auto", _gated_auto, {"gated": "auto", "library_name": "pytorch"}),
    ("gated-org/gated-manual", _gated_manual, {"gated": "manual", "library_name": "transformers"}),
    (TEST_USER + "/private-weights", _private, {"private": True}),
    ("hfscan-test/renamed-model", _renamed, {"library_name": "caffe"}),
    ("hfscan-test/mobile-misc", _mobile, {"library_name": "tflite"}),
    ("hfscan-test/more-sharded", _sharded, {"library_name": "transformers"}),
    ("hfscan-test/disabled-model", _disabled, {"disabled": True}),
)
RENAMES = {"legacy-model": "hfscan-test/renamed-model"}
LARGE_REPO, BIG_REPO = "hfscan-test/large-file", "hfscan-test/big-repo"
ODD_REPO = "hfscan-test/odd-names"
FIXED_IDS = frozenset(spec[0] for spec in ARCHETYPES) | {LARGE_REPO, BIG_REPO, ODD_REPO}


def is_filler(repo_id):
    """Random repos (index 13 and up), and any repo a fixture adds by hand."""
    return repo_id not in FIXED_IDS

FILLER_ORGS = ("acme-ai", "open-weights", "tiny-labs", "modelzoo", "edge-ml", "research-unit")
ADJECTIVES = ("tiny", "small", "base", "large", "quant", "distilled", "fast", "robust")
NOUNS = ("llama", "bert", "vision", "speech", "detector", "embedder", "segmenter", "tagger")
FILLER_DIRS = ("", "", "", "checkpoints/", "onnx/", "weights/v1/")


def _random_ext(rng):
    ext = rng.choice(TARGET_EXTS)
    roll = rng.random()
    if roll < 0.15:
        return ext.upper()
    if roll < 0.2:
        return ext[:2].upper() + ext[2:]
    return ext


def _filler(b, repo_id, rng):
    used = set()
    for _ in range(rng.randint(1, 4)):
        path = "%s%s%s" % (rng.choice(FILLER_DIRS), rng.choice(("model", "weights", "ckpt")),
                           _random_ext(rng))
        if path in used:
            continue
        used.add(path)
        storage = rng.choices(("lfs", "xet", "git"), weights=(50, 35, 15))[0]
        b.weight(path, storage)
    b.standard_texts(repo_id, config=rng.random() < 0.7, attrs=rng.random() < 0.8)


def _filler_identity(index, rng):
    name = "%s-%s-%d" % (rng.choice(ADJECTIVES), rng.choice(NOUNS), index)
    roll = rng.random()
    if roll < 0.05:
        return TEST_USER + "/" + name, {"private": True}
    if roll < 0.13:
        return rng.choice(FILLER_ORGS) + "/" + name, {"gated": "auto"}
    if roll < 0.18:
        return rng.choice(FILLER_ORGS) + "/" + name, {"gated": "manual"}
    return rng.choice(FILLER_ORGS) + "/" + name, {}


def _download_counts(count, rng):
    """Log-spaced from about 10^6 down to a few, strictly decreasing, unique."""
    raw = [int(10 ** (6 * (1 - i / max(1, count - 1))) * (1 + 0.1 * rng.random()))
           for i in range(count)]
    for i in range(count - 1, -1, -1):
        floor = 1 if i == count - 1 else raw[i + 1] + 1
        raw[i] = max(raw[i], floor)
    return raw


def _timestamp(rng, start, max_days):
    moment = start + datetime.timedelta(days=rng.randint(0, max_days),
                                        seconds=rng.randint(0, 86399))
    return moment, moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _repo(seed, repo_id, downloads, rng, build, extra, file_size):
    b = _Builder(rng, file_size)
    build(b, repo_id)
    created, created_text = _timestamp(rng, datetime.datetime(2021, 1, 1), 1200)
    _, modified_text = _timestamp(rng, created, 300)
    spec = {
        "id": repo_id, "_id": _hex(seed, repo_id, "_id", 24), "downloads": downloads,
        "likes": downloads // 1000 + rng.randint(0, 9), "trendingScore": rng.randint(0, 50),
        "createdAt": created_text, "lastModified": modified_text,
        "commit": _hex(seed, repo_id, "commit", 40), "gated": False, "private": False,
        "disabled": False, "pipeline_tag": None, "library_name": None, "files": b.files,
    }
    spec.update(extra)
    tags = (spec["library_name"], spec["pipeline_tag"], "license:apache-2.0")
    spec["tags"] = [t for t in tags if t]
    return spec


def generate(seed=1, models=40, file_size=1024, large_file_size=0, big_repo_files=0,
             many_files_rate=0.0, odd_names=False):
    rng = random.Random(seed)
    downloads = _download_counts(models, rng)
    repos = []
    for index in range(models):
        if index < len(ARCHETYPES):
            repo_id, build, extra = ARCHETYPES[index]
        else:
            repo_id, extra = _filler_identity(index, rng)
            build = lambda b, rid: _filler(b, rid, rng)  # noqa: E731 - binds the shared rng
        repos.append(_repo(seed, repo_id, downloads[index], rng, build, extra, file_size))
    top = downloads[0] if downloads else 0
    if large_file_size:
        repos.append(_repo(seed, LARGE_REPO, top + 2, rng,
                           lambda b, rid: _large(b, rid, large_file_size), {}, file_size))
    if big_repo_files:
        repos.append(_repo(seed, BIG_REPO, top + 1, rng,
                           lambda b, rid: _big(b, rid, big_repo_files), {}, file_size))
    if odd_names:  # after every other draw of the shared rng: the rest stays the same
        repos.append(_repo(seed, ODD_REPO, top + 3, rng, _odd_names, {}, file_size))
    # Last, so that the shared rng has already drawn everything else.
    _add_many_files(seed, repos[len(ARCHETYPES):models], many_files_rate, file_size)
    renames = {old: new for old, new in RENAMES.items() if any(r["id"] == new for r in repos)}
    return {
        "format": world.FORMAT, "seed": seed,
        "users": {
            TEST_USER: {"id": _hex(seed, TEST_USER, "user", 24), "fullname": "Test User",
                        "email": "testuser@example.invalid", "orgs": []},
            OTHER_USER: {"id": _hex(seed, OTHER_USER, "user", 24), "fullname": "Other User",
                         "email": "otheruser@example.invalid", "orgs": []},
        },
        "tokens": TOKENS, "renames": renames, "repos": repos,
    }


def _add_many_files(seed, fillers, rate, file_size):
    """--many-files-rate: some fillers get 40-60 more files (siblings get cut).

    Each draws from an rng of its own, seeded from the seed and its id, so
    the other repos, and its own first files, stay as they were.
    """
    chosen = selection.pick("many-files-rate", seed, [r["id"].lower() for r in fillers], rate)
    for spec in fillers:
        if spec["id"].lower() not in chosen:
            continue
        key = selection.rank("many-files", seed, spec["id"].lower())
        b = _Builder(random.Random(int(key, 16)), file_size)
        _many(b, b.rng.randint(40, 60))
        spec["files"] += b.files


def _many(b, count):
    """Weights in lfs/xet shards, some plain git pickles, and non-target json."""
    for i in range(count):
        roll = b.rng.random()
        if roll < 0.6:
            b.weight("shards/part-%03d.safetensors" % i, b.rng.choice(("lfs", "xet")))
        elif roll < 0.8:
            b.weight("pickles/part-%03d%s" % (i, b.rng.choice((".pkl", ".bin"))), "git")
        else:
            b.text("meta/part-%03d.json" % i, json.dumps({"part": i}) + "\n")


def _large(b, repo_id, size):
    b.weight("large.safetensors", "lfs", size=size)
    b.weight("large-plain.pkl", "git", size=size)
    b.standard_texts(repo_id, config=False)


def _big(b, repo_id, count):
    """Many files in a few folders, for tree pagination (1000 / 50 per page)."""
    for i in range(count):
        folder = "shards/group-%02d" % (i % 7)
        storage = "git" if i % 5 == 0 else "lfs"
        ext = ".pkl" if storage == "git" else ".safetensors"
        b.weight("%s/part-%05d%s" % (folder, i, ext), storage, size=64 + i % 200)
    b.standard_texts(repo_id, config=False)
