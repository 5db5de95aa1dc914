"""jtcaug: data augmentation for network traffic classification, in JAX.

Reimplements Wang et al., "Data Augmentation for Traffic Classification" (PAM 2024).
Subpackages: ``jtcaug.aug`` (augmentations), ``jtcaug.data`` (datasets, folds),
``jtcaug.model`` (ResNet-1d), ``jtcaug.transformer``, ``jtcaug.backbones`` (models by name),
``jtcaug.train`` (training), ``jtcaug.evaluation`` (statistics).
"""

__version__ = "0.1.0"

# Feature order of the last axis of every sample, project-wide: x[..., SIZE | DIR | IAT].
SIZE, DIR, IAT = 0, 1, 2
N_FEATURES = 3
T_DEFAULT = 20
