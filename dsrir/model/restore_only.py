"""The network as exporters see it: one image in, the final image out."""

from __future__ import annotations

from torch import Tensor, nn


class RestoreOnly(nn.Module):
    """The final image only: DSRIR's forward also returns the intermediate images and variance maps, which neither
    an ONNX graph nor a TensorRT engine should carry."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        restored: Tensor = self.model.restore(image)  # type: ignore[operator]
        return restored
