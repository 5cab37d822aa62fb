"""LLM jury: jurors, jobs, verdicts and model backends (built in a later issue)."""
