"""Safe YAML loading that remembers the line of every node.

Files come from a shared volume anyone may write to, so loading is defensive: a size cap before
parsing, strict UTF-8, no tags beyond plain data (never constructs Python objects), a cap on
aliases and on the *expanded* node count (an alias bomb is tiny on disk but huge once expanded),
a nesting cap, and duplicate keys are an error rather than "last one wins". Dates stay the strings
the user wrote, so every value is JSON-serialisable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from lakeflow_job_meta.errors import MetadataIssue
from lakeflow_job_meta.metadata.limits import MAX_FILE_BYTES, too_large_text
from lakeflow_job_meta.metadata.locations import FieldPath, LineMap, format_path

DEFAULT_MAX_ALIASES = 100
DEFAULT_MAX_NODES = 100_000
DEFAULT_MAX_DEPTH = 64

_CORE = "tag:yaml.org,2002:"
_MAP_TAG = _CORE + "map"
_SEQ_TAG = _CORE + "seq"
_STR_TAG = _CORE + "str"
TOP_LEVEL_EXPECTED = "expected a mapping with a 'modules' list, or a list of sources (control-table rows)"
TOP_LEVEL_MESSAGE = "the top level must be a mapping with a 'modules' list, or a list of sources"
_MERGE_TAG = _CORE + "merge"
_SCALAR_TYPE_NAMES = {
    _CORE + "int": "an integer",
    _CORE + "float": "a number",
    _CORE + "bool": "a boolean",
    _CORE + "null": "null",
    _CORE + "timestamp": "a date",
}


@dataclass(frozen=True)
class YamlLimits:
    """Bounds on what one file may cost to load."""

    max_bytes: int = MAX_FILE_BYTES
    max_aliases: int = DEFAULT_MAX_ALIASES
    max_nodes: int = DEFAULT_MAX_NODES
    max_depth: int = DEFAULT_MAX_DEPTH


@dataclass(frozen=True)
class LoadedYaml:
    """A parsed file: its top level (a mapping, or a list of control-table rows) and the line of
    every node in it."""

    data: dict[str, Any] | list[Any]
    lines: LineMap


class _Refused(Exception):
    """Loading stops: the file breaks a limit or cannot be parsed."""

    def __init__(self, line: int, message: str, path: FieldPath = ()):
        super().__init__(message)
        self.line = line
        self.message = message
        self.path = path


def _display_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _unsupported_tag_message(tag: str) -> str:
    return f"unsupported YAML tag '{_display_tag(tag)}': only plain data is allowed"


_TAGGED_KINDS = {_CORE + "bool": "a boolean", _CORE + "int": "an integer", _CORE + "float": "a number"}


def _core_scalar(constructor: SafeConstructor, node: ScalarNode) -> tuple[Any, str | None]:
    """A scalar's value as this loader keeps it (dates stay the text written: JSON has no date
    type), and the problem that makes it unacceptable, if any. One reading for the node builder,
    which reports the problem at the node's line, and the event tier, which steps aside."""
    tag = node.tag
    if tag in (_STR_TAG, _CORE + "timestamp"):
        return node.value, None
    if tag == _CORE + "null":
        return None, None
    if tag not in _TAGGED_KINDS:
        return None, _unsupported_tag_message(tag)
    # An explicit tag (``!!bool maybe``) reaches the constructors with any text at all.
    try:
        if tag == _CORE + "bool":
            return constructor.construct_yaml_bool(node), None
        if tag == _CORE + "int":
            return constructor.construct_yaml_int(node), None
        value = constructor.construct_yaml_float(node)
    except (KeyError, ValueError) as error:
        if tag == _CORE + "int" and "limit" in str(error):  # int() refuses over 4300 digits
            return None, f"integer of {len(node.value)} characters is too large"
        return None, f"'{node.value}' is tagged {_display_tag(tag)} but is not {_TAGGED_KINDS[tag]}"
    return value, None if math.isfinite(value) else f"'{node.value}' is not a finite number"


class _NodeBuilder(SafeConstructor):
    """Builds plain Python values from a composed node graph, recording the start line of every
    mapping entry, sequence item and scalar in a :class:`LineMap`. PyYAML's own constructor is
    used only for core scalars. Mixed into a pure-Python and a libyaml loader (both are
    ``SafeConstructor``s, so the loader's MRO is unchanged)."""

    limits: YamlLimits
    lines: LineMap
    issues: list[tuple[int, FieldPath, str]]

    def _start(self, limits: YamlLimits) -> None:
        self.limits = limits
        self.aliases = 0
        self.lines = LineMap()
        self.issues = []

    def build(self, root: Node) -> Any:
        self._check_expanded_size(root)
        self.lines.record((), _line(root))
        return self._build(root, ())

    def _check_expanded_size(self, root: Node) -> None:
        """Measure the document as if every alias were copied: node count and nesting depth
        (an alias can nest a shallow anchor deeper), refusing recursive aliases."""
        measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)
        in_progress: set[int] = set()

        def measure(node: Node, depth: int) -> tuple[int, int]:
            if id(node) in in_progress:
                raise _Refused(_line(node), "recursive alias: a node contains itself")
            if id(node) not in measured:
                in_progress.add(id(node))
                children: list[Node] = []
                if isinstance(node, SequenceNode):
                    children = list(node.value)
                elif isinstance(node, MappingNode):
                    children = [part for pair in node.value for part in pair]
                parts = [measure(child, depth + 1) for child in children]
                in_progress.discard(id(node))
                measured[id(node)] = (1 + sum(p[0] for p in parts), 1 + max((p[1] for p in parts), default=0))
            total, height = measured[id(node)]
            if depth + height - 1 > self.limits.max_depth:
                raise _Refused(_line(node), f"nested deeper than {self.limits.max_depth} levels")
            if total > self.limits.max_nodes:
                raise _Refused(
                    _line(root),
                    f"expands to more than {self.limits.max_nodes} nodes (alias bomb or oversized document)",
                )
            return total, height

        measure(root, 0)

    def _build(self, node: Node, path: FieldPath) -> Any:
        self.lines.record(path, _line(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ_TAG:
                return self._unsupported_tag(node, path)
            return [self._build(child, (*path, i)) for i, child in enumerate(node.value)]
        if isinstance(node, MappingNode) and node.tag == _MAP_TAG:
            result: dict[str, Any] = {}
            for key, key_line, value_node in self._entries(node, path):
                self.lines.record((*path, key), key_line)
                result[key] = self._build(value_node, (*path, key))
            return result
        return self._unsupported_tag(node, path)

    def _entries(self, node: MappingNode, path: FieldPath) -> list[tuple[str, int, Node]]:
        """Key, key line and value node of every entry; ``<<`` merges fill in keys the mapping
        does not set itself. Duplicate keys are reported with both lines."""
        own: dict[str, tuple[int, Node]] = {}
        merged: dict[str, tuple[int, Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if not (isinstance(source, MappingNode) and source.tag == _MAP_TAG):
                        self.issues.append(
                            (_line(key_node), path, "'<<' must merge a mapping or a list of mappings")
                        )
                        continue
                    for merged_key, key_line, merged_value in self._entries(source, path):
                        merged.setdefault(merged_key, (key_line, merged_value))
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in own:
                first = own[key][0]
                self.issues.append(
                    (_line(key_node), path, f"duplicate key '{key}' (lines {first} and {_line(key_node)})")
                )
                continue
            own[key] = (_line(key_node), value_node)
        combined = {**merged, **own}
        return [(key, line, value) for key, (line, value) in combined.items()]

    def _key(self, node: Node, path: FieldPath) -> str | None:
        if not isinstance(node, ScalarNode):
            self.issues.append((_line(node), path, "mapping keys must be plain strings"))
            return None
        if node.tag != _STR_TAG:
            kind = _SCALAR_TYPE_NAMES.get(node.tag)
            if kind is None:
                self._unsupported_tag(node, path)
            else:
                self.issues.append(
                    (_line(node), path, f"key '{node.value}' is read as {kind}, not a string; quote it")
                )
            return None
        return str(node.value)

    def _scalar(self, node: ScalarNode, path: FieldPath) -> Any:
        value, problem = _core_scalar(self, node)
        if problem is not None:
            self.issues.append((_line(node), path, problem))
        return value

    def _unsupported_tag(self, node: Node, path: FieldPath) -> None:
        self.issues.append((_line(node), path, _unsupported_tag_message(node.tag)))
        return None


class TrackingLoader(_NodeBuilder, yaml.SafeLoader):
    """Pure-Python SafeLoader that counts aliases while composing (refusing an alias bomb early,
    at the line of the alias) before building. Gives every message."""

    def __init__(self, text: str, limits: YamlLimits):
        yaml.SafeLoader.__init__(self, text)
        self._start(limits)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > self.limits.max_aliases:
                # types-PyYAML leaves Parser.peek_event unannotated (an alias event, with its mark).
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _Refused(mark.line + 1, f"more than {self.limits.max_aliases} aliases (*name)")
        return super().compose_node(parent, index)


# libyaml, shipped in the pyyaml wheels; None when PyYAML was built without it.
_CSafeLoader: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)


def _shape(root: Node) -> tuple[int, int, int]:
    """Alias uses (a node reached again), node count and depth (root at 0) of a composed graph,
    in one iterative walk."""
    seen: set[int] = set()
    uses = depth = 0
    stack = [(root, 0)]
    while stack:
        node, level = stack.pop()
        if id(node) in seen:
            uses += 1
            continue
        seen.add(id(node))
        depth = max(depth, level)
        if isinstance(node, SequenceNode):
            stack.extend((child, level + 1) for child in node.value)
        elif isinstance(node, MappingNode):
            stack.extend((part, level + 1) for pair in node.value for part in pair)
    return uses, len(seen), depth


class _CachedResolver(Resolver):
    """libyaml's parser asks the Python resolver for the tag of every scalar (regex matches);
    a file repeats the same keys and values thousands of times, and the answer depends only on
    the value and whether it was quoted. Mixed in before the loader, whose MRO places its own
    ``Resolver`` after the parser and constructor."""

    _resolved: dict[tuple[Any, str, Any], str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is not ScalarNode:
            return _resolve(super(), kind, value, implicit)
        key = (kind, value, implicit)
        tag = self._resolved.get(key)
        if tag is None:
            tag = _resolve(super(), kind, value, implicit)
            if len(self._resolved) < 100_000:
                self._resolved[key] = tag
        return tag


def _resolve(resolver: Any, kind: Any, value: Any, implicit: Any) -> str:
    """``BaseResolver.resolve``, which types-PyYAML leaves unannotated: it returns a tag."""
    tag: str = resolver.resolve(kind, value, implicit)
    return tag


def _load_with_libyaml(content: str, limits: YamlLimits) -> LoadedYaml | None:
    """The happy path through libyaml's composer (about 4x faster; its nodes keep their line
    marks). None whenever anything is off (a syntax error, a limit, a bad value): the pure-Python
    loader then runs and words every message exactly as it always has."""
    if _CSafeLoader is None or "\t" in content or "!" in content or "?" in content:
        # libyaml accepts tabs in places PyYAML refuses ("v\tariables:"), reads an empty tag
        # ("k: !") as '' where PyYAML reads null, and takes a '?' inside a plain scalar of a flow
        # collection ("{0?name: x}") as part of it where PyYAML refuses it: such a file must get
        # PyYAML's answer, so it takes the pure-Python path (most files never get here: the
        # event tier answers them).
        return None

    class _CTrackingLoader(_CachedResolver, _NodeBuilder, yaml.CSafeLoader):  # is _CSafeLoader
        pass

    loader = _CTrackingLoader(content)
    loader._start(limits)
    try:
        root = loader.get_single_node()
        if not (isinstance(root, MappingNode) and root.tag == _MAP_TAG):
            return None
        uses, nodes, depth = _shape(root)
        if uses > limits.max_aliases:
            return None
        if uses:
            data = loader.build(root)  # measures the expanded size
        else:  # without aliases the graph is a tree: its size is its node count
            if nodes > limits.max_nodes or depth > limits.max_depth:
                return None
            loader.lines.record((), _line(root))
            data = loader._build(root, ())
    except (yaml.YAMLError, _Refused, RecursionError, ValueError):
        return None
    finally:
        loader.dispose()
    if loader.issues:
        return None
    return LoadedYaml(data, loader.lines)


_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()
_STEP_ASIDE = object()  # a value the event tier leaves to the node-based loaders
_MEMO_SIZE = 100_000
_plain_scalars: dict[tuple[str, Any], tuple[str, Any]] = {}  # (value, implicit) -> (tag, value)


def _plain_scalar(text: str, implicit: Any) -> tuple[str, Any]:
    """The tag the composer gives an untagged scalar, and the value :meth:`_NodeBuilder._scalar`
    builds from it, or ``_STEP_ASIDE`` where that records an issue (a huge integer, a non-finite
    number, an unsupported or key-only tag such as ``<<``). Memoised: the resolver runs regexes,
    and a file repeats its keys and its ``true``, ``1`` and ``null`` thousands of times."""
    memo = (text, implicit)
    known = _plain_scalars.get(memo)
    if known is not None:
        return known
    tag = _resolve(_RESOLVER, ScalarNode, text, implicit)
    value, problem = _core_scalar(_CONSTRUCTOR, ScalarNode(tag, text))
    if problem is not None:
        value = _STEP_ASIDE
    if len(_plain_scalars) < _MEMO_SIZE:
        _plain_scalars[memo] = (tag, value)
    return tag, value


def _load_from_events(content: str, limits: YamlLimits) -> LoadedYaml | None:
    """The fastest tier: plain values and the :class:`LineMap` built straight from libyaml's
    events, with no node graph (composing one costs about 4x more). It answers only a single
    document whose top level is a mapping or a list, whose every key is a distinct string, every
    scalar a core value and every tag implicit, within the node and depth limits; then values
    and lines are those :class:`_NodeBuilder` builds. Anything else (an anchor or alias, a ``<<``
    merge, a duplicate or non-string key, an explicit tag, a limit, an error) answers None: the
    node-based loaders then answer and word every message as they always have."""
    if _CSafeLoader is None or "\t" in content:  # the tab rule of _load_with_libyaml
        return None
    # libyaml reads '?' inside a plain scalar of a flow collection ("{0?name: x}") as part of
    # it, PyYAML as its end, so a flow collection whose text holds a '?' is not answered. Marks
    # count characters as str does, except a byte order mark.
    if "?" in content and "\ufeff" in content:
        return None
    parser = _CSafeLoader(content)
    try:
        return _walk_events(parser.get_event, limits, content if "?" in content else None)
    except Exception:  # any surprise: the node-based loaders answer instead
        return None
    finally:
        parser.dispose()


def _walk_events(get_event: Any, limits: YamlLimits, question_text: str | None) -> LoadedYaml | None:
    """The loop of :func:`_load_from_events` (None: step aside). ``question_text`` is the text
    when it holds a '?', for the flow collection check."""
    scalar_event, mapping_start, sequence_start = (
        yaml.ScalarEvent,
        yaml.MappingStartEvent,
        yaml.SequenceStartEvent,
    )
    collection_end = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    if _RESOLVER.yaml_path_resolvers:  # tags that depend on where a node is: none in SafeLoader
        return None
    resolvers = _RESOLVER.yaml_implicit_resolvers
    every_text_resolves = None in resolvers
    memo_get, plain_scalar, step_aside, str_tag = _plain_scalars.get, _plain_scalar, _STEP_ASIDE, _STR_TAG

    if type(get_event()) is not yaml.StreamStartEvent or type(get_event()) is not yaml.DocumentStartEvent:
        return None
    event = get_event()
    kind = type(event)
    if (kind is not mapping_start and kind is not sequence_start) or event.anchor is not None:
        return None
    if event.tag is not None:
        # Even the non-specific '!': libyaml reads an empty '!' scalar as quoted, PyYAML as plain.
        return None
    lines: dict[FieldPath, int] = {(): event.start_mark.line + 1}
    root: Any = {} if kind is mapping_start else []
    path: FieldPath = ()
    container, is_map = root, kind is mapping_start
    key: str | None = None  # in a mapping: the key whose value comes next
    keys = 0  # nodes: every key, and one per line recorded (root, mapping values, list items)
    stack: list[tuple[Any, FieldPath, bool]] = []
    child_depth = 1  # depth of the current container's children (the root is at 0)
    max_depth = limits.max_depth
    flow_depth, flow_start = (1, event.start_mark.index) if event.flow_style else (0, 0)
    while True:
        event = get_event()
        kind = type(event)
        if kind is scalar_event:
            if event.anchor is not None or event.tag is not None:
                return None
            text = event.value
            implicit = event.implicit
            # Quoted, or plain with a first character no implicit resolver claims: a string.
            resolved = (
                (memo_get((text, implicit)) or plain_scalar(text, implicit))
                if implicit[0] and (every_text_resolves or not text or text[0] in resolvers)
                else None
            )
            if not is_map:
                item_path: FieldPath = (*path, len(container))
                lines[item_path] = event.start_mark.line + 1
                if resolved is None:
                    container.append(text)
                elif resolved[1] is step_aside:
                    return None
                else:
                    container.append(resolved[1])
            elif key is not None:
                if resolved is None:
                    container[key] = text
                elif resolved[1] is step_aside:
                    return None
                else:
                    container[key] = resolved[1]
                key = None
            elif (resolved is not None and resolved[0] != str_tag) or text in container:
                return None  # a key that is not a string (a number, a date, '<<'), or a duplicate
            else:
                key = text
                keys += 1
                key_path: FieldPath = (*path, key)
                lines[key_path] = event.start_mark.line + 1
        elif kind is mapping_start or kind is sequence_start:
            if event.anchor is not None or event.tag is not None:
                return None
            child: Any = {} if kind is mapping_start else []
            if not is_map:
                child_path: FieldPath = (*path, len(container))
                lines[child_path] = event.start_mark.line + 1
                container.append(child)
            elif key is not None:
                child_path = (*path, key)
                container[key] = child
                key = None
            else:
                return None  # a mapping or list as a key
            stack.append((container, path, is_map))
            container, path, is_map = child, child_path, kind is mapping_start
            child_depth += 1
            if event.flow_style:
                if not flow_depth:
                    flow_start = event.start_mark.index
                flow_depth += 1
        elif kind in collection_end:
            if container and child_depth > max_depth:
                return None  # its children are nested too deep
            if flow_depth:
                flow_depth -= 1
                if (
                    not flow_depth
                    and question_text
                    and "?" in question_text[flow_start : event.end_mark.index]
                ):
                    return None
            if not stack:
                break
            container, path, is_map = stack.pop()
            child_depth -= 1
        else:  # an alias, or anything unforeseen
            return None
    if len(lines) + keys > limits.max_nodes:
        return None
    if type(get_event()) is not yaml.DocumentEndEvent or type(get_event()) is not yaml.StreamEndEvent:
        return None  # another document follows
    return LoadedYaml(root, LineMap(lines))


def _decode(raw: bytes, file: str) -> str | MetadataIssue:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return MetadataIssue(
            f"{file}:{line}", "", f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}"
        )


def load_yaml(
    content: str | bytes, file: str, limits: YamlLimits | None = None
) -> LoadedYaml | list[MetadataIssue]:
    """Parse one YAML document into a mapping plus its :class:`LineMap`, or the issues that stop it.

    ``file`` is only used in messages (``file:LINE``).
    """
    limits = limits or YamlLimits()
    size = len(content) if isinstance(content, bytes) else len(content.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        return [MetadataIssue(f"{file}:1", "", too_large_text(size, limits.max_bytes))]
    if isinstance(content, bytes):
        decoded = _decode(content, file)
        if isinstance(decoded, MetadataIssue):
            return [decoded]
        content = decoded
    fast = _load_from_events(content, limits)
    if fast is None:
        fast = _load_with_libyaml(content, limits)
    if fast is not None:
        return fast
    loader: TrackingLoader | None = None
    try:
        loader = TrackingLoader(content, limits)
        root = loader.get_single_node()
        if root is None:
            return [MetadataIssue(f"{file}:1", "", f"file is empty: {TOP_LEVEL_EXPECTED}")]
        if not (
            (isinstance(root, MappingNode) and root.tag == _MAP_TAG)
            or (isinstance(root, SequenceNode) and root.tag == _SEQ_TAG)
        ):
            return [MetadataIssue(f"{file}:{_line(root)}", "", TOP_LEVEL_MESSAGE)]
        data = loader.build(root)
    except _Refused as exc:
        return [MetadataIssue(f"{file}:{exc.line}", format_path(exc.path), exc.message)]
    except yaml.reader.ReaderError as exc:
        line = content[: exc.position].count("\n") + 1
        return [
            MetadataIssue(f"{file}:{line}", "", f"invalid YAML: unacceptable character #x{exc.character:04x}")
        ]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        detail = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem:
            # PyYAML splits one sentence in two: "expected X" + "but found Y", or "while doing X" + problem.
            joined = exc.context.startswith("expected")
            detail = f"{exc.context}, {exc.problem}" if joined else f"{exc.problem} ({exc.context})"
        if "'\\t'" in detail:  # PyYAML names the character but not the rule
            detail += "; YAML does not allow tabs for indentation, use spaces"
        return [MetadataIssue(f"{file}:{line}", "", f"invalid YAML: {detail}")]
    except RecursionError:
        return [MetadataIssue(f"{file}:1", "", f"nested deeper than {limits.max_depth} levels")]
    finally:
        if loader is not None:
            loader.dispose()
    if loader.issues:
        return [
            MetadataIssue(f"{file}:{line}", format_path(path), message)
            for line, path, message in loader.issues
        ]
    return LoadedYaml(data, loader.lines)
