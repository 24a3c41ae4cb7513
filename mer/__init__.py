"""mer: a reproducible micro-expression recognition pipeline (MMNet and baselines, LOSO)."""
