"""Quantisation-aware fine-tuning: fake-quantised convolutions (``fake_quant``), the fine-tuning step on the shared
training loop (``tuning``), the checkpoint, graphs and their parity check (``outputs``); ``python -m train.qat``
(``cli``) runs them in that order."""
