class Modle:  # misspelt on purpose
    def __init__(self, path):
        pass
