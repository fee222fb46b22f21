"""Students: tiny models built from scratch, any HF causal LM, and conversation rendering."""
