"""The images a test session leaves behind on a Docker engine that outlives it.

Removing a session's tags is not enough: the classic builder keeps a multi-stage build's
earlier stage (the requirements stage, hundreds of MB to GB for the zoo's models) as an
untagged image, a failed build keeps its last step, and an image whose tag a rebuild moved
keeps its registry digest. On CI's engine, which is kept from run to run, these added several
GB per run and, as a build cache, let one run's layers answer the next run's builds.
"""

from __future__ import annotations

import contextlib
from typing import Any

import docker


class Leftovers:
    """Untagged images made since this object was, that descend from one of the session's."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.before = self._dangling()

    def _dangling(self) -> set[str]:
        return {image["Id"] for image in self.client.api.images(filters={"dangling": True})}

    def image_ids(self, refs: list[str]) -> set[str]:
        """The image IDs of those of ``refs`` that exist (tags or IDs)."""
        ids = set()
        for ref in refs:
            with contextlib.suppress(docker.errors.ImageNotFound):
                ids.add(self.client.api.inspect_image(ref)["Id"])
        return ids

    def remove(self, ours: set[str]) -> list[str]:
        """Remove the new untagged images built on one of ``ours`` (image IDs); what it removed.

        Images from before the session, or built on other bases, are someone else's: kept.
        """
        removed = []
        for image_id in sorted(self._dangling() - self.before):
            try:
                chain = {layer["Id"] for layer in self.client.api.history(image_id)}
                if chain.isdisjoint(ours):
                    continue
                # force: a digest the push left is a reference `docker rmi ID` refuses to drop
                self.client.api.remove_image(image_id, force=True, noprune=False)
                removed.append(image_id)
            except docker.errors.ImageNotFound:
                continue  # went with another one's untagged parents
            except docker.errors.APIError as exc:  # pragma: no cover - clean-up must go on
                print(f"could not remove {image_id}: {exc}")
        return removed
