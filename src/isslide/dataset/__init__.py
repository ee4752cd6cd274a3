"""Labels, patch centres, the raw and ready-to-use datasets, and the training store."""
