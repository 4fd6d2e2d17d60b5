"""Training stages: ``python -m train`` (the paper's protocol); QAT and pruning build on it."""
