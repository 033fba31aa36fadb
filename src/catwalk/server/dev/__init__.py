"""``catwalk serve --debug``: the development server (:mod:`.debug`) and its reloader
(:mod:`.reload`, which runs the debug server as a child and never imports the model)."""
