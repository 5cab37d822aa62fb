"""Model backends, one module each; ``registry`` names them. This package imports nothing of
Django or torch: ``vllm_engine`` also runs in vLLM's own environment."""
