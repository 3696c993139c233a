-- Which requests the Hub counts as downloads of a repo (hub-api.md section 12):
-- a HEAD or GET on /resolve/ counts for every GGUF file, for diffusers'
-- top-level weights, and for the weight files that a library's own rule names
-- (huggingface.js packages/tasks/src/model-libraries.ts, "countDownloads"; by
-- default a library counts config.json and the like, which are not target
-- files). A scanner that asks /resolve/ for every file of such a repo inflates
-- the counts it ranks by, so the scan keeps those repos on the api route.
--
-- Only the parts of the rules that name target files are kept here: per
-- library, the extensions it counts, and the exact paths.
local M = {}

local EXTENSIONS = {
  audioseal = { "pth" }, bboxmaskpose = { "pth" }, birder = { "pt" }, clipscope = { "pt" },
  collectorvision = { "onnx" }, colipri = { "safetensors" }, cosyvoice = { "onnx", "pt" },
  cotracker = { "pth" }, cosmos = { "pt" }, ["depth-anything-v2"] = { "pth" },
  ["depth-pro"] = { "pt" }, ["diff-interpretation-tuning"] = { "pt" },
  ["diffusion-single-file"] = { "safetensors" }, eupe = { "pt" }, ["f5-tts"] = { "safetensors", "pt" },
  fasttext = { "bin" }, ["habibi-tts"] = { "safetensors" }, holomotion = { "onnx" },
  ["image-matching-models"] = { "safetensors" }, infinitetalk = { "safetensors" },
  intellifold = { "pt" }, ["ising-decoding"] = { "safetensors" }, keras = { "keras" },
  kronos = { "pt" }, lagernvs = { "pt" }, lightglue = { "pth" }, litert = { "tflite" },
  ["manas-1"] = { "pt" }, merlin = { "pt" }, ["ml-agents"] = { "onnx" }, ["ml-sharp"] = { "pt" },
  ["nv-medtech"] = { "pt", "safetensors" }, PaddleOCR = { "safetensors" },
  ["perception-encoder"] = { "pt" }, ["phantom-wan"] = { "pth" },
  ["robo-orchard-lab"] = { "safetensors" }, sam2 = { "pt" }, sana = { "pth" },
  sapiens = { "pt2", "pth", "onnx" }, sapiens2 = { "safetensors" }, ["sap-rpt-1-oss"] = { "pt" },
  seedvr = { "pth" }, ["self-forcing"] = { "pt" }, songbloom = { "pt" }, ["ssr-speech"] = { "pth" },
  tensorrt = { "onnx" }, terratorch = { "pt" }, ["tic-clip"] = { "pt" }, torchgeo = { "pt", "pth" },
  trellis = { "safetensors" }, trellis2 = { "safetensors" }, ultralytics = { "pt" },
  ["uni-3dar"] = { "pt" }, ["vfi-mamba"] = { "pkl" }, lvface = { "pt", "onnx" }, vui = { "pt" },
  videox_fun = { "safetensors" }, yolov10 = { "pt", "safetensors" }, yolov26 = { "pt", "safetensors" },
}

local PATHS = {
  asteroid = { "pytorch_model.bin" }, audiocraft = { "state_dict.bin" },
  champ = { "champ/motion_module.pth" }, chat_tts = { "asset/GPT.pt" },
  ["cxr-foundation"] = { "pax-elixr-b-text/saved_model.pb" }, ["derm-foundation"] = { "saved_model.pb" },
  fixer = { "pretrained/pretrained_fixer.pkl" }, flair = { "pytorch_model.bin" },
  ["geometry-crafter"] = { "point_map_vae/diffusion_pytorch_model.safetensors" },
  ["glm-tts"] = { "flow/flow.pt" }, ["glyph-byt5"] = { "checkpoints/byt5_model.pt" },
  hallo = { "hallo/net.pth" }, hermes = { "ckpt/hermes_final.pth" },
  ["hunyuan-dit"] = { "pytorch_model_ema.pt", "pytorch_model_distill.pt" },
  imstoucan = { "embedding_gan.pt", "Vocoder.pt", "ToucanTTS.pt" },
  ["infinite-you"] = { "infu_flux_v1.0/sim_stage1/image_proj_model.bin",
    "infu_flux_v1.0/aes_stage2/image_proj_model.bin" },
  ["tf-keras"] = { "saved_model.pb" }, ["lyra-2.0"] = { "checkpoints/image_encoder/model.pth" },
  liveportrait = { "liveportrait/landmark.onnx" }, ["mars5-tts"] = { "mars5_ar.safetensors" },
  ["mesh-anything"] = { "MeshAnything_350m.pth" }, ["mlx-image"] = { "model.safetensors" },
  moshi = { "tokenizer-e351c8d8-checkpoint125.safetensors" }, mtvcraft = { "vae/3d-vae.pt" },
  ["open-oasis"] = { "oasis500m.safetensors" },
  open_clip = { "open_clip_model.safetensors", "model.safetensors", "open_clip_pytorch_model.bin",
    "pytorch_model.bin" },
  ["open-sora"] = { "Open_Sora_v2.safetensors" }, ["pocket-tts"] = { "tts_b6369a24.safetensors" },
  refiners = { "model.safetensors" }, same = { "ckpt/SAME.pt", "pretrain/Attnq_pretrained_ckpt.pt" },
  ["stable-audio-tools"] = { "model.safetensors" }, soloaudio = { "soloaudio_v2.pt" },
  ["synthefy-migas"] = { "model.pt" }, ["tencent-song-generation"] = { "ckpt/songgeneration_base/model.pt" },
  timm = { "pytorch_model.bin", "model.safetensors" }, ["3dtopia-xl"] = { "model_vae_fp16.pt" },
}

local function as_set(lists)
  local sets = {}
  for library, list in pairs(lists) do
    sets[library] = {}
    for _, v in ipairs(list) do sets[library][v] = true end
  end
  return sets
end
local EXTENSION_SET, PATH_SET = as_set(EXTENSIONS), as_set(PATHS)

local function extension(path)
  return (path:match("%.([^./]+)$") or ""):lower()
end

-- Does a request on /resolve/ for this file count as a download of the repo?
-- model: the listing's fields (library_name).
function M.counted(model, path)
  local ext = extension(path)
  if ext == "gguf" then return true end
  local library = type(model.library_name) == "string" and model.library_name or nil
  if not library then return false end
  if library == "diffusers" then return not path:find("/", 1, true) end
  return (EXTENSION_SET[library] and EXTENSION_SET[library][ext])
    or (PATH_SET[library] and PATH_SET[library][path]) or false
end

-- Is any of these paths counted?
function M.any_counted(model, paths)
  for _, path in ipairs(paths) do
    if M.counted(model, path) then return true end
  end
  return false
end

return M
