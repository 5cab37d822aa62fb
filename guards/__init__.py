"""Running a guard model and reading its answer: backends, prompt formats and their parsers,
runners, model loading and the conversation a guard judges. Depends on taxonomy and core only."""
