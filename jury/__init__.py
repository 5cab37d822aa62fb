"""The LLM jury: jurors, jury and generation jobs, verdicts and their aggregation."""
