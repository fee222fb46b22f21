"""The eval stage: models x tasks x strategies -> accuracy and cost per level (results.json)."""
