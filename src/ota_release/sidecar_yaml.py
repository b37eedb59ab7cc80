"""YAML sidecars: a SafeLoader without aliases, duplicate keys or deep nesting.

Kept apart from :mod:`ota_release.sidecar` so that JSON sidecars never import PyYAML. It
imports nothing of the sidecar module (the nesting limit is passed in), so the two form
no import cycle.
"""

from __future__ import annotations

from typing import Any

import yaml


class _SidecarLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases and deep nesting.

    Aliases are what makes a 64 KiB "billion laughs" document expensive; a sidecar never
    needs them. Duplicate keys are refused too, since YAML would silently keep the last.
    """

    max_nesting: int

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a sidecar", event.start_mark
            )
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise yaml.composer.ComposerError(
                None, None, "anchors (&name) are not allowed in a sidecar", event.start_mark
            )
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > self.max_nesting:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {self.max_nesting} levels", event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, *, max_nesting: int) -> Any:
    """Parse one YAML document nested at most ``max_nesting`` deep; YAML errors are ValueError."""
    try:
        loader = _SidecarLoader(text)  # reading the stream may already raise
        loader.max_nesting = max_nesting
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from exc
