"""Native model implementations for checkpoints transformers does not ship."""
