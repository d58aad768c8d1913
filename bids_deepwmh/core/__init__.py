"""The science, as plain functions on arrays and images (no Nipype)."""
