"""What the repository declares, loaded and validated once."""
