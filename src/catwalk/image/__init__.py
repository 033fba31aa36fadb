"""Images: rendering the model image's files, building, pushing and running them.

``dockerfile`` renders text (no side effects), ``prep`` writes it into the model folder,
``naming`` holds the image-name rules, and ``docker`` is the only module that talks to Docker.
"""
