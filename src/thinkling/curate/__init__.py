"""The curate stage: raw traces -> a training view, op by op, with per-reason drop counts."""
