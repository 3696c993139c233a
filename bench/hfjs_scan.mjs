// bench/hfjs_scan.mjs: hfscan's job done with @huggingface/hub the way its
// documentation shows (listModels, listFiles, downloadFile), for bench/hfjs.
//
// usage: node hfjs_scan.mjs HUB_URL OUT.jsonl   (or HF_ENDPOINT / HFJS_OUT)
// Writes one JSON line per target file: {repo_id, filename, hash, method}.
// It must run where `import "@huggingface/hub"` resolves (bench/hfjs copies it
// next to its node_modules).
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { listModels, listFiles, downloadFile } from "@huggingface/hub";

const hubUrl = process.argv[2] ?? process.env.HF_ENDPOINT;
const out = process.argv[3] ?? process.env.HFJS_OUT;
if (!hubUrl || !out) {
  console.error("usage: node hfjs_scan.mjs HUB_URL OUT.jsonl");
  process.exit(2);
}
const CONCURRENCY = 4;
const TARGETS = new Set([".bin", ".caffemodel", ".coreml", ".dlc", ".ggmf", ".ggml", ".gguf",
  ".ggjt", ".h5", ".keras", ".llamafile", ".mar", ".mlmodel", ".onnx", ".pb", ".pkl", ".pt",
  ".pt2", ".pth", ".ptl", ".safetensors", ".tflite"]);

function isTarget(path) {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const dot = name.lastIndexOf(".");
  return dot > 0 && TARGETS.has(name.slice(dot).toLowerCase());
}

async function scanRepo(model, rows) {
  const repo = model.name;
  const revision = model.sha ?? "main"; // pin the commit the listing saw
  for await (const entry of listFiles({ repo, revision, recursive: true, hubUrl })) {
    if (entry.type !== "file" || !isTarget(entry.path)) continue;
    if (entry.lfs?.oid) { // LFS and Xet files: the tree gives the SHA-256
      rows.push({ repo_id: repo, filename: entry.path, hash: entry.lfs.oid, method: "lfs_oid" });
      continue;
    }
    try {
      // downloadFile puts the path into the URL as given, so names with '#',
      // '%' or '?' must be encoded by the caller.
      const path = entry.path.split("/").map(encodeURIComponent).join("/");
      const blob = await downloadFile({ repo, path, revision, hubUrl });
      const bytes = Buffer.from(await blob.arrayBuffer());
      rows.push({ repo_id: repo, filename: entry.path,
                  hash: createHash("sha256").update(bytes).digest("hex"), method: "downloaded" });
    } catch (err) { // gated repos: 401 on the download
      rows.push({ repo_id: repo, filename: entry.path, hash: "FAILED", method: String(err.message).slice(0, 80) });
    }
  }
}

const models = listModels({ hubUrl, sort: "downloads", additionalFields: ["sha"] });
const rows = [];
let failedRepos = 0;
// A pool of CONCURRENCY workers pulling from the one listing generator.
async function worker() {
  for (;;) {
    const next = await models.next();
    if (next.done) return;
    try {
      await scanRepo(next.value, rows);
    } catch (err) { // e.g. a disabled repo's tree answers 403
      failedRepos++;
      console.error(`${next.value.name}: ${err.message}`);
    }
  }
}
await Promise.all(Array.from({ length: CONCURRENCY }, worker));
writeFileSync(out, rows.map((r) => JSON.stringify(r) + "\n").join(""));
console.log(`${rows.length} rows, ${failedRepos} repos failed`);
