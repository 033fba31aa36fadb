"""A naive datetime fails format: date-time; the error must say what to return instead."""

import datetime


class Model:
    def __init__(self, path):
        pass

    def load_test_data(self, path):
        return [{"aware": False}], [{"when": "2024-05-01T12:30:00+00:00"}]

    def predict(self, X):
        when = datetime.datetime(2024, 5, 1, 12, 30)
        return {"when": when.replace(tzinfo=datetime.timezone.utc) if X["aware"] else when}
