"""Raises KeyboardInterrupt itself, or sends SIGINT to its own process (a real Ctrl-C), in the
place named by the environment variable INTERRUPT_IN: import, init, load_test_data, predict,
or sigint (a real Ctrl-C during import)."""

import os
import signal
import time

WHERE = os.environ.get("INTERRUPT_IN", "")


def interrupt(where):
    if where == WHERE:
        raise KeyboardInterrupt("the model gave up")


interrupt("import")
if WHERE == "sigint":
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(10)  # the signal arrives during this sleep


class Model:
    def __init__(self, path):
        interrupt("init")

    def load_test_data(self, path):
        interrupt("load_test_data")
        return [{"x": 1, "label": "a"}], [{"x": 1, "label": "a"}]

    def predict(self, X):
        interrupt("predict")
        return X
