"""Language models: keras-hub causal LMs as policies, their fast functional forward pass, sampling and log-probs."""
