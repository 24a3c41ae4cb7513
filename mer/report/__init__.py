"""The report stage's library: pooled scores, their spread over seeds, the paper's protocol, figures, the page."""
