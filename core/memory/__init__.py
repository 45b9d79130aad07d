"""Two-layer memory: a hot Redis buffer of recent messages and cold Chroma summaries."""
