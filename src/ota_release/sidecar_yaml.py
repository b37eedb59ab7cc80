"""YAML sidecars: a SafeLoader without aliases, duplicate keys or deep nesting.

Kept apart from :mod:`ota_release.sidecar` so that JSON sidecars never import PyYAML.
"""

from __future__ import annotations

from typing import Any

import yaml

from ota_release.sidecar import MAX_NESTING


class _SidecarLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases and deep nesting.

    Aliases are what makes a 64 KiB "billion laughs" document expensive; a sidecar never
    needs them. Duplicate keys are refused too, since YAML would silently keep the last.
    """

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
            if self._depth > MAX_NESTING:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_NESTING} levels", event.start_mark
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


def load_yaml(text: str) -> Any:
    """Parse one YAML document; every YAML error surfaces as ValueError."""
    try:
        return yaml.load(text, Loader=_SidecarLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from exc
