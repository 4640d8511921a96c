"""Settings of `cachetune export`: the one place each of them is declared (see cachetune.settings)."""

from pathlib import Path

from pydantic import Field, model_validator

from cachetune.settings import StageSettings


class ExportSettings(StageSettings):
    """Merge an adapter into its base, and/or export ONNX (fp32, int8) with a parity check against torch."""

    model: str = Field(description="Adapter folder or shipped adapter name, model folder or hub id.")
    output: Path = Field(description="Folder to write.")
    merge: bool = Field(False, description="A full sentence-transformers model with the adapter merged in.")
    onnx: bool = Field(False, description="onnx/model.onnx (dynamo exporter), checked against torch.")
    int8: bool = Field(False, description="onnx/model_int8.onnx: per-channel int8 of the weight MatMuls.")

    @model_validator(mode="after")
    def _something(self) -> "ExportSettings":
        if not (self.merge or self.onnx or self.int8):
            raise ValueError("nothing to export: pass --merge, --onnx and/or --int8")
        return self
