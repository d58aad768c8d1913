"""The learned WMH stage: network, working-space images, training, inference and model bundles."""
