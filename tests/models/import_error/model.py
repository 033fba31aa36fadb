import catwalk_tests_no_such_module  # noqa: F401


class Model:
    def __init__(self, path):
        pass
