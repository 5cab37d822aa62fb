"""Guard prompt formats and their parsers, one module each; ``registry`` names them all."""
