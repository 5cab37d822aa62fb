"""Training blends, LoRA and MiniLM guard trainers, the guard model registry (later issue)."""
