"""The train stage: curated examples -> a student checkpoint (methods and losses in registries)."""
