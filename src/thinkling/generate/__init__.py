"""The generate stage: problems of a task -> teacher traces (append-only, keyed, resumable)."""
