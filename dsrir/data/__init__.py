"""Training and evaluation data: CSV pairs, synthetic degradations, crops and augmentation, datasets, test sets.

Import from the submodules: ``degrade`` and ``pairs`` need only numpy and OpenCV, so the runtime's ``--degrade``
works on a device without PyTorch; the datasets and transforms need torch.
"""
