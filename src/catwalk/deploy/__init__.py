"""Deployment targets: the files ``deploy-prep`` writes to run a model's image.

``compose`` renders a docker-compose.yml (pure text), ``prep`` writes it into the model folder.
"""
