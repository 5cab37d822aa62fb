"""Benchmarks, guard runners, metrics, reports and the online ensemble (later issue)."""
