"""Guard training: blends, the LoRA and MiniLM trainers, training runs and the guard registry."""
