"""Structured channel pruning to a FLOPs or parameter budget (``search``), then distillation from the unpruned
network (``distill``) on the shared training loop; ``python -m train.prune`` (``cli``) runs both."""
