"""The fold stage's library: the training loop, its inputs, augmentation and live metrics."""
