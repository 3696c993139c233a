-- Which files are model weights: the 22 extensions of the original scanner,
-- matched case-insensitively on the last component of the path.
local M = {}

M.EXTENSIONS = {
  ".bin", ".caffemodel", ".coreml", ".dlc", ".ggmf", ".ggml", ".gguf", ".ggjt", ".h5",
  ".keras", ".llamafile", ".mar", ".mlmodel", ".onnx", ".pb", ".pkl", ".pt", ".pt2", ".pth",
  ".ptl", ".safetensors", ".tflite",
}

local by_extension = {}
for _, ext in ipairs(M.EXTENSIONS) do by_extension[ext] = true end

-- The lower-case extension of a path's last component ("" when it has none).
function M.extension(path)
  local name = path:match("[^/]*$")
  local ext = name:match("^.+(%.[^.]+)$")
  return ext and ext:lower() or ""
end

function M.is_target(path)
  return by_extension[M.extension(path)] == true
end

-- file_type column: the extension without its dot, in lower case.
function M.file_type(path)
  return (M.extension(path):sub(2))
end

return M
