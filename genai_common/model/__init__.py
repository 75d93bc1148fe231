"""What a checkpoint IS, without judgement: ModelDir (reading only; problems recorded as data) and
its typed views (text, quant, memory, pipeline, vision), the hub cache, and what the loaders
read. The doctor's rules judge what this layer reads; nothing here judges."""

from genai_common.model.model_dir import (
    ModelDir,
    ModelPathError,
    Problem,
    TensorInfo,
    TokenizerInfo,
)

__all__ = ["ModelDir", "ModelPathError", "Problem", "TensorInfo", "TokenizerInfo"]
