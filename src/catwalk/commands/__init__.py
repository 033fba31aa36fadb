"""The commands of the ``catwalk`` CLI, one module per area."""
