"""Guard evaluation on the field's benchmarks: evaluation runs, metrics and the paper's table."""
