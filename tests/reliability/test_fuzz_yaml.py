"""Fuzzing the YAML loader and validator: malformed and adversarial input gives clean, located
errors, never a traceback, and never a partial write to the control table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakeflow_job_meta import MetadataManager
from lakeflow_job_meta.cli.main import main
from lakeflow_job_meta.errors import MetadataIssue, MetadataValidationError
from lakeflow_job_meta.metadata.loader import parse_document
from tests.helpers.yaml_cases import TRICKY_PLAIN_SCALARS, pure_python

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = (REPO / "examples" / "metadata_examples.yaml").read_text()
ROWS = (REPO / "examples" / "control_table_rows.yaml").read_text()
YAML_NOISE = st.text(alphabet=":-[]{}&*!|>'\"#%@`,?\t\n \\x0", min_size=1, max_size=8)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


@st.composite
def mutated(draw: st.DrawFn, base: str = EXAMPLES) -> str:
    """The examples (or ``base``) with 1-4 random edits: a cut, a duplicated or dropped line,
    YAML-significant noise inserted, an indentation changed."""
    text = base
    for _ in range(draw(st.integers(1, 4))):
        lines = text.split("\n")
        at = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["cut", "dup", "drop", "noise", "indent"]))
        if edit == "cut":
            start = draw(st.integers(0, len(text) - 1))
            text = text[:start] + text[start + draw(st.integers(1, 40)) :]
            continue
        if edit == "dup":
            lines.insert(at, lines[at])
        elif edit == "drop":
            del lines[at]
        elif edit == "noise":
            column = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:column] + draw(YAML_NOISE) + lines[at][column:]
        else:
            lines[at] = " " * draw(st.integers(0, 7)) + lines[at].lstrip()
        text = "\n".join(lines)
    return text


def assert_clean(issues: list[MetadataIssue], file: str) -> None:
    for issue in issues:
        assert isinstance(issue, MetadataIssue)
        assert issue.location.startswith(file), issue
        assert "Traceback" not in str(issue) and issue.message


@FUZZ
@given(st.one_of(mutated(), st.binary(max_size=300).map(lambda b: b), st.text(max_size=300)))
def test_malformed_input_gives_located_issues_never_an_exception(content: str | bytes):
    result = parse_document(content, "fuzz.yaml")
    assert_clean(list(result.issues), "fuzz.yaml")
    if result.document is None:
        assert result.issues, "a document that did not parse must say why"


ADVERSARIAL = {
    "billion_laughs": "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    + "modules: *i\n",
    "deep_nesting": "modules: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep_mapping": "modules:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 400)),
    "python_object": "modules: !!python/object/apply:os.system ['echo pwned']\n",
    "huge_int": "modules:\n  - module_name: m\n    sources:\n      - source_id: a\n        execution_order: "
    + "9" * 5000
    + "\n",
    "nul_and_bom": "\ufeffmodules:\n  - module_name: \x00m\n",
    "latin1_bytes": "modules:\n  - module_name: caf\xe9\n",
    "many_keys": "modules:\n  - module_name: m\n" + "".join(f"    k{i}: {i}\n" for i in range(3000)),
    "merge_key_loop": "a: &a {<<: *a}\nmodules: []\n",
    "tab_indent": "modules:\n\t- module_name: m\n",
    "multi_document": EXAMPLES + "\n---\n" + EXAMPLES,
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_input_is_refused_cleanly(name: str):
    text = ADVERSARIAL[name]
    content = text.encode("latin-1") if name == "latin1_bytes" else text
    result = parse_document(content, "evil.yaml")
    assert result.issues, name
    assert_clean(list(result.issues), "evil.yaml")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[MetadataManager, Path]:
    root = tmp_path_factory.mktemp("fuzz_load")
    good = root / "good.yaml"
    good.write_text(EXAMPLES)
    manager = MetadataManager(str(root / "ctl"))
    manager.ensure_exists()
    manager.load_files([str(good)])
    return manager, root


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated())
def test_a_bad_file_beside_a_good_one_writes_nothing(loaded: tuple[MetadataManager, Path], content: str):
    """``load`` is all or nothing: a rejected file means no table moved, whatever the other file."""
    manager, root = loaded
    bad = root / "bad.yaml"
    bad.write_text(content.replace("module_name: ", "module_name: fz_"))  # its own modules
    other = root / "other.yaml"
    other.write_text(
        EXAMPLES.replace("module_name: ", "module_name: ok_").replace("source_id: ", "source_id: ok_")
    )
    before = (manager.tables.control.version(), manager.tables.modules.version())
    try:
        manager.load_files([str(other), str(bad)])
    except MetadataValidationError as error:
        assert error.issues
        assert (manager.tables.control.version(), manager.tables.modules.version()) == before
        assert not any(r["module_name"].startswith("ok_") for r in manager.tables.control.read_all())


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated())
def test_the_cli_validate_prints_errors_never_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str], content: str
):
    path = tmp_path_factory.mktemp("validate") / "input.yaml"
    path.write_text(content)
    capsys.readouterr()
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert code in (0, 1)
    assert "Traceback" not in out + err
    if code == 1:
        assert "input.yaml" in out + err


# ------------------------------------------------------------------ the fast paths agree


@FUZZ
@given(st.one_of(mutated(), st.just(EXAMPLES), st.just(ADVERSARIAL["billion_laughs"])))
def test_the_libyaml_path_gives_the_same_values_and_lines_or_steps_aside(content: str):
    """libyaml composes the happy path; whenever it answers, values and line marks equal the
    pure-Python loader's, and when it does not, the pure-Python loader words the messages."""
    from lakeflow_job_meta.metadata import yaml_loader

    fast = yaml_loader._load_with_libyaml(content, yaml_loader.YamlLimits())
    if fast is None:
        return
    loader = yaml_loader.TrackingLoader(content, yaml_loader.YamlLimits())
    try:
        slow = loader.build(loader.get_single_node())
    finally:
        loader.dispose()
    assert not loader.issues and fast.data == slow
    assert fast.lines._lines == loader.lines._lines


PLAIN_SCALARS = st.sampled_from([*TRICKY_PLAIN_SCALARS, "!", "1 2"])


@st.composite
def plain_yaml(draw: st.DrawFn, depth: int = 0) -> str:
    """Block YAML of nested mappings and lists whose keys and values are tricky plain scalars
    (some of which are errors: a key read as a number, '<<' merging a scalar, a lone '*')."""
    indent = "  " * depth
    lines = []
    as_list = depth > 0 and draw(st.booleans())
    for _ in range(draw(st.integers(1, 4))):
        key = draw(PLAIN_SCALARS) if draw(st.integers(0, 4)) == 0 else draw(st.sampled_from("abcdefgh"))
        head = f"{indent}- " if as_list else f"{indent}{key}: "
        if depth < 3 and draw(st.integers(0, 3)) == 0:
            lines.append(head.rstrip() + "\n" + draw(plain_yaml(depth + 1)))
        else:
            lines.append(head + draw(PLAIN_SCALARS) + "\n")
    return "".join(lines)


@FUZZ
@given(
    st.one_of(
        mutated(),
        mutated(ROWS),
        plain_yaml(),
        st.just(EXAMPLES),
        st.just(ROWS),
        st.just(ADVERSARIAL["billion_laughs"]),
    )
)
def test_the_event_path_gives_the_same_values_and_lines_or_steps_aside(content: str):
    """libyaml's events build the happy path with no node graph; whenever that answers, the
    values (types included) and every line mark, in the same order, equal the pure-Python
    loader's, which reports no issue."""
    from lakeflow_job_meta.metadata import yaml_loader

    fast = yaml_loader._load_from_events(content, yaml_loader.YamlLimits())
    if fast is None:
        return
    data, lines, issues = pure_python(content)
    assert not issues
    assert repr(fast.data) == repr(data)
    assert fast.lines.items() == lines


def test_the_event_path_answers_the_examples():
    """The fuzz test above passes vacuously if the event path never answers."""
    from lakeflow_job_meta.metadata import yaml_loader

    for text in (EXAMPLES, ROWS):
        assert yaml_loader._load_from_events(text, yaml_loader.YamlLimits()) is not None


@FUZZ
@given(mutated())
def test_the_compiled_validator_never_passes_what_jsonschema_fails(content: str):
    from lakeflow_job_meta.metadata.schema import _validator, is_valid_fast
    from lakeflow_job_meta.metadata.yaml_loader import LoadedYaml, load_yaml

    loaded = load_yaml(content, "fuzz.yaml")
    if not isinstance(loaded, LoadedYaml):
        return
    for definition in (None, "header"):
        if is_valid_fast(loaded.data, definition):
            assert not list(_validator(definition).iter_errors(loaded.data))


@pytest.mark.parametrize(
    "value", [1.0, -2.0, 1e20, "\x1cname", "name\x1f", True], ids=["1.0", "-2.0", "1e20", "fs", "us", "bool"]
)
def test_values_the_compiled_validator_judges_otherwise_go_to_jsonschema(value):
    """jsonschema-rs takes 1.0 for an integer and does not count \\x1c-\\x1f as spaces; this
    schema's integers are strict and its patterns run on Python's re."""
    from lakeflow_job_meta.metadata.schema import is_valid_fast, schema_problems

    source = {
        "source_id": "a",
        "source_type": "notebook",
        "execution_order": 1,
        "transformation_config": {"task_type": "notebook", "notebook_path": "/Workspace/a"},
    }
    field = "execution_order" if not isinstance(value, str) else "source_id"
    bad = {**source, field: value}
    assert is_valid_fast(source, "source") and not schema_problems(source, "source")
    assert not is_valid_fast(bad, "source")
    assert schema_problems(bad, "source")


JSON_PIECES = st.sampled_from(
    [
        ": ",
        ", ",
        "[",
        "]",
        "-",
        "1",
        "09",
        ".0",
        ".05",
        "e+",
        "e-",
        "0",
        "x",
        "_",
        ".",
        '"',
        "\\u001c",
        "\\u001f",
        "\\u001b",
        "\\\\u001e",
        " ",
    ]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(st.one_of(st.lists(JSON_PIECES, max_size=12).map("".join), JSON_VALUES.map(json.dumps)))
def test_the_disagreement_search_finds_what_the_regex_finds(text: str):
    from lakeflow_job_meta.metadata.schema import _DISAGREEMENT, _has_disagreement

    assert _has_disagreement(text) == (_DISAGREEMENT.search(text) is not None)


def test_the_header_is_judged_without_searching_the_modules():
    """The header definition asks of ``modules`` only that it be a list, so a value the compiled
    validator would judge otherwise inside it (1.0) does not send the header to jsonschema."""
    from lakeflow_job_meta.metadata.schema import is_valid_fast, metadata_schema, schema_problems

    assert metadata_schema()["$defs"]["header"]["properties"]["modules"] == {"type": "array"}
    document = {"modules": [{"module_name": "m", "sources": [{"execution_order": 1.0}]}]}
    assert is_valid_fast(document, "header")
    assert not is_valid_fast(document)
    # Outside the modules the search still runs: a valid header holding 1.0 goes to jsonschema.
    header = {"variables": {"v": {"default": 1.0}}, "modules": []}
    assert not is_valid_fast(header, "header") and not schema_problems(header, "header")
