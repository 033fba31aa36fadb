"""The engines that run a scoring job: ``local`` (processes here), ``spark`` and ``ray``."""
