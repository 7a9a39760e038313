"""Safe YAML for catalogue files and model cards: the C loader when there is one, no key twice, and aliases
(``*name``) that expand to little, so a small file cannot become a huge or endless structure."""
from __future__ import annotations


def load(text: str):
    """Safe YAML (the C loader when there is one) with no key twice and aliases that expand to little."""
    import yaml

    loader = _unique_key_loader()
    return yaml.load(text, Loader=loader.checking_aliases if "*" in text else loader)  # no '*': no alias


_LOADER = None
ALIAS_NODES = 100_000  # values that aliases (*name) may add beyond those written out: a bomb stops here


def _unique_key_loader():
    """A safe YAML loader that refuses a mapping with the same key twice (plain YAML keeps the last), and a
    document whose aliases would expand to a huge or endless structure (see :func:`_check_expansion`)."""
    global _LOADER
    if _LOADER is None:
        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        class UniqueKeyLoader(base):
            def construct_mapping(self, node, deep=False):
                seen = {}
                for key_node, _ in node.value:
                    key = self.construct_object(key_node, deep=True)
                    if key in seen:
                        raise DuplicateKeyError(key, seen[key], key_node.start_mark.line + 1)
                    seen[key] = key_node.start_mark.line + 1
                return super().construct_mapping(node, deep)

        class CheckingAliases(UniqueKeyLoader):
            def get_single_node(self):
                node = super().get_single_node()
                if node is not None:
                    _check_expansion(node)
                return node

        UniqueKeyLoader.checking_aliases = CheckingAliases
        _LOADER = UniqueKeyLoader
    return _LOADER


class DuplicateKeyError(ValueError):
    def __init__(self, key, first_line: int, line: int):
        self.key, self.first_line, self.line = key, first_line, line
        shown = repr(key) if len(repr(key)) <= 80 else repr(key)[:77] + "..."
        super().__init__(f"{shown} is defined twice, on lines {first_line} and {line}; keep one of them")


class AliasExpansionError(ValueError):
    """YAML whose aliases (``*name``) refer to their own anchor, or expand far beyond what is written."""


def _children(node) -> list:
    value = node.value
    if not isinstance(value, list):
        return []  # a scalar
    return [part for item in value for part in (item if isinstance(item, tuple) else (item,))]


def _check_expansion(root) -> None:
    """Refuse a node graph whose aliases loop back into themselves, or expand to more than ALIAS_NODES values
    beyond the distinct ones. Linear in the nodes written: each node's expanded size is counted, never built."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
        elif key not in sizes:
            if key in open_nodes:
                raise AliasExpansionError(f"the alias near line {node.start_mark.line + 1} refers to a value that "
                                          "contains it, which never ends; write the values out")
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    if sizes[id(root)] > len(sizes) + ALIAS_NODES:
        raise AliasExpansionError(
            f"its aliases (*name) would expand {len(sizes):,} values written into {sizes[id(root)]:,} (at most "
            f"{ALIAS_NODES:,} more than written are allowed); write the values out instead of repeating aliases")
