"""The CI/CD checks users run: test-model, test-server, test-image."""
