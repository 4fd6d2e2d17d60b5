"""Operators shared by the model, the exporters and the plugin tests."""

from dsrir.ops.patch_attention import PatchAttention, patch_attention

__all__ = ["PatchAttention", "patch_attention"]
