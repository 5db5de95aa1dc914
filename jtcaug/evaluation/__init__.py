"""numpy-side evaluation: classification metrics, campaign statistics, latent geometry."""
