"""A neighbour module: model.py must be able to import it."""


def echo(record):
    return dict(record)
