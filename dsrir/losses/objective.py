"""The call every training objective answers, so the trainer can use any of them.

``loss(restored, variances, target, degraded) -> (total, terms)``: ``restored`` and ``variances`` hold one tensor per
stage, final stage first (``DSRIR.forward``'s order); ``total`` is what the trainer backpropagates and ``terms`` the
value of each term (and ``total``) for the log.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Stages = Sequence[torch.Tensor]
LossTerms = tuple[torch.Tensor, dict[str, float]]
