"""Reading YAML that someone else wrote: safe tags only, no duplicate keys, aliases bounded.

``yaml.safe_load`` builds no objects, but it keeps the last of two equal keys without a word (a
config that says ``lr`` twice trains with one of them), and it expands aliases in full, so a few
hundred bytes of nested anchors ("billion laughs") become billions of nodes. `load_yaml` composes
the node graph first, measures its size with every alias expanded (memoised per node, so the
measuring itself is linear in the file), refuses duplicate keys, and only then builds values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import yaml

from genmodels.errors import UserError

__all__ = ["YAMLError", "load_yaml", "MAX_NODES"]

#: Most nodes a document may have with its aliases expanded (a large sweep or config has thousands).
MAX_NODES = 1_000_000


class YAMLError(ValueError, UserError):
    """A YAML file that is invalid, ambiguous (a duplicate key) or too large once aliases are expanded."""


def load_yaml(source: Union[str, Path], where: str = "") -> Any:
    """The value of a YAML document (a path or its text), checked as the module docstring says."""
    if isinstance(source, Path):
        where = where or str(source)
        try:
            text = source.read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise YAMLError(f"{where}: cannot read it ({err.__class__.__name__}: {err})") from None
    else:
        text, where = source, where or "<yaml>"
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise YAMLError(f"{where}: not valid YAML ({first})") from None
    finally:
        loader.dispose()


def _check(root: yaml.Node, where: str) -> None:
    sizes: dict[int, int] = {}
    # Iterative post-order walk: deep nesting must not hit Python's recursion limit.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        if isinstance(node, yaml.MappingNode):
            _check_keys(node, where)
        size = 1 + sum(sizes.get(id(c), 0) for c in children)
        if size > MAX_NODES:
            raise YAMLError(f"{where}: the document expands to more than {MAX_NODES:,} values once its aliases (*name) "
                            "are expanded; refusing it (a nested-alias 'billion laughs' file?)")
        sizes[id(node)] = size


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_keys(node: yaml.MappingNode, where: str) -> None:
    seen: set[str] = set()
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue  # ``<<: *base`` merges are meant to be overridden by the keys beside them
        if key.value in seen:
            line = key.start_mark.line + 1
            raise YAMLError(f"{where}: key {key.value!r} appears twice in one mapping (line {line}); "
                            "YAML would keep only the last one: remove one of them")
        seen.add(key.value)


def check_yaml_text(text: str, where: str = "<yaml>") -> None:
    """The checks of `load_yaml` (duplicate keys, alias expansion) on a document, building nothing."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check(node, where)
    except yaml.YAMLError:
        pass  # not YAML: the caller's own loader reports it in its words
    finally:
        loader.dispose()


def install_config_checks() -> None:
    """Make jsonargparse (``genmodels fit --config``) run `check_yaml_text` before its own YAML loader.

    Its loader resolves values as the configs expect (``1e-4`` is a float); this only adds the
    refusals, so a config with a key twice or a billion-laughs file never reaches it.
    """
    from jsonargparse import get_loader, set_loader

    original = get_loader("yaml")
    if getattr(original, "_genmodels_checked", False):
        return

    def checked(text: str) -> Any:
        if isinstance(text, str) and ("\n" in text or "&" in text):  # a document, not a one-word CLI value
            check_yaml_text(text, "the config")
        return original(text)

    checked._genmodels_checked = True  # type: ignore[attr-defined]
    set_loader("yaml", checked, exceptions=(yaml.YAMLError, YAMLError))
